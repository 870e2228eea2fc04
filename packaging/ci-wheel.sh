#!/usr/bin/env bash
# CI for the wheel and the standalone binary, on a fresh machine (called by .ci/run):
# build both, check they need glibc 2.17 at most and carry the page-stream SQLite,
# install the wheel into a fresh venv, run the CLI once (backup + restore) and the
# Python API tests against real databases; then the licence texts in each artefact,
# the modulefiles under Environment Modules and Lmod, the EasyBuild and Spack recipes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS
say() { echo "ci-wheel: $*"; }
fail() { echo "ci-wheel: FAILED: $*" >&2; exit 1; }

# objdump (binutils) reads the symbol versions; shellcheck lints these scripts;
# Debian's python3 needs python3-venv.
need=()
command -v objdump >/dev/null || need+=(binutils)
command -v shellcheck >/dev/null || need+=(shellcheck)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

shellcheck packaging/*.sh
bash packaging/build-wheel.sh
wheels=(dist/*.whl)
[ ${#wheels[@]} -eq 1 ] || fail "expected one wheel in dist/, found ${#wheels[@]}"
wheel=${wheels[0]}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
tarball=dist/dbbackup-$version-x86_64-linux-gnu.tar.gz
[ -f "$tarball" ] || fail "no standalone binary $tarball"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The standalone binary is the wheel's binary, byte for byte.
tar -C "$work" -xzf "$tarball"
standalone=$work/dbbackup-$version-x86_64-linux-gnu/bin/dbbackup
python3 - "$wheel" "$work/wheel-dbbackup" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    [member] = [n for n in z.namelist() if n.endswith(".data/scripts/dbbackup")]
    open(sys.argv[2], "wb").write(z.read(member))
PY
cmp "$standalone" "$work/wheel-dbbackup" || fail "standalone binary differs from the wheel's"

# Both licence texts in every artefact: wheel, sdist, standalone tarball, crate.
bash packaging/ci-licences.sh "$wheel" "dist/dbbackup_sqlite-$version.tar.gz" "$tarball"

# Highest glibc symbol version the binary needs: at most 2.17 (manylinux2014).
highest=$(objdump -T "$standalone" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
[ -n "$highest" ] || fail "no GLIBC symbol versions found by objdump -T"
[ "$(printf '%s\n%s\n' "$highest" 2.17 | sort -V | tail -n1)" = 2.17 ] \
    || fail "binary needs GLIBC_$highest, more than 2.17"
say "highest GLIBC symbol version needed: $highest (limit 2.17)"
# SQLite lists its compile options in the binary (PRAGMA compile_options reads them).
strings "$standalone" | grep -x ENABLE_DBPAGE_VTAB >/dev/null \
    || fail "SQLite in the binary was built without SQLITE_ENABLE_DBPAGE_VTAB"

# A fresh venv with nothing but the wheel (--no-index: it needs nothing else).
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$wheel"
"$work/venv/bin/dbbackup" --version
[ "$("$work/venv/bin/dbbackup" --version)" = "dbbackup $version" ] || fail "wrong --version"

# One backup and restore through the installed CLI, on a WAL database made here.
(
    cd "$work"
    python3 - <<'PY'
import sqlite3
c = sqlite3.connect("results.db")
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, value REAL)")
c.executemany("INSERT INTO results (value) VALUES (?)", [(i / 7,) for i in range(20000)])
c.commit()
PY
    export PATH="$work/venv/bin:$PATH"
    dbbackup --db-path results.db --backup-dir backups backup --force 2>backup.log
    cat backup.log
    # The page-stream snapshot ran: no warning, no error.
    ! grep -E ' (WARN|ERROR) ' backup.log || fail "backup logged a warning or error"
    dbbackup --db-path results.db --backup-dir backups restore latest --target restored.db
    python3 - <<'PY'
import sqlite3
dump = lambda p: list(sqlite3.connect(p).iterdump())
assert dump("restored.db") == dump("results.db"), "restored content differs"
assert sqlite3.connect("restored.db").execute("PRAGMA integrity_check").fetchone()[0] == "ok"
print("ci-wheel: CLI backup + restore: restored database equals the source")
PY
)

# The other ways clusters install it: `pip install --user` (a module system's Python,
# no venv) and `pip install --target`; the module must find the binary each installs,
# without it being on PATH. PYTHONUSERBASE keeps the user install inside $work.
install_check() {
    local expected=$1
    shift
    env "$@" python3 - "$expected" <<'PY'
import os, sys, dbbackup
assert dbbackup.binary() == sys.argv[1], (dbbackup.binary(), sys.argv[1])
os.makedirs("no-backups-yet", exist_ok=True)
assert dbbackup.list_backups(backup_dir="no-backups-yet") == []
print("ci-wheel: found", dbbackup.binary())
PY
}
PIP_BREAK_SYSTEM_PACKAGES=1 PYTHONUSERBASE=$work/user python3 -m pip install \
    --quiet --disable-pip-version-check --no-index --user "$wheel"
(cd "$work" && install_check "$work/user/bin/dbbackup" PYTHONUSERBASE="$work/user")
python3 -m pip install --quiet --disable-pip-version-check --no-index --target "$work/target" "$wheel"
(cd "$work" && install_check "$work/target/bin/dbbackup" PYTHONUSERBASE="$work/empty" PYTHONPATH="$work/target")

# The Python package's type hints hold (mypy --strict), in a venv of its own.
python3 -m venv "$work/venv-mypy"
"$work/venv-mypy/bin/pip" install --quiet --disable-pip-version-check -r packaging/requirements-check.txt
"$work/venv-mypy/bin/mypy" --strict python/dbbackup python/tests

# The Python API tests in a fresh venv per interpreter, run from outside the
# repository so that `import dbbackup` is the installed package, not python/dbbackup.
# Also on the oldest Python the wheel supports (3.8) when this machine has it
# (pyenv on the project's machine image).
api_tests() {
    local python=$1 venv
    venv=$work/venv-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$wheel"
    say "Python API tests on $("$venv/bin/python" --version)"
    (cd "$work" && DBBACKUP_EXPECT_WHEEL=1 "$venv/bin/python" -m unittest discover \
        -s "$root/python/tests" -t "$root/python/tests" -v)
}
api_tests python3
py38=
for candidate in "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.8*/bin/python3.8; do
    if [ -x "$candidate" ]; then py38=$candidate; fi
done
if [ -n "$py38" ]; then
    api_tests "$py38"
else
    say "no Python 3.8 on this machine: the API tests ran on $(python3 --version) only"
fi

# HPC installs of the standalone tarball: the modulefiles under Debian's Environment
# Modules and Lmod, the EasyBuild easyconfig installed by EasyBuild, the Spack recipe
# checked statically.
bash packaging/ci-modules.sh "$tarball"
bash packaging/ci-recipes.sh "$tarball"

say "ok in $((SECONDS - start)) s; wheel $root/$wheel, standalone $root/$tarball"
