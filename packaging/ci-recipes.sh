#!/usr/bin/env bash
# The HPC recipes of the release tarball, each checked by what can check it offline
# (called by ci-wheel.sh after ci-modules.sh):  ci-recipes.sh TARBALL
# - EasyBuild (from PyPI, pinned) installs packaging/easybuild/dbbackup-VERSION.eb
#   from the tarball with the tarball's sha256 filled in, writes its Lmod module, and
#   a login bash loads that module and runs dbbackup.
# - Spack is not on PyPI and this CI has no network beyond the package registries:
#   the recipe is compiled and its fields are checked statically (class, directives,
#   version and sha256, install of bin/ and share/). Spack itself never runs it.
set -euo pipefail
start=$SECONDS
say() { echo "ci-recipes: $*"; }
fail() { echo "ci-recipes: FAILED: $*" >&2; exit 1; }
[ $# -eq 1 ] || fail "usage: ci-recipes.sh TARBALL"
tarball=$(realpath "$1")
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
easyconfig=packaging/easybuild/dbbackup-$version.eb
[ -f "$easyconfig" ] || fail "no $easyconfig for version $version (Cargo.toml): rename and update it"
lmod_init=/usr/share/lmod/lmod/init/bash
[ -f "$lmod_init" ] || fail "no Lmod ($lmod_init): ci-modules.sh installs it"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sources"
cp "$tarball" "$work/sources/"
sed "s/@SHA256@/$sum/" "$easyconfig" >"$work/dbbackup-$version.eb"
mkdir -p "$work/wrong"
sed "s/@SHA256@/$(printf '0%.0s' {1..64})/" "$easyconfig" >"$work/wrong/dbbackup-$version.eb"
sed "s/@SHA256@/$sum/" packaging/spack/dbbackup/package.py >"$work/package.py"

python3 -m venv "$work/venv-eb"
"$work/venv-eb/bin/pip" install --quiet --disable-pip-version-check -r packaging/requirements-easybuild.txt
# EasyBuild refuses root unless told; CI runs as root (a site builds as a user).
env -i HOME="$work" USER=ci PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb \
    EB_VENV="$work/venv-eb" VERSION="$version" LMOD_INIT="$lmod_init" bash -l <<'SH' || fail "EasyBuild (see above)"
set -euo pipefail
fail() { echo "ci-recipes: FAILED (EasyBuild): $*" >&2; exit 1; }
type module >/dev/null 2>&1 || source "$LMOD_INIT"
export PATH=$EB_VENV/bin:$PATH
# The checksum is checked: the same easyconfig with another sha256 is refused (first:
# EasyBuild skips what it finds already installed as a module).
if eb "$HOME/wrong/dbbackup-$VERSION.eb" --allow-use-as-root-and-accept-consequences \
    --sourcepath="$HOME/sources" --installpath="$HOME/eb-wrong" --buildpath="$HOME/eb-build" \
    --tmpdir="$HOME/eb-tmp" --modules-tool=Lmod --module-syntax=Lua >"$HOME/eb-wrong.log" 2>&1; then
    fail "eb installed from a tarball whose sha256 differs from the easyconfig's"
fi
grep -q -i 'checksum verification .* failed' "$HOME/eb-wrong.log" || { tail -n 20 "$HOME/eb-wrong.log"; fail "eb failed, but not on the checksum"; }
eb "$HOME/dbbackup-$VERSION.eb" --allow-use-as-root-and-accept-consequences \
    --sourcepath="$HOME/sources" --installpath="$HOME/eb" --buildpath="$HOME/eb-build" \
    --tmpdir="$HOME/eb-tmp" --modules-tool=Lmod --module-syntax=Lua >"$HOME/eb.log" 2>&1 \
    || { tail -n 30 "$HOME/eb.log"; fail "eb did not install dbbackup-$VERSION.eb"; }
grep -q 'COMPLETED: Installation ended successfully' "$HOME/eb.log" || fail "eb did not complete"
module use "$HOME/eb/modules/all"
module load "dbbackup/$VERSION"
[ "$(dbbackup --version)" = "dbbackup $VERSION" ] || fail "dbbackup --version: $(dbbackup --version)"
[ "$(command -v dbbackup)" = "$HOME/eb/software/dbbackup/$VERSION/bin/dbbackup" ] || fail "dbbackup is $(command -v dbbackup)"
[ -f "$EBROOTDBBACKUP/share/man/man1/dbbackup.1" ] || fail "no man page under $EBROOTDBBACKUP"
case ":$MANPATH:" in *":$EBROOTDBBACKUP/share/man:"*) ;; *) fail "MANPATH=$MANPATH" ;; esac
# The empty element (the module's footer): man still finds the system's pages.
case "$MANPATH" in *: | *::* | :*) ;; *) fail "MANPATH=$MANPATH has no empty element" ;; esac
echo "ci-recipes: EasyBuild $(eb --version | grep -o '[0-9][0-9.]*' | head -n1) installed dbbackup-$VERSION.eb (sha256 checked) and its Lmod module runs dbbackup $VERSION"
SH

