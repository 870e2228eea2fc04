# shellcheck shell=bash
# dbbackup hooks for hand-written job scripts: a shim over `dbbackup run`.
#
# The job templates no longer source this file. Their last line is
#
#   exec dbbackup run -- "$@"
#
# which does what the hooks did (pre-job, the work, the USR1 backup, post-job
# bounded after TERM), in one process that passes SLURM's signals on to the
# work's whole process group (docs/slurm.md). Write new scripts that way.
#
# Scripts written for the old hooks keep working:
#   dbbackup_pre_job               pre-job; stops the job if dbbackup cannot run
#   dbbackup_run_work CMD [ARGS]   replaces the script with `dbbackup run -- CMD`:
#                                  lines after it do not run (run does post-job
#                                  and exits with CMD's status)
#   dbbackup_post_job STATUS       post-job, for scripts that call it themselves
# DBBACKUP_STRICT=1 (or true/yes/on, as `dbbackup run` reads it) still makes a
# failed backup fail the job; any other word than those and 0/false/no/off stops
# the job (exit 2). DBBACKUP_FINAL=0
# and DBBACKUP_FINAL_SCRIPT still choose the array's final job.

: "${DBBACKUP:=dbbackup}"

# Passes an array task's final-job script on to pre-job and run. DBBACKUP_FINAL
# is a yes/no as in job_array.sbatch (unset or empty: yes); another word stops
# the job (exit 2).
dbbackup__final_args() {
    dbbackup__final=()
    [ -n "${SLURM_ARRAY_JOB_ID:-}" ] || return 0
    case $(printf '%s' "${DBBACKUP_FINAL:-1}" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]') in
        1 | true | yes | on)
            dbbackup__final=(--final-job "${DBBACKUP_FINAL_SCRIPT:-${BASH_SOURCE[0]%/*}/../final_backup.sbatch}")
            ;;
        0 | false | no | off) ;;
        *)
            echo "dbbackup: FATAL: DBBACKUP_FINAL: '${DBBACKUP_FINAL}' is not a yes/no value (use true/false, 1/0, yes/no or on/off); the job stops before its work." >&2
            exit 2
            ;;
    esac
}

# Whether DBBACKUP_STRICT says yes, read as `dbbackup run --strict` reads it;
# a word that is neither yes nor no stops the job, naming the variable.
dbbackup__strict() {
    local value
    value=$(printf '%s' "${DBBACKUP_STRICT:-}" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')
    case "$value" in
        1 | true | yes | on) return 0 ;;
        "" | 0 | false | no | off) return 1 ;;
    esac
    echo "dbbackup: FATAL: DBBACKUP_STRICT: '${DBBACKUP_STRICT}' is not a yes/no value (use true/false, 1/0, yes/no or on/off)" >&2
    exit 2
}

dbbackup_pre_job() {
    local rc=0
    # Checked first: a junk value must not let the work start unprotected.
    dbbackup__strict || true
    dbbackup__final_args
    "$DBBACKUP" pre-job ${dbbackup__final[@]+"${dbbackup__final[@]}"} || rc=$?
    case "$rc" in
        0) return 0 ;;
        2 | 126 | 127)
            echo "dbbackup: FATAL: pre-job could not run '$DBBACKUP' (exit $rc: 2 = bad configuration, 126 = not executable, 127 = not found); the job stops before its work." >&2
            exit "$rc"
            ;;
    esac
    echo "dbbackup pre-job failed with exit code $rc" >&2
    if dbbackup__strict; then
        return "$rc"
    fi
    return 0
}

dbbackup_run_work() {
    dbbackup__final_args
    exec "$DBBACKUP" run ${dbbackup__final[@]+"${dbbackup__final[@]}"} -- "$@"
}

dbbackup_post_job() {
    local rc=0
    # No STATUS given: post-job records exit_status=unknown, never a guessed 0.
    "$DBBACKUP" post-job ${1:+--status "$1"} || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "dbbackup post-job failed with exit code $rc" >&2
        if dbbackup__strict; then
            return "$rc"
        fi
    fi
    return 0
}
