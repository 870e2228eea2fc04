#!/usr/bin/env python3
"""Differential backups against full ones, side by side in one run.

    benches/diff.sh                    # builds release, then runs this
    python3 benches/diff.py [--sizes 35,1024] [--runs 5] [--work DIR] [--baseline BIN]

For each size (MB) it makes a results database with the project's generator,
then, each timing the median of `--runs` alternating runs:

  full       dbbackup backup --force, diff_backups 0 (today's full backup, level 5)
  full-6     the same at --compression-level 6 (the default before issue 21)
  diff       dbbackup backup --force against a full backup, the database grown ~1 %
             (the base confirmed by the XXH3 of its compressed bytes)
  diff-whole the same when the base is due for its daily whole read (its page-hash
             sidecar aged by two days), which runs beside the snapshot
  restore-f  dbbackup restore of a full backup into a new file
  restore-d  dbbackup restore of a diff (base + diff rebuilt, checked) into a new file

and the space of ten restore points (1 full + 9 diffs, the database growing ~1 %
before each) against one full backup, peak RSS (wait4), and the floor: `PRAGMA
quick_check` of the same database alone (Python's sqlite3, timed in a child), which
every restore point runs.

With `--baseline BIN` (another dbbackup build, say the previous commit's), each
run times both binaries' full and diff backups alternately, in their own
directories, and the diff / full ratios are printed side by side.
"""
import argparse, os, shutil, statistics, subprocess, sys, time, json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKE_DB = ROOT / "target" / "release" / "examples" / "make_results_db"
BINARY = ROOT / "target" / "release" / "dbbackup"


