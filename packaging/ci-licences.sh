#!/usr/bin/env bash
# Both licence texts, byte for byte, in each artefact (called by ci-wheel.sh):
#   ci-licences.sh WHEEL SDIST TARBALL     (and the crate, from `cargo package --list`)
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "ci-licences: FAILED: $*" >&2; exit 1; }
[ $# -eq 3 ] || fail "usage: ci-licences.sh WHEEL SDIST TARBALL"
python3 - "$@" <<'PY'
import sys, tarfile, zipfile

texts = {name: open(name, "rb").read() for name in ("LICENSE-MIT", "LICENSE-APACHE")}
assert b"Copyright (c) the dbbackup developers" in texts["LICENSE-MIT"]
assert b"Apache License" in texts["LICENSE-APACHE"] and b"Version 2.0" in texts["LICENSE-APACHE"]
wheel, sdist, tarball = sys.argv[1:]

def check(artefact, members, read, where):
    for name, text in texts.items():
        found = [m for m in members if m.endswith("/" + name) and where(m)]
        if not found:
            sys.exit(f"ci-licences: FAILED: no {name} in {artefact}")
        for member in found:
            if read(member) != text:
                sys.exit(f"ci-licences: FAILED: {member} in {artefact} differs from {name}")
    print(f"ci-licences: {artefact}: LICENSE-MIT and LICENSE-APACHE")

with zipfile.ZipFile(wheel) as z:
    check(wheel, z.namelist(), z.read, lambda m: ".dist-info/licenses/" in m)
    metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in ("License-Expression: MIT OR Apache-2.0", "License-File: LICENSE-MIT", "License-File: LICENSE-APACHE"):
        if line not in metadata.splitlines():
            sys.exit(f"ci-licences: FAILED: the wheel's METADATA lacks {line!r}")
for archive, where in ((sdist, lambda m: m.count("/") == 1), (tarball, lambda m: "/share/doc/dbbackup/" in m)):
    with tarfile.open(archive) as t:
        check(archive, t.getnames(), lambda m: t.extractfile(m).read(), where)
PY
crate=$(cargo package --list --allow-dirty 2>/dev/null)
for name in LICENSE-MIT LICENSE-APACHE; do
    grep -qx "$name" <<<"$crate" || fail "no $name in the crate (cargo package --list)"
done
echo "ci-licences: crate: LICENSE-MIT and LICENSE-APACHE"
