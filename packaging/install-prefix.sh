#!/usr/bin/env bash
# Install the standalone release tarball under PREFIX with a modulefile, for HPC sites
# that install tools as modules:
#
#   install-prefix.sh [--tcl] SOURCE PREFIX [MODULEFILES]
#
# SOURCE: dbbackup-VERSION-x86_64-linux-gnu.tar.gz or the directory it unpacks to
# (this script is in it, as share/dbbackup/install-prefix.sh). PREFIX receives
# bin/dbbackup, share/man/man1/dbbackup*.1, share/bash-completion/completions/dbbackup
# (zsh, fish beside it) and share/doc/dbbackup. MODULEFILES (default
# PREFIX/share/modulefiles) receives dbbackup/VERSION.lua for Lmod, or with --tcl
# dbbackup/VERSION for Environment Modules (Lmod reads that too). Then:
#
#   module use MODULEFILES; module load dbbackup
#
# --tcl may come anywhere; any other -option is refused. What is installed gets
# u=rwX,go=rX whatever the installer's umask (077 would hide it from users).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "install-prefix.sh: $*" >&2; exit 1; }
usage_line="usage: install-prefix.sh [--tcl] TARBALL|DIR PREFIX [MODULEFILES]"
usage() { echo "install-prefix.sh: $* ($usage_line)" >&2; exit 2; }

format=lua
args=()
for arg in "$@"; do
    case $arg in
        --tcl) format=tcl ;;
        -h|--help) echo "$usage_line"; sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) usage "unknown option $arg" ;;
        *) args+=("$arg") ;;
    esac
done
if [ ${#args[@]} -lt 2 ] || [ ${#args[@]} -gt 3 ]; then usage "expected 2 or 3 arguments, got ${#args[@]}"; fi
source=${args[0]}
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
mkdir -p "$prefix"
cp -R "$tree/bin" "$tree/share" "$prefix/"
# Only what came from the tarball: PREFIX may be shared with other software.
(cd "$tree" && find bin share -print0) | (cd "$prefix" && xargs -0 chmod u=rwX,go=rX)
mkdir -p "$modulefiles/dbbackup"
case $format in
    lua) modulefile=$modulefiles/dbbackup/$version.lua ;;
    tcl) modulefile=$modulefiles/dbbackup/$version ;;
esac
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$templates/dbbackup.$format" >"$modulefile"
chmod u=rwX,go=rX "$modulefiles/dbbackup" "$modulefile"
echo "installed dbbackup $version in $prefix"
echo "modulefile: $modulefile"
echo "use it:     module use $modulefiles; module load dbbackup"
