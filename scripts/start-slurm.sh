#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for tests/slurm.rs:
# munged, slurmctld and slurmd, one node (this host) in one partition.
#
# Needs root and Debian's slurm-wlm and munge packages (.ci/run installs
# them). Runs the daemons directly, not through systemd, so it also works
# in containers. Idempotent: a second call restarts the daemons. Exits
# non-zero, printing the daemons' logs, if the node does not come up.
set -euo pipefail

conf_dir=/etc/slurm
log_dir=/var/log/slurm
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    if [[ -f $pidfile ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
done
sleep 1

mkdir -p /run/munge /var/lib/munge /var/log/munge "$conf_dir" "$log_dir" \
    /var/spool/slurmctld /var/spool/slurmd
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
runuser -u munge -- /usr/sbin/munged --force
munge -n | unmunge >/dev/null

# Consumable cores, so the tasks of an array job run side by side; no
# cgroups, accounting or MPI, which a bare container does not offer.
cat >"$conf_dir/slurm.conf" <<EOF
ClusterName=memsweep-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# slurmd initialises a cgroup plugin even when nothing above uses one.
# Slurm 23.02 and later can switch it off; 22.05 (Debian 12) needs the
# hierarchy this machine has: v2 managed by hand (no systemd here), or v1.
version=$(slurmd -V | awk '{print $2}')
if [[ $(printf '%s\n23.02\n' "$version" | sort -V | head -n1) == 23.02 ]]; then
    cgroup="CgroupPlugin=disabled"
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    cgroup=$'CgroupPlugin=cgroup/v2\nIgnoreSystemd=yes'
else
    cgroup="CgroupPlugin=cgroup/v1"
fi
printf '%s\n' "$cgroup" >"$conf_dir/cgroup.conf"

/usr/sbin/slurmctld -i
/usr/sbin/slurmd

for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$host" -o %t 2>/dev/null || true)
    if [[ $state == idle* || $state == mix* || $state == alloc* ]]; then
        echo "slurm: node $host is $state ($cpus CPUs)"
        exit 0
    fi
    sleep 1
done
echo "slurm: node $host did not come up (state: '${state:-unknown}')" >&2
for f in "$log_dir/slurmctld.log" "$log_dir/slurmd.log"; do
    echo "--- $f" >&2
    tail -n 40 "$f" >&2 || true
done
exit 1
