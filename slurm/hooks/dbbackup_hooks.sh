# shellcheck shell=bash
# dbbackup hooks for SLURM job scripts. Source this file, then:
#
#   dbbackup_pre_job                 # restore point before the work (once per array)
#   dbbackup_run_work CMD [ARGS...]  # run the work; back up on the time-limit warning
#   dbbackup_post_job "$status"      # back up after the work, log the exit status
#
# Safe under `set -euo pipefail`. What SLURM really sends, and what the hooks do:
# - TERM at the time limit, on `scancel`, on preemption, possibly more than once:
#   TERM stays trapped until the script ends; the trap passes it on to the work
#   and the script goes on to post-job, which then finishes within
#   term_grace_seconds (20 s by default, inside SLURM's 30 s KillWait) and says
#   in its summary line when it gave up.
# - USR1 from `#SBATCH --signal=B:USR1@SECONDS` (up to 60 s early): a backup.
# Bash runs a trap only after the foreground command returns, so the work runs in
# the background and we `wait` for it: `wait` returns at once when a signal
# arrives, the trap runs, and we go back to waiting. Nothing in a trap can fail.
#
# Two hazards shape the code below; keep them in mind when changing it:
# - No command substitution or process substitution, `$(...)`, `<(...)`,
#   anywhere the traps may run: bash 5.2 parses a trap that runs while it
#   expands one inside the substitution's parser state, fails with "trap: line
#   N: unexpected EOF while looking for matching `)'" and ends the script
#   (exit 2: no post-job, and the job's exit status lost). Builtins only
#   (`read`, redirections, `trap -p` into a file).
# - SLURM sends TERM to every process of the job, so any command the hooks
#   start can die of it, even one that would ignore TERM: a child has bash's
#   default TERM handling from the fork until its first instruction. A command
#   whose effect matters runs again, once TERM has come, while the batch shell
#   ignores TERM (a child inherits an ignored signal from the fork on):
#   dbbackup__term_proof, and post-job after TERM.
# - A signal arriving while a trap waits for a command runs its trap inside
#   that one: traps must not nest without bound.
#
# In an array task, pre-job also submits the array's final job once (after every
# task, however it ended, it makes the `final` backup): set DBBACKUP_FINAL=0 to
# opt out, DBBACKUP_FINAL_SCRIPT to use another script.
#
# A failed backup never fails the job unless DBBACKUP_STRICT=1. But a dbbackup
# that cannot run at all (exit 2, 126, 127: misconfigured, not executable, not
# found) stops the job at pre-job, strict or not: the job must not run for days
# believing it is protected.

dbbackup__term=0      # SLURM sent TERM
dbbackup__signalled=0 # a trap ran while we were waiting for the work
dbbackup__work=""     # the work's pid while it runs
dbbackup__status_dir="" # the work's status file's private directory, while it runs
dbbackup__exit_trap=""  # the script's own EXIT trap (`trap -p` form) meanwhile
dbbackup__in_usr1=0     # the USR1 trap's backup is running
dbbackup__in_term=0     # the TERM trap's pkill is running

# A signal arriving while a trap waits for a command (the backup, pkill) runs its
# trap inside that one, the same trap included: one already running only notes
# the signal (a flood of them would otherwise nest until bash overflows its stack).
dbbackup__on_usr1() {
    dbbackup__signalled=1
    if [ "$dbbackup__in_usr1" = "0" ]; then
        dbbackup__in_usr1=1
        dbbackup_on_time_limit || true
        dbbackup__in_usr1=0
    fi
}

dbbackup__on_term() {
    dbbackup__signalled=1
    dbbackup__term=1
    if [ -n "$dbbackup__status_dir" ]; then
        # For a work subshell too young to have the TERM or a work to pass it
        # on to: it looks for this file before it starts the work.
        : 2>/dev/null >"$dbbackup__status_dir/term" || true
    fi
    if [ -n "$dbbackup__work" ] && [ "$dbbackup__in_term" = "0" ]; then
        dbbackup__in_term=1
        # Pass TERM on to the work (the child of the status-keeping subshell);
        # it may have ended already, so failing is expected.
        pkill -TERM -P "$dbbackup__work" 2>/dev/null || true
        dbbackup__in_term=0
    fi
}

