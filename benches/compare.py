#!/usr/bin/env python3
"""Side-by-side benchmark: dbbackup against what a user would otherwise run.

    benches/compare.sh                 # builds release, then runs this
    python3 benches/compare.py [--sizes 35,1024] [--runs 5] [--work DIR]

For each database size (MB) it makes a results database with the project's own
generator, `examples/make_results_db` (cached in the work dir, deterministic), then
runs, alternating, each measured `--runs` times:

  dbbackup   dbbackup backup --force (snapshot, quick_check, compression, publication)
  gzip       sqlite3 DB ".backup x" && gzip -6 x
  pigz       sqlite3 DB ".backup x" && pigz -6 -p <cores> x
  level 6    dbbackup backup --force --compression-level 6 (time and size; 5 is the default)
  restore    dbbackup restore (members inflated in parallel, SHA-256, quick_check)
             at every thread count up to the cores, and with --full-check
  gunzip     gunzip -c x.gz > y && sqlite3 y "PRAGMA integrity_check"
  verify     dbbackup verify NAME (inflate, SHA-256, integrity_check)
  noop-auto  dbbackup auto when nothing changed

and prints medians, ratios, compressed sizes and peak RSS (from wait4, per run).
It installs nothing: a missing tool is named and the run stops.
"""
import argparse, os, shutil, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAKE_DB = ROOT / "target" / "release" / "examples" / "make_results_db"


