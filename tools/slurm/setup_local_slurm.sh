#!/usr/bin/env bash
# Set up (idempotently) a single-node SLURM cluster on this machine, for tests and CI.
#
# Usage: tools/slurm/setup_local_slurm.sh [--check] [--stop]
#   (no option)  install slurmctld/slurmd/munge if missing, write /etc/slurm/slurm.conf
#                (only if absent or written by this script), start munged, slurmctld and
#                slurmd if they are not running, and wait until `sinfo` shows the node usable.
#                slurmctld starts with -c (no job records from its previous run) when the
#                config is ours: those jobs died with the daemons.
#   --check      exit 0 if a usable SLURM answers (sinfo shows an idle/mixed/allocated node),
#                1 otherwise; changes nothing.
#   --stop       stop the daemons this script started (munged, slurmctld, slurmd).
#
# Needs root and apt-get (Debian/Ubuntu). Exit codes: 0 ready, 1 error, 2 cannot run here
# (not root / no apt-get / packages cannot be installed): the tests skip on 2.
#
# Env:
#   SLURM_SETUP_TIMEOUT   seconds to wait for the node to become idle (default 90)
#   SLURM_SETUP_CPUS      CPUs to declare for the node (default: what `slurmd -C` detects)
set -euo pipefail

conf_dir=/etc/slurm
conf="${conf_dir}/slurm.conf"
marker="# written by espnet-hifigan tools/slurm/setup_local_slurm.sh"
state_dir=/var/spool/slurm-espnet-hifigan
log_dir=/var/log/slurm
timeout="${SLURM_SETUP_TIMEOUT:-90}"

log() { echo "setup_local_slurm: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
cannot() { log "CANNOT RUN HERE: $*"; exit 2; }

node_usable() {
    # True if sinfo answers and at least one node is in a schedulable state.
    local states
    states="$(timeout 10 sinfo -h -o '%t' 2>/dev/null)" || return 1
    grep -Eq '^(idle|mix|alloc|comp)' <<<"${states}"
}

running() {
    # True if a process with exactly this command name runs.
    pgrep -x "$1" >/dev/null 2>&1
}

stop_daemons() {
    local d pid
    for d in slurmd slurmctld munged; do
        for pid in $(pgrep -x "${d}" || true); do
            log "stopping ${d} (pid ${pid})"
            kill "${pid}" 2>/dev/null || true
        done
    done
}

case "${1:-}" in
    --check)
        command -v sinfo >/dev/null 2>&1 && node_usable && exit 0
        exit 1
        ;;
    --stop)
        stop_daemons
        exit 0
        ;;
    "") ;;
    *)
        echo "Usage: $0 [--check|--stop]" >&2
        exit 1
        ;;
esac

# Reuse a SLURM that already works (ours from an earlier run, or a real cluster).
if command -v sinfo >/dev/null 2>&1 && node_usable; then
    log "SLURM already up: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    cannot "needs root to install and start SLURM (uid $(id -u))"
fi

# 1. Packages.
need_pkgs=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs+=("${pair#*:}")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || cannot "apt-get not found; install ${need_pkgs[*]} by hand"
    log "installing ${need_pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/tmp/setup_local_slurm.apt.log 2>&1 \
        || { apt-get update -qq >>/tmp/setup_local_slurm.apt.log 2>&1 \
            && apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >>/tmp/setup_local_slurm.apt.log 2>&1; }; }; then
        tail -n 20 /tmp/setup_local_slurm.apt.log >&2 || true
        cannot "apt-get install ${need_pkgs[*]} failed (see /tmp/setup_local_slurm.apt.log)"
    fi
fi

# 2. Munge (authentication between the SLURM daemons and clients).
munge_user=root
if id munge >/dev/null 2>&1; then
    munge_user=munge
fi
install -d -m 0700 -o "${munge_user}" -g "${munge_user}" /etc/munge
install -d -m 0711 -o "${munge_user}" -g "${munge_user}" /var/lib/munge
install -d -m 0700 -o "${munge_user}" -g "${munge_user}" /var/log/munge
install -d -m 0755 -o "${munge_user}" -g "${munge_user}" /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown "${munge_user}:${munge_user}" /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if running munged; then
        log "munged runs but does not answer; restarting it"
        pkill -x munged || true
        sleep 1
    fi
    log "starting munged as ${munge_user}"
    if [ "${munge_user}" = root ]; then
        munged --force
    else
        runuser -u munge -- munged
    fi
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# 3. slurm.conf: only written when absent or written by us (never overwrite a site config).
host="$(hostname -s)"
detected="$(slurmd -C 2>/dev/null | head -n 1)"
cpus="${SLURM_SETUP_CPUS:-$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"${detected}")}"
[ -n "${cpus}" ] || cpus="$(nproc)"
mem="$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"${detected}")"
[ -n "${mem}" ] || mem="$(free -m | awk '/^Mem:/ {print $2}')"
# Keep some memory for the OS so that --mem requests are checked against a realistic limit.
mem=$(( mem > 2048 ? mem - 1024 : mem ))