def run(cmd, env=None, capture=False):
    """(seconds, peak RSS KiB, stdout) of one command; its CPU seconds go to CPU."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    CPU.append(usage.ru_utime + usage.ru_stime)
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{err}")
    return elapsed, usage.ru_maxrss, out.decode()


CPU = []


def grow(db, seed, factor=1.01):
    size = db.stat().st_size / (1 << 20) * factor
    run([MAKE_DB, db, "--append", "--size-mb", f"{size:.4f}", "--seed", str(seed)])


def age_sidecars(backups, seconds=2 * 86400):
    """Make every page-hash sidecar look written two days ago: the next diff
    reads its base whole (docs/differential.md)."""
    for sidecar in (backups / ".dbbackup-pages").glob("*.xxh3"):
        st = sidecar.stat()
        os.utime(sidecar, (st.st_atime - seconds, st.st_mtime - seconds))


def env_for(db, backups, diffs):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBBACKUP_", "SLURM_"))}
    env.update(DBBACKUP_DB_PATH=str(db), DBBACKUP_BACKUP_DIR=str(backups),
               DBBACKUP_DIFF_BACKUPS=str(diffs), DBBACKUP_MAX_BACKUPS="1000",
               DBBACKUP_SUMMARY_LOG=str(backups.parent / "summary.log"))
    return env


def backup(env, *flags, binary=None):
    t, rss, out = run([binary or BINARY, "backup", "--force", "--format", "json", *flags], env)
    return t, rss, json.loads(out)


QUICK_CHECK = """
import sqlite3, sys, time
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
start = time.perf_counter()
(result,) = conn.execute("PRAGMA quick_check").fetchone()
print(time.perf_counter() - start, result)
"""


def quick_check(db):
    """Seconds of `PRAGMA quick_check` alone, timed inside a child process (in
    this one it would raise every later child's peak RSS: a forked child's
    maximum includes its parent's pages before exec)."""
    out = subprocess.run([sys.executable, "-c", QUICK_CHECK, str(db)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[1] == "ok", out
    return float(out[0])


def bench(size_mb, runs, work, baseline=None):
    here = work / f"{size_mb}mb"
    shutil.rmtree(here, ignore_errors=True)
    here.mkdir(parents=True)
    db = here / "results.db"
    run([MAKE_DB, db, "--size-mb", str(size_mb), "--seed", "1"])
    # Ten restore points of a growing database: 1 full + 9 diffs.
    points = here / "points"
    env_p = env_for(db, points, 9)
    sizes, rows = [], []
    for i in range(10):
        if i:
            grow(db, 100 + i)
        _, _, made = backup(env_p)
        sizes.append(made["size"])
        rows.append(made["name"])
    page_size = 4096
    pages = db.stat().st_size // page_size
    # The last state again as one full backup, for the ratio against today's cost.
    full_dir = here / "full"
    _, _, last_full = backup(env_for(db, full_dir, 0))
    # Timing: the newest full restore point is the base; each diff carries the
    # ~1 % the database grew since (plus the 9 earlier growths: a late diff).
    base_dir = here / "timing"
    env_d = env_for(db, base_dir, 1000)
    backup(env_d)
    # The baseline binary's base (same state), full and diff, in directories of their own.
    env_bf = env_for(db, here / "base-fulls", 0)
    env_bd = env_for(db, here / "base-timing", 1000)
    if baseline:
        backup(env_bd, binary=baseline)
    grow(db, 999)
    env_f = env_for(db, here / "fulls", 0)
    times = {"full": [], "full-6": [], "diff": [], "diff-whole": [], "restore-f": [], "restore-d": []}
    if baseline:
        times.update({"base-full": [], "base-diff": []})
    times["quick_check"] = []
    rss = {k: 0 for k in times}
    cpu = {k: [] for k in times}
    made_full = made_diff = None
    for _ in range(runs):
        times["quick_check"].append(quick_check(db)); cpu["quick_check"].append(0.0)
        if baseline:
            t, r, made = backup(env_bf, binary=baseline)
            times["base-full"].append(t); rss["base-full"] = max(rss["base-full"], r); cpu["base-full"].append(CPU[-1])
            (here / "base-fulls" / made["name"]).unlink()
            t, r, made = backup(env_bd, binary=baseline)
            assert made["name"].endswith(".diff.gz"), made
            times["base-diff"].append(t); rss["base-diff"] = max(rss["base-diff"], r); cpu["base-diff"].append(CPU[-1])
            (here / "base-timing" / made["name"]).unlink()
        t, r, made_full = backup(env_f)
        times["full"].append(t); rss["full"] = max(rss["full"], r); cpu["full"].append(CPU[-1])
        t, r, made_6 = backup(env_f, "--compression-level", "6")
        times["full-6"].append(t); rss["full-6"] = max(rss["full-6"], r); cpu["full-6"].append(CPU[-1])
        (here / "fulls" / made_6["name"]).unlink()
        t, r, made_diff = backup(env_d)
        assert made_diff["name"].endswith(".diff.gz"), made_diff
        times["diff"].append(t); rss["diff"] = max(rss["diff"], r); cpu["diff"].append(CPU[-1])
        age_sidecars(base_dir)
        t, r, first_diff = backup(env_d)
        assert first_diff["name"].endswith(".diff.gz"), first_diff
        times["diff-whole"].append(t); rss["diff-whole"] = max(rss["diff-whole"], r); cpu["diff-whole"].append(CPU[-1])
        for key, env, name in (("restore-f", env_f, made_full["name"]), ("restore-d", env_d, made_diff["name"])):
            target = here / "restored.db"
            for p in here.glob("restored.db*"):
                p.unlink()
            t, r, _ = run([BINARY, "restore", name, "--target", str(target)], env)
            times[key].append(t); rss[key] = max(rss[key], r); cpu[key].append(CPU[-1])
        # Keep one full and one diff: the next runs measure the same work.
        (here / "fulls" / made_full["name"]).unlink()
        (base_dir / made_diff["name"]).unlink()
        (base_dir / first_diff["name"]).unlink()
    med = {k: statistics.median(v) for k, v in times.items()}
    changed = made_diff["size"]
    print(f"\n== {size_mb} MB results database (grown to {db.stat().st_size / 1e6:.1f} MB, {pages} pages), {runs} runs, {os.cpu_count()} cores")
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    for k in times:
        print(f"  {k:10} {med[k]:7.3f} s   cpu {mcpu[k]:7.3f} s   peak RSS {rss[k] / 1024:6.1f} MiB")
    print(f"  diff / full backup time      {med['diff'] / med['full']:.2f}   (target <= 0.30; "
          f"{med['diff'] / med['full-6']:.2f} of a full at level 6, the default before)")
    if baseline:
        print(f"  side by side, diff / full:   this build {med['diff'] / med['full']:.2f}   "
              f"baseline {med['base-diff'] / med['base-full']:.2f}   "
              f"(cpu {mcpu['diff'] / mcpu['full']:.2f} and {mcpu['base-diff'] / mcpu['base-full']:.2f})")
    print(f"  floor: quick_check alone / full   {med['quick_check'] / med['full']:.2f}   "
          f"({med['quick_check']:.3f} s, its own time, no process start; every restore point runs it)")
    print(f"  diff reading its base whole / full   {med['diff-whole'] / med['full']:.2f}   (once a day per base)")
    print(f"  cpu: diff / full {mcpu['diff'] / mcpu['full']:.2f}, diff reading its base whole / full {mcpu['diff-whole'] / mcpu['full']:.2f}")
    print(f"  restore diff / restore full  {med['restore-d'] / med['restore-f']:.2f}   (target <= 1.5)")
    total = sum(sizes)
    print(f"  10 restore points (1 full + 9 diffs): {total / 1e6:.2f} MB; diffs {', '.join(f'{s / 1e3:.0f}k' for s in sizes[1:])}")
    print(f"  space / first full ({sizes[0] / 1e6:.2f} MB)   {total / sizes[0]:.2f}   (target <= 1.6; today 10)")
    print(f"  space / full of the last state ({last_full['size'] / 1e6:.2f} MB)   {total / last_full['size']:.2f}")
    print(f"  timed diff: {changed / 1e3:.0f} kB; page-hash sidecar {pages * 16 / 1024:.0f} KiB (read in step with the pages, not held)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="35")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default=str(ROOT / "target" / "bench-diff"))
    parser.add_argument("--baseline", help="another dbbackup binary, timed alternately")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        bench(float(size) if "." in size else int(size), args.runs, Path(args.work), args.baseline)


if __name__ == "__main__":
    main()
