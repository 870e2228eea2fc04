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
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "install-prefix.sh: $*" >&2; exit 1; }
usage() { fail "usage: install-prefix.sh [--tcl] TARBALL|DIR PREFIX [MODULEFILES]"; }

format=lua
if [ "${1:-}" = --tcl ]; then format=tcl; shift; fi
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
source=$1
prefix=$2
modulefiles=${3:-$2/share/modulefiles}
# The modulefile names PREFIX: it must be absolute, and plain enough to go into a
# Lua and a Tcl string as it is.
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
case $modulefiles in /*) ;; *) modulefiles=$PWD/$modulefiles ;; esac
[[ $prefix =~ ^[A-Za-z0-9._/+@=,:~-]+$ ]] \
    || fail "PREFIX $prefix has a character a modulefile cannot hold as is (quote, space, \$, [, \\)"

if [ -f "$source" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    tar -C "$work" -xzf "$source" || fail "cannot unpack $source"
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
mkdir -p "$modulefiles/dbbackup"
case $format in
    lua) modulefile=$modulefiles/dbbackup/$version.lua ;;
    tcl) modulefile=$modulefiles/dbbackup/$version ;;
esac
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$templates/dbbackup.$format" >"$modulefile"
echo "installed dbbackup $version in $prefix"
echo "modulefile: $modulefile"
echo "use it:     module use $modulefiles; module load dbbackup"