if [ -f "${conf}" ] && ! grep -qF "${marker}" "${conf}"; then
    log "keeping the existing ${conf} (not written by this script)"
else
    mkdir -p "${conf_dir}" "${state_dir}/ctld" "${state_dir}/d" "${log_dir}"
    new_conf="$(mktemp)"
    cat >"${new_conf}" <<EOF
${marker}
# Single-node test cluster (tests/test_slurm.py, CI). Not meant for production use.
# Cluster name and controller; 127.0.0.1 because only this machine takes part.
ClusterName=localtest
SlurmctldHost=${host}(127.0.0.1)
# Daemons run as root: no spool-directory ownership juggling on a throw-away machine.
SlurmUser=root
SlurmdUser=root
# Authentication through munged (the default and only supported method).
AuthType=auth/munge
# Where the controller and the node daemon keep state, pid files and logs.
StateSaveLocation=${state_dir}/ctld
SlurmdSpoolDir=${state_dir}/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${log_dir}/slurmctld.log
SlurmdLogFile=${log_dir}/slurmd.log
# Track job processes through /proc and bind nothing: works without cgroups (containers, gVisor).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# CPUs are consumable resources; memory is only checked against RealMemory, not reserved.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Backfill scheduler (the default).
SchedulerType=sched/backfill
# No accounting daemon (slurmdbd): scripts/slurm.sh does not need sacct.
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No MPI plugin: srun starts plain processes (torch.distributed does its own rendezvous).
MpiDefault=none
# A node that was down comes back by itself once its slurmd registers again.
ReturnToService=2
# Jobs may requeue themselves (preemption handling in scripts/slurm.sh --requeue true).
JobRequeue=1
# Seconds between SIGTERM and SIGKILL when a job is cancelled or runs out of time.
KillWait=10
# Finished jobs stay visible to scontrol for 5 minutes (scripts/slurm.sh reports their state).
MinJobAge=300
# Try to start pending jobs every 2 s instead of every 60 s (keeps tests short).
SchedulerParameters=sched_interval=2
# This machine, with the CPUs and memory slurmd detects (minus 1 GiB for the system).
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
# One default partition holding the node.
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if [ -f "${conf}" ] && cmp -s "${new_conf}" "${conf}"; then
        rm -f "${new_conf}"
    else
        log "writing ${conf}"
        mv "${new_conf}" "${conf}"
        chmod 0644 "${conf}"
        # A changed config needs restarted daemons.
        for d in slurmd slurmctld; do
            if running "${d}"; then
                log "restarting ${d} for the new config"
                pkill -x "${d}" || true
            fi
        done
        sleep 1
    fi
fi

# 4. Daemons.
if ! running slurmctld; then
    if grep -qF "${marker}" "${conf}"; then
        # Our throw-away cluster: a controller that is not running went down with its jobs
        # (a reboot, a killed container), so start without the job records it saved then;
        # restored, they hold CPUs for processes that no longer exist and new jobs never start.
        log "starting slurmctld (clearing job records of its previous run)"
        slurmctld -c
    else
        log "starting slurmctld"
        slurmctld
    fi
fi
if ! running slurmd; then
    log "starting slurmd"
    slurmd
fi

# 5. Wait until the node can take jobs.
deadline=$(( SECONDS + timeout ))
resumed=0
while [ "${SECONDS}" -lt "${deadline}" ]; do
    if node_usable; then
        log "SLURM ready: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')"
        exit 0
    fi
    state="$(timeout 10 sinfo -h -o '%t' 2>/dev/null | head -n 1 || true)"
    case "${state}" in
        down*|drain*|drng*|fail*)
            if [ "${resumed}" -lt 3 ]; then
                log "node is ${state}; resuming it"
                scontrol update NodeName="${host}" State=RESUME >/dev/null 2>&1 || true
                resumed=$(( resumed + 1 ))
            fi
            ;;
    esac
    sleep 1
done
log "node state: $(sinfo -N -h -o '%N %t %E' 2>&1 || true)"
tail -n 20 "${log_dir}/slurmctld.log" "${log_dir}/slurmd.log" >&2 2>/dev/null || true
die "SLURM did not become ready within ${timeout} s"
