#!/bin/bash
# A one-node SLURM cluster on localhost for the project's end-to-end tests, from
# Debian's slurm-wlm and munge. Run as root.
#
#   slurm/dev/local-cluster.sh start    # munged, slurmctld, slurmd; waits until idle
#   slurm/dev/local-cluster.sh stop
#   slurm/dev/local-cluster.sh status
#
# proctrack/linuxproc and task/none need no cgroups; config_overrides lets the
# node declare more CPUs than the machine has, so a 16-task array runs at once.
#
# It stops only the daemons it started, by their pid files (never by name: the
# host may run a slurmd or munged of its own).
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/spool/slurm-dbbackup
LOGS=/var/log/slurm-dbbackup
CPUS=${DBBACKUP_TEST_CPUS:-32}
CTLD_PID=/run/slurmctld-dbbackup.pid
SLURMD_PID=/run/slurmd-dbbackup.pid
MUNGE_PID=/run/munge/munged.pid
# Present only when this script started munged.
MUNGE_OURS=/run/munged-dbbackup.started

need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "local-cluster: $tool not found; install: apt-get install slurm-wlm munge" >&2
            exit 1
        fi
    done
}

write_config() {
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
    cat > "$CONF_DIR/slurm.conf" <<CONF
ClusterName=dbbackup-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
ScronParameters=enable
# Quick turnaround for tests: time limits enforced promptly, short kill grace.
KillWait=5
MinJobAge=300
InactiveLimit=0
SchedulerParameters=defer_batch=0
NodeName=localhost CPUs=$CPUS RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    # Debian's plugstack.conf includes a directory that may be missing.
    mkdir -p "$CONF_DIR/plugstack.conf.d"
}

# The pid in pid file $1 is alive and not a zombie (daemons killed uncleanly stay
# zombies for a while).
alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) || return 1
    case "$pid" in "" | *[!0-9]*) return 1 ;; esac
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Stop the daemon whose pid file is $1, if it runs; wait until it is gone.
stop_pidfile() {
    local pid
    if alive "$1"; then
        pid=$(cat "$1")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            alive "$1" || break
            sleep 0.1
        done
        if alive "$1"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$1"
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munge() {
    if munge_works; then
        return
    fi
    if [ -e "$MUNGE_OURS" ]; then
        stop_pidfile "$MUNGE_PID"
    fi
    mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    # --force: take over a socket left by a munged that was killed.
    runuser -u munge -- /usr/sbin/munged --force
    touch "$MUNGE_OURS"
    for _ in $(seq 100); do
        if munge_works; then return; fi
        sleep 0.1
    done
    echo "local-cluster: munged did not start" >&2
    exit 1
}

start() {
    need slurmctld slurmd munged sinfo scontrol
    write_config
    start_munge
    if ! timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
        stop_pidfile "$CTLD_PID"
        slurmctld -c
    fi
    if ! alive "$SLURMD_PID"; then
        slurmd -N localhost
    fi
    local deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do
        state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null || true)
        case "$state" in
            idle*|mixed*|allocated*)
                echo "local-cluster: up ($state, $CPUS CPUs)"
                return 0 ;;
            down*|drain*|fail*)
                scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    echo "local-cluster: node did not become idle; logs in $LOGS" >&2
    tail -n 20 "$LOGS"/*.log >&2 || true
    exit 1
}

stop() {
    stop_pidfile "$SLURMD_PID"
    stop_pidfile "$CTLD_PID"
    if [ -e "$MUNGE_OURS" ]; then
        stop_pidfile "$MUNGE_PID"
        rm -f "$MUNGE_OURS"
    fi
    echo "local-cluster: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
