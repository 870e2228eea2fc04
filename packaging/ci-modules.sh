#!/usr/bin/env bash
# The standalone tarball installed as an HPC module, under Debian's Lmod (called by
# ci-wheel.sh):  ci-modules.sh TARBALL
# install-prefix.sh (the copy inside the tarball) installs it under a prefix with the
# Lua modulefile, and again with the Tcl one; a login bash loads each and finds the
# binary, the man page and the bash completion, and loses them on unload.
set -euo pipefail
start=$SECONDS
say() { echo "ci-modules: $*"; }
fail() { echo "ci-modules: FAILED: $*" >&2; exit 1; }
[ $# -eq 1 ] || fail "usage: ci-modules.sh TARBALL"
tarball=$(realpath "$1")
lmod_init=/usr/share/lmod/lmod/init/bash
if [ ! -f "$lmod_init" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lmod >/dev/null
fi
[ -f "$lmod_init" ] || fail "Debian's lmod did not install $lmod_init"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
unpacked=("$work"/dbbackup-*)
version=$("${unpacked[0]}/bin/dbbackup" --version)
version=${version#dbbackup }

for format in lua tcl; do
    prefix=$work/opt/dbbackup/$version-$format
    modulefiles=$work/modulefiles-$format
    flag=()
    [ "$format" = lua ] || flag=(--tcl)
    bash "${unpacked[0]}/share/dbbackup/install-prefix.sh" "${flag[@]}" "$tarball" "$prefix" "$modulefiles" >/dev/null
    # A login shell of a user: a clean environment, /etc/profile (Debian's
    # /etc/profile.d/lmod.sh defines `module`; sourcing the init is the fallback).
    env -i HOME="$work" USER=ci PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb \
        PREFIX="$prefix" MODULEFILES="$modulefiles" VERSION="$version" FORMAT="$format" LMOD_INIT="$lmod_init" \
        bash -l <<'SH' || fail "the $format modulefile (see above)"
set -euo pipefail
fail() { echo "ci-modules: FAILED ($FORMAT modulefile): $*" >&2; exit 1; }
type module >/dev/null 2>&1 || source "$LMOD_INIT"
! command -v dbbackup >/dev/null || fail "dbbackup on PATH before the module is loaded"
module use "$MODULEFILES"
module load dbbackup
[ "$(command -v dbbackup)" = "$PREFIX/bin/dbbackup" ] || fail "dbbackup on PATH is $(command -v dbbackup)"
[ "$(dbbackup --version)" = "dbbackup $VERSION" ] || fail "dbbackup --version says $(dbbackup --version)"
module list 2>&1 | grep -q "dbbackup/$VERSION" || fail "module list does not show dbbackup/$VERSION"
module help dbbackup 2>&1 | grep -q "man dbbackup" || fail "module help dbbackup: $(module help dbbackup 2>&1)"
module whatis dbbackup 2>&1 | grep -q "License: MIT OR Apache-2.0" || fail "module whatis: $(module whatis dbbackup 2>&1)"
# The man page: on MANPATH, and found by man when man-db is installed.
case ":$MANPATH:" in *":$PREFIX/share/man:"*) ;; *) fail "MANPATH=$MANPATH lacks $PREFIX/share/man" ;; esac
[ -f "$PREFIX/share/man/man1/dbbackup.1" ] || fail "no $PREFIX/share/man/man1/dbbackup.1"
if command -v man >/dev/null; then
    [ "$(man -w dbbackup)" = "$PREFIX/share/man/man1/dbbackup.1" ] || fail "man -w dbbackup: $(man -w dbbackup)"
    [ "$(man -w dbbackup-restore)" = "$PREFIX/share/man/man1/dbbackup-restore.1" ] || fail "no dbbackup-restore(1)"
fi
# Bash completion: bash-completion's loader looks in XDG_DATA_DIRS/bash-completion;
# the Lua modulefile also sources it (a bash without bash-completion).
completion=$PREFIX/share/bash-completion/completions/dbbackup
case ":$XDG_DATA_DIRS:" in *":$PREFIX/share:"*) ;; *) fail "XDG_DATA_DIRS=$XDG_DATA_DIRS lacks $PREFIX/share" ;; esac
[ -f "$completion" ] || fail "no $completion"
if [ "$FORMAT" = lua ]; then
    complete -p dbbackup >/dev/null 2>&1 || fail "no bash completion for dbbackup after module load"
else
    source "$completion"
fi
# The completion completes: subcommands after `dbbackup res`.
COMP_WORDS=(dbbackup res); COMP_CWORD=1; COMP_LINE="dbbackup res"; COMP_POINT=${#COMP_LINE}
func=$(complete -p dbbackup | sed -n 's/.*-F \([^ ]*\).*/\1/p')
"$func" dbbackup res dbbackup
[[ " ${COMPREPLY[*]} " == *" restore "* ]] || fail "completing 'dbbackup res' gave: ${COMPREPLY[*]}"
module unload dbbackup
! command -v dbbackup >/dev/null || fail "dbbackup still on PATH after module unload"
case ":${MANPATH:-}:" in *":$PREFIX/share/man:"*) fail "MANPATH keeps $PREFIX/share/man after unload" ;; esac
echo "ci-modules: $FORMAT modulefile under Lmod $(module --version 2>&1 | grep -o 'Version [0-9.]*' | head -n1): dbbackup $VERSION, man page, bash completion; gone on unload"
SH
done
say "ok in $((SECONDS - start)) s"
