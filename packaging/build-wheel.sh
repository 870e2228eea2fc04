#!/usr/bin/env bash
# Build the wheel (dbbackup binary + Python package) and a standalone binary that
# run on glibc 2.17 and newer (manylinux2014), into dist/. Needs only cargo and
# python3 (with venv): maturin and zig come from PyPI into a local venv.
#
#   packaging/build-wheel.sh            # release profile (LTO), what is shipped
#
# The standalone binary is the wheel's own binary, copied out: one build, the same bits.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=${DBBACKUP_BUILD_VENV:-$root/target/packaging/venv}
target=x86_64-unknown-linux-gnu

command -v cargo >/dev/null || { echo "build-wheel.sh: cargo not found (install Rust with rustup)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
        echo "build-wheel.sh: python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r packaging/requirements-build.txt
# maturin finds zig as `python -m ziglang` of the python first on PATH.
export PATH="$venv/bin:$PATH"

rm -rf dist
start=$SECONDS
# LIBSQLITE3_FLAGS (the page-stream SQLite option) comes from .cargo/config.toml,
# which cargo reads because maturin runs it in this directory.
maturin build --release --zig --target "$target" --compatibility manylinux2014 \
    --out dist --quiet
wheels=(dist/*.whl)
wheel=${wheels[0]}
# The source distribution, for PyPI and platforms without a wheel (keeps .cargo/config.toml).
# Cargo warns that the manifest has no homepage/repository URL: there is no public
# home yet, and a made-up URL would be worse than none (Cargo.toml says so); that
# one warning is dropped here, any other is shown.
maturin sdist --out dist 2>&1 | awk '
    /^From `cargo package --list/ { held = $0; next }
    /^warning: manifest has no documentation, homepage or repository$/ { skip = 1; held = ""; next }
    skip { if (/package-metadata for more info/) skip = 0; next }
    { if (held != "") { print held; held = "" } print }
'

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
name=dbbackup-$version-x86_64-linux-gnu
# The tarball is laid out as installed under a prefix (bin/, share/man/man1/,
# share/bash-completion/...): packaging/install-prefix.sh (shipped inside, with the
# modulefiles) copies its bin/ and share/ under a prefix.
stage=target/packaging/$name
rm -rf "$stage" && mkdir -p "$stage/bin"
"$venv/bin/python" - "$wheel" "$stage/bin/dbbackup" <<'PY'
import sys, zipfile, shutil, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    [member] = [n for n in z.namelist() if n.endswith(".data/scripts/dbbackup")]
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod(out, 0o755)
PY
share=$stage/share
mkdir -p "$share/man/man1" "$share/bash-completion/completions" "$share/zsh/site-functions" \
    "$share/fish/vendor_completions.d" "$share/doc/dbbackup" "$share/dbbackup/modules"
# Man pages and completions come from the binary itself (clap), run where no
# dbbackup.yaml or DBBACKUP_* setting can reach it.
docs() { (cd / && env -i PATH=/usr/bin:/bin HOME=/nonexistent "$root/$stage/bin/dbbackup" "$@"); }
docs --quiet man --out "$root/$share/man/man1"
docs completions bash >"$share/bash-completion/completions/dbbackup"
docs completions zsh >"$share/zsh/site-functions/_dbbackup"
docs completions fish >"$share/fish/vendor_completions.d/dbbackup.fish"
cp README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE "$share/doc/dbbackup/"
cp packaging/install-prefix.sh "$share/dbbackup/"
cp packaging/modules/dbbackup.lua packaging/modules/dbbackup.tcl "$share/dbbackup/modules/"
# The licences and README also at the top, where whoever unpacks it looks.
cp README.md LICENSE-MIT LICENSE-APACHE "$stage/"
tar -C target/packaging -czf "dist/$name.tar.gz" "$name"
# The EasyBuild and Spack recipes of this release, with the tarball's checksum.
sum=$(sha256sum "dist/$name.tar.gz" | cut -d' ' -f1)
mkdir -p dist/spack/dbbackup
sed "s/@SHA256@/$sum/" "packaging/easybuild/dbbackup-$version.eb" >"dist/dbbackup-$version.eb"
sed "s/@SHA256@/$sum/" packaging/spack/dbbackup/package.py >dist/spack/dbbackup/package.py
(cd dist && sha256sum -- *.whl dbbackup_sqlite-*.tar.gz "$name.tar.gz" > SHA256SUMS)

echo "built in $((SECONDS - start)) s:"
echo "  wheel:             $root/$wheel"
echo "  standalone binary: $root/dist/$name.tar.gz (bin/dbbackup, man pages, completions, modulefiles)"
echo "  source dist:       $(ls "$root"/dist/dbbackup_sqlite-*.tar.gz)"
echo "  checksums:         $root/dist/SHA256SUMS"
echo "  HPC recipes:       $root/dist/dbbackup-$version.eb (EasyBuild), $root/dist/spack/dbbackup/package.py"
