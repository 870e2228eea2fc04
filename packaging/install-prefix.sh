#!/usr/bin/env bash
# Install the standalone release tarball under PREFIX with a modulefile, for HPC sites
# that install tools as modules:
#
#   install-prefix.sh [--lua|--tcl] SOURCE PREFIX [MODULEFILES]
#
# SOURCE: dbbackup-VERSION-x86_64-linux-gnu.tar.gz or the directory it unpacks to
# (this script is in it, as share/dbbackup/install-prefix.sh). PREFIX receives
# bin/dbbackup, share/man/man1/dbbackup*.1, share/bash-completion/completions/dbbackup
# (zsh, fish beside it) and share/doc/dbbackup. MODULEFILES (default
# PREFIX/share/modulefiles) receives dbbackup/VERSION, a Tcl modulefile that
# Environment Modules and Lmod both read, or with --lua dbbackup/VERSION.lua for Lmod
# alone. Without either option the module system of this shell decides: Lmod
# ($LMOD_CMD set) gets the Lua file, anything else the Tcl one. Then:
#
#   module use MODULEFILES; module load dbbackup
#
# PREFIX goes into the modulefile as it is: letters, digits and ._/+@=,:~- only (no
# space, quote, $, [ or \). --lua and --tcl may come anywhere; any other -option is
# refused. What is installed gets u=rwX,go=rX whatever the installer's umask (077
# would hide it from users). Files are replaced by renaming, so a dbbackup running
# from PREFIX does not stop a reinstall.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "install-prefix.sh: $*" >&2; exit 1; }
usage_line="usage: install-prefix.sh [--lua|--tcl] TARBALL|DIR PREFIX [MODULEFILES]"
usage() { echo "install-prefix.sh: $* ($usage_line)" >&2; exit 2; }

format=
args=()
for arg in "$@"; do
    case $arg in
        --tcl) format=tcl ;;
        --lua) format=lua ;;
        -h|--help) echo "$usage_line"; sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) usage "unknown option $arg" ;;
        *) args+=("$arg") ;;
    esac
done
if [ ${#args[@]} -lt 2 ] || [ ${#args[@]} -gt 3 ]; then usage "expected 2 or 3 arguments, got ${#args[@]}"; fi
source=${args[0]}
# Environment Modules cannot load a Lua file; the Tcl one loads under both systems.
if [ -z "$format" ]; then
    if [ -n "${LMOD_CMD:-}" ]; then format=lua; else format=tcl; fi
fi
prefix=${args[1]}
modulefiles=${args[2]:-$prefix/share/modulefiles}
# Modes are set explicitly below; this covers the directories made on the way.
umask 022
# The modulefile names PREFIX: it must be absolute, and plain enough to go into a
# Lua and a Tcl string as it is.
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
case $modulefiles in /*) ;; *) modulefiles=$PWD/$modulefiles ;; esac
[[ $prefix =~ ^[A-Za-z0-9._/+@=,:~-]+$ ]] \
    || fail "PREFIX $prefix has a character a modulefile cannot hold as is (quote, space, \$, [, \\)"

if [ ! -e "$source" ]; then
    fail "$source does not exist: give the release tarball (dbbackup-VERSION-x86_64-linux-gnu.tar.gz) or the directory it unpacks to"
elif [ -f "$source" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # One line: what tar (or gzip under it) said first is the reason.
    if ! said=$(tar -C "$work" -xzf "$source" 2>&1); then
        fail "cannot unpack $source: $(grep -m1 . <<<"$said")"
    fi
    top=("$work"/*)
    [ ${#top[@]} -eq 1 ] || fail "$source has ${#top[@]} top-level entries, expected one directory"
    tree=${top[0]}
elif [ -d "$source" ]; then
    tree=$source
else
    fail "$source is neither a tarball nor a directory"
fi
[ -x "$tree/bin/dbbackup" ] || fail "no bin/dbbackup in $source: not a dbbackup release tarball"
version=$("$tree/bin/dbbackup" --version) || fail "$tree/bin/dbbackup --version failed (not an x86_64 Linux with glibc 2.17+?)"
version=${version#dbbackup }

templates=$here/modules
[ -f "$templates/dbbackup.$format" ] || fail "no modulefile template $templates/dbbackup.$format"
# Each file is written beside its place and renamed over it: a dbbackup running from
# PREFIX (a job, a scrontab) keeps the old inode instead of making cp fail with "Text
# file busy", and one started meanwhile runs the old or the new file whole.
install_tree() {
    local rel dest tmp said
    while IFS= read -r -d '' rel; do
        dest=$prefix/$rel
        if [ -d "$tree/$rel" ] && [ ! -L "$tree/$rel" ]; then
            said=$(mkdir -p "$dest" 2>&1) || fail "cannot create $dest: $(grep -m1 . <<<"$said")"
        else
            tmp=$(dirname "$dest")/.$(basename "$dest").install-$$
            # Only what came from the tarball: PREFIX may be shared with other software.
            if ! said=$( { cp -P "$tree/$rel" "$tmp" && { [ -L "$tmp" ] || chmod u=rwX,go=rX "$tmp"; } \
                && mv -fT "$tmp" "$dest"; } 2>&1); then
                rm -f "$tmp"
                fail "cannot install $dest: $(grep -m1 . <<<"$said")"
            fi
        fi
    done < <(cd "$tree" && find bin share -print0)
    (cd "$tree" && find bin share -type d -print0) | (cd "$prefix" && xargs -0 chmod u=rwX,go=rX)
}
said=$(mkdir -p "$prefix" 2>&1) || fail "cannot create $prefix: $(grep -m1 . <<<"$said")"
install_tree
mkdir -p "$modulefiles/dbbackup"
case $format in
    lua) modulefile=$modulefiles/dbbackup/$version.lua ;;
    tcl) modulefile=$modulefiles/dbbackup/$version ;;
esac
# Comment lines (Tcl #, Lua --) keep their placeholders: they describe the template.
sed -e "/^[[:space:]]*\(#\|--\)/!{s|@PREFIX@|$prefix|g;s|@VERSION@|$version|g}" \
    "$templates/dbbackup.$format" >"$modulefile"
chmod u=rwX,go=rX "$modulefiles/dbbackup" "$modulefile"
echo "installed dbbackup $version in $prefix"
case $format in
    lua) echo "modulefile: $modulefile (Lmod; for Environment Modules rerun with --tcl)" ;;
    tcl) echo "modulefile: $modulefile (Tcl: Environment Modules and Lmod)" ;;
esac
echo "use it:     module use $(printf %q "$modulefiles"); module load dbbackup"
