#!/bin/bash
# Peak RSS and wall time of backup (full, keeping page hashes), diff, restore
# and verify of one database (issue 21: < 64 MiB at 10 GB, time linear):
#   benches/memory.sh SIZE_MB [WORK_DIR] [DBBACKUP_BINARY]
# Makes WORK_DIR/results-SIZE.db with the project's generator unless it exists,
# grows it ~1 % before the diff, and removes the backups and the restored copy
# at the end (not the database). Needs GNU time (/usr/bin/time).
set -euo pipefail
size=${1:?size in MB}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$root/target/bench-memory}
bin=${3:-$root/target/release/dbbackup}
make_db=$root/target/release/examples/make_results_db
[[ -x $make_db && -x $bin ]] || (cd "$root" && cargo build --release --quiet --bin dbbackup --example make_results_db)
mkdir -p "$work"
db=$work/results-$size.db
[[ -e $db ]] || "$make_db" "$db" --size-mb "$size" --seed 1 >/dev/null
backups=$work/backups-$size
restored=$work/restored-$size.db
rm -rf "$backups" "$restored"
export DBBACKUP_DB_PATH=$db DBBACKUP_BACKUP_DIR=$backups DBBACKUP_DIFF_BACKUPS=1 \
    DBBACKUP_MAX_BACKUPS=10 DBBACKUP_SUMMARY_LOG=$work/summary.log TMPDIR=$work
measure() { # label, command...
    local label=$1 out
    shift
    /usr/bin/time -o "$work/time.out" -f "%e %M" "$@" >/dev/null 2>"$work/stderr.out" ||
        { cat "$work/stderr.out" >&2; exit 1; }
    out=$(tail -1 "$work/time.out")
    printf '  %-8s %9.2f s   peak RSS %7.1f MiB\n' "$label" "${out% *}" "$(echo "${out#* } / 1024" | bc -l)"
}
echo "== $(du -m "$db" | cut -f1) MB database, $("$bin" --version), $(nproc) cores"
measure backup "$bin" backup --force
full=$(ls "$backups"/backup_*.db.gz | head -1)
"$make_db" "$db" --append --size-mb "$(echo "$(stat -c %s "$db") * 1.01 / 1048576" | bc -l)" --seed 7 >/dev/null
measure diff "$bin" backup --force
diff=$(ls "$backups"/backup_*.diff.gz | head -1)
[[ -n $diff && -n $full ]]
measure restore "$bin" restore "$(basename "$diff")" --target "$restored"
rm -f "$restored"
measure verify "$bin" verify "$(basename "$diff")"
rm -rf "$backups" "$restored"
