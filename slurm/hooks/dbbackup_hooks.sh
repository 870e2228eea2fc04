# shellcheck shell=bash
# dbbackup hooks for SLURM job scripts. Source this file, then:
#
#   dbbackup_pre_job                 # restore point before the work (once per array)
#   dbbackup_run_work CMD [ARGS...]  # run the work; back up on the time-limit warning
#   dbbackup_post_job "$status"      # back up after the work, log the exit status
#
# Bash runs a trap only after the foreground command returns, so the work runs in
# the background and we `wait` for it: `wait` returns at once when a signal
# arrives, the trap runs, and we go back to waiting.
#
# With `#SBATCH --signal=B:USR1@SECONDS`, SLURM sends USR1 to this shell that long
# before the time limit (up to 60 s earlier); the trap makes a backup then.
#
# A failed backup never fails the job unless DBBACKUP_STRICT=1.

: "${DBBACKUP:=dbbackup}"
: "${DBBACKUP_STRICT:=0}"

# Run dbbackup; report a failure, and return it only in strict mode.
dbbackup__run() {
    local rc=0
    "$DBBACKUP" "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "dbbackup $1 failed with exit code $rc" >&2
        if [ "$DBBACKUP_STRICT" = "1" ]; then
            return "$rc"
        fi
    fi
    return 0
}

dbbackup_pre_job() {
    dbbackup__run pre-job
}

# dbbackup_post_job STATUS: STATUS is the work's exit status, recorded in the log.
dbbackup_post_job() {
    dbbackup__run post-job --status "${1:-0}"
}

# Called on USR1: the time limit is near. `auto` with no interval backs up if the
# database changed, and returns at once if another backup is already running.
dbbackup_on_time_limit() {
    echo "dbbackup: time limit near, backing up" >&2
    DBBACKUP_MIN_INTERVAL_HOURS=0 dbbackup__run auto
}

# SLURM may send the warning up to 60 s early, even before the work starts, and
# bash's default for USR1 is to exit: trap it from the moment this file is sourced.
trap dbbackup_on_time_limit USR1

# dbbackup_run_work CMD [ARGS...]: run the work in the background, wait for it
# (through any number of signals), and return its exit status.
dbbackup_run_work() {
    "$@" &
    local work=$!
    # At the time limit SLURM sends TERM: pass it on to the work and keep waiting.
    trap 'kill -TERM "$work" 2>/dev/null' TERM
    local rc=0
    while true; do
        rc=0
        wait "$work" || rc=$?
        # wait returns >128 when a trapped signal interrupted it; the work may still run.
        if [ "$rc" -gt 128 ] && kill -0 "$work" 2>/dev/null; then
            continue
        fi
        break
    done
    trap - TERM
    return "$rc"
}
