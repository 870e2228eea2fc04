#!/bin/bash
# N array tasks calling `dbbackup pre-job` at the same moment on one node (the
# SPEC section 6 target: once the restore point exists, on average at most 3 lock
# system calls per task, all tasks back within a few seconds).
#
#   benches/prejob_herd.sh [N]            # N defaults to 1000; needs strace
#   DBBACKUP_BIN=target/debug/dbbackup benches/prejob_herd.sh 200
#
# Each task is a real process with array variables, held at a barrier (a FIFO)
# until all N exist, then released together. Two scenarios:
#   exists  the restore point was made before (the common case: every task but
#           the first of an array);
#   cold    nobody has made it yet: one task makes it, the others wait for it.
# For each: wall time from release to the last task's exit (without strace), and
# lock system calls (fcntl F_SETLK/F_SETLKW/F_GETLK, flock) per task counted by
# `strace -f` in a second, traced run. Prints one line per scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
bin=${DBBACKUP_BIN:-target/release/dbbackup}
if [ ! -x "$bin" ]; then
    cargo build --release --quiet
fi
bin=$(realpath "$bin")
command -v strace >/dev/null || { echo "prejob_herd: strace not found (apt-get install strace)" >&2; exit 1; }
ulimit -n 4096 2>/dev/null || true

work=$(mktemp -d "${TMPDIR:-/tmp}/prejob-herd.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cp examples/results.db "$work/results.db"
export DBBACKUP_DB_PATH="$work/results.db" DBBACKUP_SUMMARY_LOG="$work/summary.log"
export SLURM_ARRAY_TASK_COUNT="$n" SLURM_CLUSTER_NAME=bench

# Start N tasks held at a barrier, release them together; print the seconds from
# release until the last one exited. $1: array id, $2: backup dir, $3: command
# prefix (empty, or strace).
herd() {
    local array=$1 dir=$2 fifo="$work/barrier"
    shift 2
    rm -f "$fifo"
    mkfifo "$fifo"
    local pids=()
    for task in $(seq 0 $((n - 1))); do
        (
            read -r _ <"$fifo" || true
            SLURM_ARRAY_JOB_ID=$array SLURM_ARRAY_TASK_ID=$task DBBACKUP_BACKUP_DIR=$dir \
                exec "$@" "$bin" pre-job --quiet
        ) &
        pids+=("$!")
    done
    sleep 1 # every task is waiting at the barrier
    local start end failed=0
    start=$(date +%s.%N)
    : >"$fifo" # EOF for all readers at once
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    end=$(date +%s.%N)
    if [ "$failed" -ne 0 ]; then
        echo "prejob_herd: $failed of $n tasks failed" >&2
        exit 1
    fi
    echo "$start $end" | awk '{printf "%.2f", $2 - $1}'
}

# Lock calls in the per-process traces $1.*.
lock_calls() {
    cat "$1".* | grep -cE 'fcntl\([0-9]+, F_(SETLK|SETLKW|GETLK)|flock\(' || true
}

for scenario in exists cold; do
    for run in timed traced; do
        dir="$work/backups-$scenario-$run"
        array=$((RANDOM + 1000))
        if [ "$scenario" = exists ]; then
            SLURM_ARRAY_JOB_ID=$array SLURM_ARRAY_TASK_ID=0 DBBACKUP_BACKUP_DIR=$dir \
                "$bin" pre-job --quiet
        fi
        if [ "$run" = timed ]; then
            seconds=$(herd "$array" "$dir")
        else
            trace="$work/trace-$scenario"
            herd "$array" "$dir" strace -ff -qq -e trace=fcntl,flock -o "$trace" >/dev/null
            calls=$(lock_calls "$trace")
        fi
        backups=$(find "$dir" -maxdepth 1 -name 'backup_*' | wc -l)
        if [ "$backups" -ne 1 ]; then
            echo "prejob_herd: $scenario: $backups restore points, expected 1" >&2
            exit 1
        fi
    done
    printf '%-7s %5d tasks: wall %6.2f s (untraced), lock calls %6d = %.2f per task\n' \
        "$scenario" "$n" "$seconds" "$calls" "$(echo "$calls $n" | awk '{print $1 / $2}')"
done