def run(cmd, env=None, cwd=None):
    """Run a command; return (seconds, peak RSS in KiB, CPU seconds) of it."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{err}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing tools: {', '.join(missing)} (apt-get install sqlite3 gzip pigz)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="35,1024", help="database sizes in MB, comma-separated")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default=str(ROOT / "bench-work"))
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "dbbackup"))
    args = ap.parse_args()
    need("sqlite3", "gzip", "pigz", "gunzip")
    binary = Path(args.bin)
    if not binary.exists():
        sys.exit(f"{binary} not found: run `cargo build --release` first")
    if not MAKE_DB.exists():
        sys.exit(f"{MAKE_DB} not found: run `cargo build --release --example make_results_db` first")
    cores = len(os.sched_getaffinity(0))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# {version}, {cores} cores, {args.runs} runs each, medians; {time.strftime('%Y-%m-%d')}")
    print(f"# command: python3 benches/compare.py --sizes {args.sizes} --runs {args.runs}\n")
    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        rows.append(bench_size(size, args.runs, work, binary, cores))
    print()
    print("| database | backup / pigz | size vs gzip -6 | level 6: time / pigz, cpu vs level 5, size vs gzip -6 | "
          + " | ".join(f"restore {t}t / gunzip+ic" for t in range(1, cores + 1))
          + " | restore --full-check / gunzip+ic | verify / gunzip+ic | peak RSS (backup, restore, verify) | no-op auto |")
    print("| --- " * (8 + cores) + "|")
    for r in rows:
        print(f"| {r['db_mb']:.1f} MB | **{r['ours'] / r['pigz']:.2f}** | "
              f"{100 * (r['ours_size'] / r['gzip_size'] - 1):+.1f} % | "
              f"{r['l6'] / r['pigz']:.2f}, {r['l6_cpu'] / r['cpu']:.2f}, {100 * (r['l6_size'] / r['gzip_size'] - 1):+.1f} % | "
              + " | ".join(f"**{r['restore'][t] / r['gunzip']:.2f}**" for t in range(1, cores + 1))
              + f" | {r['full_check'] / r['gunzip']:.2f} | {r['verify'] / r['gunzip']:.2f} | "
              f"{r['rss'] / 1024:.1f}, {r['restore_rss'] / 1024:.1f}, {r['verify_rss'] / 1024:.1f} MiB | "
              f"{r['noop'] * 1000:.2f} ms |")
    print("\ntargets: backup / pigz <= 0.45, size vs gzip -6 <= 0 %, restore / (gunzip -c + integrity_check) "
          "<= 0.45, peak RSS < 64 MiB, no-op auto < 5 ms")


def bench_size(size_mb, runs, work, binary, cores):
    db = work / f"results_{size_mb:g}mb.db"
    if not db.exists():
        print(f"making {db} ...", flush=True)
        subprocess.run([MAKE_DB, db, "--size-mb", str(size_mb)], check=True, stdout=subprocess.DEVNULL)
    db_bytes = db.stat().st_size
    tmp = work / f"tmp_{size_mb:g}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    backups = tmp / "backups"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBBACKUP_", "SLURM_"))}
    env.update(DBBACKUP_DB_PATH=str(db), DBBACKUP_BACKUP_DIR=str(backups), DBBACKUP_MAX_BACKUPS="2")
    plain = tmp / "plain.db"

    def ours():
        return run([binary, "backup", "--force", "-q"], env=env)

    def with_gzip(tool):
        def go():
            for f in (plain, Path(str(plain) + ".gz")):
                f.unlink(missing_ok=True)
            return run(["sh", "-c", f'sqlite3 "{db}" ".backup {plain}" && {tool} "{plain}"'])
        return go

    def level6():
        return run([binary, "backup", "--force", "-q", "--compression-level", "6"], env=env)

    times = {"ours": [], "gzip": [], "pigz": [], "l6": []}
    rss = []
    cpu = {}
    sizes = {}
    cases = [("ours", ours), ("gzip", with_gzip("gzip -6")), ("pigz", with_gzip(f"pigz -6 -p {cores}")),
             ("l6", level6)]
    run(["cat", str(db)])  # warm the page cache the same way for everyone
    for i in range(runs):
        for name, case in (cases if i % 2 == 0 else cases[::-1]):
            seconds, peak, used = case()
            times[name].append(seconds)
            cpu.setdefault(name, []).append(used)
            if name in ("ours", "l6"):
                rss.append(peak)
                newest = sorted(backups.glob("backup_*.db.gz"))[-1]
                sizes[name + ("_size" if name == "l6" else "")] = newest.stat().st_size
            else:
                sizes[name] = Path(str(plain) + ".gz").stat().st_size
    # Restore (into a fresh target each time, at each thread count and with
    # --full-check) and verify, against gunzip + integrity_check, interleaved.
    ours(); newest = sorted(backups.glob("backup_*.db.gz"))[-1]  # at the default level
    gz = Path(str(plain) + ".gz")
    target = tmp / "restored.db"
    gunzip = lambda: run(["sh", "-c", f'gunzip -c "{gz}" > "{tmp}/g.db" && sqlite3 "{tmp}/g.db" "PRAGMA integrity_check" >/dev/null'])
    pair = [("gunzip", gunzip)]
    pair += [(t, (lambda t=t: restore(binary, env, newest.name, target, "--threads", str(t)))) for t in range(1, cores + 1)]
    pair += [("full", lambda: restore(binary, env, newest.name, target, "--full-check")),
             ("verify", lambda: run([binary, "verify", newest.name, "-q"], env=env))]
    r_times = {name: [] for name, _ in pair}
    restore_rss = verify_rss = 0
    for i in range(runs):
        for name, case in (pair if i % 2 == 0 else pair[::-1]):
            seconds, peak, _ = case()
            r_times[name].append(seconds)
            if name == "verify":
                verify_rss = max(verify_rss, peak)
            elif name != "gunzip":
                restore_rss = max(restore_rss, peak)
    # No-op auto: nothing changed since the newest backup.
    noop = [run([binary, "auto", "-q"], env=env)[0] for _ in range(max(20, runs))]
    med = statistics.median
    result = dict(db_mb=db_bytes / 1e6, ours=med(times["ours"]), gzip=med(times["gzip"]), pigz=med(times["pigz"]),
                  l6=med(times["l6"]), l6_size=sizes["l6_size"], cpu=med(cpu["ours"]), l6_cpu=med(cpu["l6"]),
                  ours_size=sizes["ours"], gzip_size=sizes["gzip"], rss=max(rss), noop=med(noop),
                  restore={t: med(r_times[t]) for t in range(1, cores + 1)}, gunzip=med(r_times["gunzip"]),
                  full_check=med(r_times["full"]), verify=med(r_times["verify"]),
                  restore_rss=restore_rss, verify_rss=verify_rss)
    restores = "  ".join(f"{t}t {result['restore'][t]:.3f} s" for t in range(1, cores + 1))
    print(f"{db_bytes / 1e6:8.1f} MB: backup {result['ours']:.3f} s, cpu {result['cpu']:.3f} s "
          f"(level 6 {result['l6']:.3f} s, cpu {result['l6_cpu']:.3f} s)  "
          f"gzip {result['gzip']:.3f} s  pigz {result['pigz']:.3f} s  sizes ours {sizes['ours']} "
          f"level 6 {sizes['l6_size']} gzip {sizes['gzip']} pigz {sizes['pigz']}\n"
          f"           restore {restores}  --full-check {result['full_check']:.3f} s  verify {result['verify']:.3f} s  "
          f"vs gunzip -c + integrity_check {result['gunzip']:.3f} s\n"
          f"           peak RSS backup {max(rss) / 1024:.1f} MiB  restore {restore_rss / 1024:.1f} MiB  "
          f"verify {verify_rss / 1024:.1f} MiB  no-op auto {result['noop'] * 1000:.2f} ms", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def restore(binary, env, name, target, *flags):
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    return run([binary, "restore", name, "--target", str(target), "-q", *flags], env=env)


if __name__ == "__main__":
    main()
