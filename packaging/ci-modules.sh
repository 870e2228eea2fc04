#!/usr/bin/env bash
# The standalone tarball installed as an HPC module (called by ci-wheel.sh):
#   ci-modules.sh TARBALL
# install-prefix.sh (the copy inside the tarball) installs it under a prefix with the
# Lua modulefile, and again with the Tcl one. The Lua one is loaded by Debian's Lmod,
# the Tcl one by Lmod and by Debian's Environment Modules: each in a clean bash that
# finds the binary, the man page and the bash completion, and loses them on unload.
set -euo pipefail
start=$SECONDS
say() { echo "ci-modules: $*"; }
fail() { echo "ci-modules: FAILED: $*" >&2; exit 1; }
[ $# -eq 1 ] || fail "usage: ci-modules.sh TARBALL"
tarball=$(realpath "$1")
lmod_init=/usr/share/lmod/lmod/init/bash
modules_init=/usr/share/modules/init/bash
# Debian's lmod and environment-modules conflict: installing one removes the other.
# Environment Modules is checked first (.ci/run installs it), then lmod replaces
# it for the Lmod checks (ci-recipes.sh, next, needs Lmod).
# install PACKAGE FILE REPLACED: PACKAGE, which installs FILE; REPLACED, removed by
# it, is purged (its profile script, kept as a conffile, would run in login shells).
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1 \
        || fail "apt-get install $1 failed"
    [ -f "$2" ] || fail "Debian's $1 did not install $2"
    dpkg --purge "$3" >/dev/null 2>&1 || true
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
unpacked=("$work"/dbbackup-*)
version=$("${unpacked[0]}/bin/dbbackup" --version)
version=${version#dbbackup }

for format in lua tcl; do
    prefix=$work/opt/dbbackup/$version-$format
    modulefiles=$work/modulefiles-$format
    flag=(--"$format")
    bash "${unpacked[0]}/share/dbbackup/install-prefix.sh" "${flag[@]}" "$tarball" "$prefix" "$modulefiles" >/dev/null
done

# check FORMAT SYSTEM: the FORMAT modulefile under SYSTEM (lmod or modules).
check() {
    local format=$1 system=$2 shell
    local prefix=$work/opt/dbbackup/$version-$format modulefiles=$work/modulefiles-$format
    # A user's shell, from a clean environment. Lmod: a login shell (Debian's
    # /etc/profile.d/lmod.sh defines `module`). Environment Modules: its own init
    # script, in a shell that reads no profile (Lmod's profile script, left as a
    # conffile when lmod was removed, must not define `module`).
    if [ "$system" = lmod ]; then
        shell=(bash -l)
    else
        shell=(bash --noprofile --norc)
    fi
    env -i HOME="$work" USER=ci PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb \
        PREFIX="$prefix" MODULEFILES="$modulefiles" VERSION="$version" FORMAT="$format" SYSTEM="$system" \
        LMOD_INIT="$lmod_init" MODULES_INIT="$modules_init" \
        "${shell[@]}" <<'SH' || fail "the $format modulefile under $system (see above)"
set -euo pipefail
fail() { echo "ci-modules: FAILED ($FORMAT modulefile, $SYSTEM): $*" >&2; exit 1; }
which_module() { module --version 2>&1 || true; }
if [ "$SYSTEM" = lmod ]; then
    # Lmod's `module --version` names Lua; a profile script the other system
    # left when it was removed (a conffile) may have defined its own `module`.
    [[ "$(which_module)" == *Lua* ]] || source "$LMOD_INIT"
    [[ "$(which_module)" == *Lua* ]] || fail "module is not Lmod: $(which_module)"
else
    source "$MODULES_INIT"
    [[ "$(which_module)" == *"Modules Release"* ]] || fail "module is not Environment Modules: $(which_module)"
fi
! command -v dbbackup >/dev/null || fail "dbbackup on PATH before the module is loaded"
# A system page man finds before the load (none where the image drops man pages).
system_page=$( { command -v man >/dev/null && man -w ls 2>/dev/null; } || true)
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
    # The system's pages too: MANPATH was unset, and must not become the prefix alone.
    [ -z "$system_page" ] || [ "$(man -w ls 2>&1)" = "$system_page" ] \
        || fail "man -w ls after module load: $(man -w ls 2>&1) (MANPATH=$MANPATH)"
fi
# Bash completion: bash-completion's loader looks in XDG_DATA_DIRS/bash-completion;
# the Lua modulefile, and the Tcl one under Environment Modules, also source it on
# load (a bash without bash-completion); the Tcl one leaves Lmod to the loader.
completion=$PREFIX/share/bash-completion/completions/dbbackup
case ":$XDG_DATA_DIRS:" in *":$PREFIX/share:"*) ;; *) fail "XDG_DATA_DIRS=$XDG_DATA_DIRS lacks $PREFIX/share" ;; esac
# It was unset, which means /usr/local/share:/usr/share: those stay on it.
case ":$XDG_DATA_DIRS:" in *":/usr/share:"*) ;; *) fail "XDG_DATA_DIRS=$XDG_DATA_DIRS lost the default /usr/share" ;; esac
[ -f "$completion" ] || fail "no $completion"
if [ "$FORMAT" = lua ] || [ "$SYSTEM" = modules ]; then
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
release=$(which_module | grep -o -E '(Version|Release) [0-9.]*' | head -n1)
echo "ci-modules: $FORMAT modulefile under $SYSTEM ($release): dbbackup $VERSION, man page, bash completion; gone on unload"
SH
}

[ -f "$modules_init" ] || install environment-modules "$modules_init" lmod
check tcl modules
[ -f "$lmod_init" ] || install lmod "$lmod_init" environment-modules
check lua lmod
check tcl lmod
say "ok in $((SECONDS - start)) s"