python3 - "$work/package.py" "$version" "$sum" <<'PY'
import ast, sys

path, version, sha256 = sys.argv[1:]
source = open(path).read()
compile(source, path, "exec")
tree = ast.parse(source)
fail = lambda why: sys.exit(f"ci-recipes: FAILED (Spack recipe): {why}")
imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
if [(n.module, [a.name for a in n.names]) for n in imports if isinstance(n, ast.ImportFrom)] != [("spack.package", ["*"])]:
    fail("the only import must be `from spack.package import *`")
[cls] = [n for n in tree.body if isinstance(n, ast.ClassDef)] or fail("no class")
if cls.name != "Dbbackup" or [ast.unparse(b) for b in cls.bases] != ["Package"]:
    fail(f"class {cls.name}({', '.join(map(ast.unparse, cls.bases))}) is not Dbbackup(Package)")
if not ast.get_docstring(cls):
    fail("no docstring (spack info shows it)")
fields = {t.id: n.value.value for n in cls.body if isinstance(n, ast.Assign)
          for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
for field in ("homepage", "url"):
    if not str(fields.get(field, "")).startswith("https://"):
        fail(f"{field} is not an https URL: {fields.get(field)!r}")
if not fields["url"].endswith(f"/dbbackup-{version}-x86_64-linux-gnu.tar.gz"):
    fail(f"url {fields['url']} is not the {version} release tarball")
calls = [n.value for n in cls.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
directives = {}
for call in calls:
    directives.setdefault(call.func.id, []).append(call)
known = {"version", "license", "requires", "depends_on", "conflicts", "variant", "maintainers"}
if set(directives) - known:
    fail(f"unknown directives {sorted(set(directives) - known)}")
versions = {c.args[0].value: {k.arg: k.value.value for k in c.keywords} for c in directives.get("version", [])}
if versions.get(version, {}).get("sha256") != sha256:
    fail(f"version({version!r}, sha256=...) is {versions.get(version)}, the tarball's sha256 is {sha256}")
if [c.args[0].value for c in directives.get("license", [])] != ["MIT OR Apache-2.0"]:
    fail("license is not MIT OR Apache-2.0")
methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
if "install" not in methods or [a.arg for a in methods["install"].args.args] != ["self", "spec", "prefix"]:
    fail("no install(self, spec, prefix)")
body = ast.unparse(methods["install"])
for tree_name in ("bin", "share"):
    if f"install_tree('{tree_name}', prefix.{tree_name})" not in body:
        fail(f"install() does not install_tree {tree_name}/")
print(f"ci-recipes: Spack recipe compiles; Dbbackup(Package), version {version} with the tarball's sha256, "
      "install of bin/ and share/ (checked statically: Spack is not installed)")
PY
say "ok in $((SECONDS - start)) s"