# SLURM may send the warning up to 60 s early, even before the work starts, and
# bash's default for USR1 and TERM is to exit: trap both first thing, before this
# file runs any other command, and never reset them. `|| true`: errexit fires
# inside traps too.
trap 'dbbackup__on_usr1 || true' USR1
trap 'dbbackup__on_term || true' TERM

: "${DBBACKUP:=dbbackup}"
: "${DBBACKUP_STRICT:=0}"
: "${DBBACKUP_FINAL:=1}"
if [ -z "${DBBACKUP_FINAL_SCRIPT+set}" ]; then
    # No command substitution: a TERM killing its subshell would fail the
    # assignment, and `set -e` would end the script.
    dbbackup__hooks_dir=${BASH_SOURCE[0]%/*}
    case "$dbbackup__hooks_dir" in
        "${BASH_SOURCE[0]}") dbbackup__hooks_dir=. ;;
    esac
    case "$dbbackup__hooks_dir" in
        /*) ;;
        *) dbbackup__hooks_dir=$PWD/$dbbackup__hooks_dir ;;
    esac
    DBBACKUP_FINAL_SCRIPT=$dbbackup__hooks_dir/../final_backup.sbatch
fi

# Report a failed dbbackup; return the failure only in strict mode.
dbbackup__report() {
    if [ "$2" -ne 0 ]; then
        echo "dbbackup $1 failed with exit code $2" >&2 || true
        if [ "$DBBACKUP_STRICT" = "1" ]; then
            return "$2"
        fi
    fi
    return 0
}

# Run dbbackup; report a failure, and return it only in strict mode.
dbbackup__run() {
    local rc=0
    "$DBBACKUP" "$@" || rc=$?
    dbbackup__report "$1" "$rc"
}

dbbackup_pre_job() {
    local rc=0
    local args=(pre-job)
    if [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && [ "$DBBACKUP_FINAL" != "0" ] && [ -n "$DBBACKUP_FINAL_SCRIPT" ]; then
        args+=(--final-job "$DBBACKUP_FINAL_SCRIPT")
    fi
    "$DBBACKUP" "${args[@]}" || rc=$?
    case "$rc" in
        0) return 0 ;;
        2 | 126 | 127)
            {
                echo "dbbackup: FATAL: pre-job could not run '$DBBACKUP' (exit $rc: 2 = bad configuration, 126 = not executable, 127 = not found)."
                echo "dbbackup: the job stops here, before its work: it would have run without a restore point."
                echo "dbbackup: set DBBACKUP to the binary's absolute path (sbatch --export=NONE drops PATH) and check DBBACKUP_CONFIG."
            } >&2 || true
            exit "$rc"
            ;;
    esac
    echo "dbbackup pre-job failed with exit code $rc" >&2 || true
    if [ "$DBBACKUP_STRICT" = "1" ]; then
        return "$rc"
    fi
    return 0
}

# dbbackup_post_job STATUS: STATUS is the work's exit status, recorded in the log.
# After a TERM, post-job is bounded by term_grace_seconds and runs with TERM
# ignored from the fork on: SLURM may send more, and one arriving before
# dbbackup installs its handlers would kill it without a summary line. A
# subshell that ignores TERM is not enough (it has bash's default until its
# `trap '' TERM` runs): the batch shell ignores TERM meanwhile, which loses
# nothing (TERM is known already, the work has ended), and then traps it again.
dbbackup_post_job() {
    local rc=0
    if [ "$dbbackup__term" = "0" ]; then
        "$DBBACKUP" post-job --status "${1:-0}" || rc=$?
        if [ "$rc" -le 128 ] || [ "$dbbackup__term" = "0" ]; then
            dbbackup__report post-job "$rc"
            return
        fi
        # TERM arrived during it and stopped it: once more, bounded.
        rc=0
    fi
    trap '' TERM
    "$DBBACKUP" post-job --status "${1:-0}" --after-term || rc=$?
    trap 'dbbackup__on_term || true' TERM
    dbbackup__report post-job "$rc"
}

# Called on USR1: the time limit is near. `auto` with no interval backs up if the
# database changed, and returns at once if another backup is already running.
dbbackup_on_time_limit() {
    echo "dbbackup: time limit near, backing up" >&2 || true
    DBBACKUP_MIN_INTERVAL_HOURS=0 dbbackup__run auto
}

# dbbackup_run_work CMD [ARGS...]: run the work in the background, wait for it
# (through any number of signals), and return its exit status.
#
# Bash can lose a child's status when it exits while a trap interrupts `wait`
# (`wait` then returns 255 for good), so a small subshell runs the work in its
# foreground and writes the status to a file; `wait` only tells us when to look.
# A signal that arrives just as bash forks can kill that subshell before it has
# set its own traps, before the work started: then the work is started again.
#
# The status file sits in a private directory, removed on every way out: on
# return, and by an EXIT trap (chained to the script's own) if a signal bash does
# not trap ends the shell meanwhile. A work subshell still running then cannot
# recreate the file: its directory is gone. No status directory (it could not
# be made, or the script's EXIT trap could not be read): the work still runs,
# and its status is `wait`'s.
dbbackup_run_work() {
    if [ "$dbbackup__term" = "1" ]; then
        echo "dbbackup: SLURM sent TERM before the work started; not starting it" >&2 || true
        return 143
    fi
    local status_file="" exit_trap_known=0
    dbbackup__make_status_dir
    if [ -n "$dbbackup__status_dir" ]; then
        # The script's own EXIT trap, read back with builtins only: known if
        # read, or if there is none.
        dbbackup__exit_trap=""
        if { trap -p EXIT >"$dbbackup__status_dir/exit_trap"; } 2>/dev/null; then
            { IFS= read -r -d '' dbbackup__exit_trap <"$dbbackup__status_dir/exit_trap"; } 2>/dev/null || true
            if [ -n "$dbbackup__exit_trap" ] || [ ! -s "$dbbackup__status_dir/exit_trap" ]; then
                exit_trap_known=1
            fi
        fi
        if [ "$exit_trap_known" = "1" ]; then
            status_file=$dbbackup__status_dir/status
            trap 'dbbackup__on_exit || true' EXIT
        else
            dbbackup__remove_status_dir
        fi
    fi
    local rc=0 recorded="" attempt
    for attempt in 1 2 3; do
        # TERM may have come while the status directory was made.
        if [ "$dbbackup__term" = "1" ]; then
            echo "dbbackup: SLURM sent TERM before the work started; not starting it" >&2 || true
            rc=143
            break
        fi
        dbbackup__start_work "$status_file" "$@"
        while true; do
            dbbackup__signalled=0
            rc=0
            wait "$dbbackup__work" || rc=$?
            # A trap ran (the flag says so): the work may still run.
            if [ "$dbbackup__signalled" = "1" ]; then
                continue
            fi
            # Bash may run the trap only after this point; the file says whether
            # the work has ended ("started" and the subshell alive: not yet).
            recorded=""
            if [ -n "$status_file" ]; then
                { IFS= read -r recorded <"$status_file"; } 2>/dev/null || true
            fi
            # Nothing recorded yet and alive: about to record "started" (leaving
            # now would start the work twice). Dead: it died at fork.
            case "$recorded" in
                "" | started)
                    if kill -0 "$dbbackup__work" 2>/dev/null; then
                        continue
                    fi
                    ;;
            esac
            break
        done
        dbbackup__work=""
        if [ -z "$status_file" ] || [ -n "$recorded" ]; then
            break
        fi
        if [ "$dbbackup__term" = "1" ]; then
            # Its shell died of SLURM's TERM before it started the work (and
            # `wait` may have lost that status): as if TERM came before.
            echo "dbbackup: SLURM sent TERM as the work was starting; not starting it" >&2 || true
            rc=143
            break
        fi
        echo "dbbackup: the work's shell died before starting it (signal at fork, attempt $attempt); starting it again" >&2 || true
    done
    dbbackup__remove_status_dir
    if [ "$exit_trap_known" = "1" ]; then
        # The script's own EXIT trap back as it was (none: none).
        if [ -n "$dbbackup__exit_trap" ]; then
            eval "$dbbackup__exit_trap" || true
        else
            trap - EXIT
        fi
    fi
    case "$recorded" in
        "" | *[!0-9]*) ;;
        *) rc=$recorded ;;
    esac
    return "$rc"
}

# dbbackup__term_proof CMD [ARGS...]: run CMD so that SLURM's TERM cannot leave
# it undone. Until a TERM has come, as any command (a TERM killing it is trapped
# here too); once one has, with TERM ignored by the batch shell meanwhile, which
# loses nothing: TERM is known already, and no work runs when this is used.
dbbackup__term_proof() {
    local rc=0
    if [ "$dbbackup__term" = "0" ]; then
        "$@" || rc=$?
        if [ "$rc" -le 128 ] || [ "$dbbackup__term" = "0" ]; then
            return "$rc"
        fi
        rc=0
    fi
    trap '' TERM
    "$@" || rc=$?
    trap 'dbbackup__on_term || true' TERM
    return "$rc"
}

# dbbackup__make_status_dir: a private directory, named by us before it exists
# (mktemp's name would be lost with its output if TERM killed it after making
# the directory). Ours if it is there, a directory (not a link) we own, however
# mkdir ended; anything else (taken by someone else, no space): none.
dbbackup__make_status_dir() {
    local dir
    dbbackup__status_dir=""
    dir=${TMPDIR:-/tmp}/dbbackup-status.${HOSTNAME:-host}.$$.${SRANDOM:-$RANDOM}$RANDOM
    dbbackup__term_proof mkdir -m 700 -- "$dir" 2>/dev/null || true
    if [ -d "$dir" ] && [ ! -L "$dir" ] && [ -O "$dir" ]; then
        dbbackup__status_dir=$dir
    fi
}

# Removed until it is gone (a work subshell still running, on EXIT, may write its
# file between rm's unlink and rmdir).
dbbackup__remove_status_dir() {
    local attempt
    if [ -n "$dbbackup__status_dir" ]; then
        for attempt in 1 2 3; do
            dbbackup__term_proof rm -rf -- "$dbbackup__status_dir" 2>/dev/null || true
            if [ ! -e "$dbbackup__status_dir" ]; then
                break
            fi
        done
        dbbackup__status_dir=""
    fi
}

# EXIT while the work runs: remove the status file, then run the script's own
# EXIT trap with the exit status it would have seen.
dbbackup__on_exit() {
    local rc=$?
    dbbackup__remove_status_dir
    if [ -n "$dbbackup__exit_trap" ]; then
        local command
        # `trap -- 'COMMAND' EXIT`, quoted by bash for reuse: take COMMAND.
        eval "set -- ${dbbackup__exit_trap#trap -- }" || return 0
        command=$1
        # `$?` in the branch is the condition's: the status the trap would see.
        if dbbackup__return "$rc"; then
            eval "$command"
        else
            eval "$command"
        fi
    fi
}

dbbackup__return() {
    return "$1"
}

# dbbackup__start_work STATUS_FILE CMD [ARGS...]: the subshell that runs the work
# and records "started", then its exit status, in STATUS_FILE. A TERM that came
# before the work existed never reaches it (SLURM sent it to the processes of
# that moment; the batch shell's pkill found no work): the subshell does not
# start the work once it got TERM itself, or the batch shell left `term` beside
# the status file.
dbbackup__start_work() {
    local status_file=$1
    shift
    (
        # Caught, so the work starts with default handlers; deferred until it ends.
        dbbackup__term=0
        trap 'dbbackup__term=1' TERM
        trap 'true' USR1
        if [ -n "$status_file" ]; then
            echo started 2>/dev/null >"$status_file" || true
            if [ -e "${status_file%/*}/term" ]; then
                dbbackup__term=1
            fi
        fi
        rc=0
        if [ "$dbbackup__term" = "1" ]; then
            rc=143
        else
            "$@" || rc=$?
        fi
        if [ -n "$status_file" ]; then
            # Quietly: the status directory is gone if the batch shell died.
            echo "$rc" 2>/dev/null >"$status_file" || true
        fi
        exit "$rc"
    ) &
    dbbackup__work=$!
}
