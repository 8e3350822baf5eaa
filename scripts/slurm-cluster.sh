#!/usr/bin/env bash
# A real two-node Slurm cluster on this machine, for the tests of the Slurm executor and for
# users who want to try `gadugi run --executor slurm` without a cluster:
#
#   scripts/slurm-cluster.sh up DIR [PORT_BASE]   bring it up, all state in DIR; prints DIR/env
#   scripts/slurm-cluster.sh status DIR           which daemons run, and what sinfo says
#   scripts/slurm-cluster.sh down DIR             stop its daemons (by the pids in DIR only)
#
# One controller (slurmctld on PORT_BASE) and two nodes n1 and n2 (slurmd on PORT_BASE+1 and
# PORT_BASE+2), one CPU each, in one partition `agents`, on 127.0.0.1, with their own munged
# (own key, own socket): two clusters with different DIR and PORT_BASE run side by side and
# nothing touches the machine's own munge or Slurm. Needs Debian's slurmctld, slurmd,
# slurm-client and munge (22.05). Runs as root (slurmd must start jobs as their user) — as
# another user, munged and the daemons run as that user with a key of their own.
#
# Clients (sbatch, squeue, scancel, sinfo) find the cluster through SLURM_CONF: `source DIR/env`.
set -euo pipefail

usage() {
  echo "usage: $0 up DIR [PORT_BASE] | status DIR | down DIR" >&2
  exit 2
}

# pid_of NAME: the pid in DIR's pid file NAME, if the file holds a live process of ours.
# The process must still be the program that wrote it (a pid can be reused after a crash).
pid_of() {
  local file="$DIR/run/$1.pid" program="$2" pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 2>/dev/null <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$program" || return 1
  # a zombie nobody reaped is gone for our purposes
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

# stop NAME PROGRAM: SIGTERM to the pid in NAME's pid file, SIGKILL after 15 s; waits for it.
stop() {
  local pid i
  pid=$(pid_of "$1" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    pid_of "$1" "$2" >/dev/null || return 0
    sleep 0.1
  done
  echo "$1 (pid $pid) did not stop on SIGTERM in 15 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_of "$1" "$2" >/dev/null || return 0
    sleep 0.1
  done
}

down() {
  # First the jobs: a job's slurmstepd and processes outlive slurmd, and would go on (and
  # call a controller port that another cluster may take next). scancel ends them through
  # Slurm (SIGTERM, SIGKILL after KillWait); at most 15 s are given for that.
  if pid_of slurmctld slurmctld >/dev/null && [ -f "$DIR/slurm.conf" ]; then
    export SLURM_CONF="$DIR/slurm.conf"
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
      scancel --user="$(id -un)" 2>/dev/null || true
      local i
      for ((i = 0; i < 150; i++)); do
        [ -n "$(squeue -h -o %i 2>/dev/null)" ] || break
        sleep 0.1
      done
    fi
  fi
  stop slurmd-n1 slurmd
  stop slurmd-n2 slurmd
  stop slurmctld slurmctld
  stop munged munged
}

status() {
  local name program pid
  for name in munged slurmctld slurmd-n1 slurmd-n2; do
    program=${name%-n[12]}
    if pid=$(pid_of "$name" "$program"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; fi
  done
  if [ -f "$DIR/slurm.conf" ]; then
    SLURM_CONF="$DIR/slurm.conf" sinfo -N -o '%N %P %t' 2>&1 || true
  fi
}

# fail MESSAGE: says what went wrong with the last lines of the daemons' logs, stops what
# started, exits 1.
fail() {
  echo "slurm-cluster: $1" >&2
  local log
  for log in "$DIR"/log/*.log; do
    [ -f "$log" ] || continue
    echo "--- last lines of $log" >&2
    tail -n 15 "$log" >&2
  done
  down
  exit 1
}

up() {
  local program
  for program in munged slurmctld slurmd sbatch sinfo; do
    command -v "$program" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$program" >/dev/null ||
      { echo "slurm-cluster: $program not found: install slurmctld slurmd slurm-client munge (Debian: apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)" >&2; exit 1; }
  done
  export PATH="$PATH:/usr/sbin"
  local started=$SECONDS
  local user group munge_user host
  user=$(id -un)
  group=$(id -gn)
  host=$(hostname -s)
  # munged refuses to run as root; as root it runs as Debian's `munge` user.
  if [ "$(id -u)" = 0 ]; then munge_user=munge; else munge_user=$user; fi

  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P) # the daemons chdir / : every path they get must be absolute
  # If a cluster from an earlier `up` still runs here, stop it first.
  down
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/state" "$DIR/munge"
  # munged (not root) must traverse DIR to its key, socket, pid and log files; it rejects
  # folders others may write to.
  chmod 0755 "$DIR" "$DIR/run" "$DIR/log"
  chmod 0700 "$DIR/state"
  chmod 0755 "$DIR/munge"

  # --- munged: a key and socket of this cluster's own
  # A key of its own, not the machine's /etc/munge/munge.key: a daemon or client of another
  # cluster on this machine (another test's, whose ports this one may reuse) cannot talk to
  # this one.
  local key="$DIR/munge/munge.key" socket="$DIR/munge/munge.socket"
  if [ ! -s "$key" ]; then
    dd if=/dev/urandom of="$key" bs=128 count=1 status=none
  fi
  chmod 0400 "$key"
  touch "$DIR/log/munged.log" "$DIR/run/munged.pid"
  if [ "$munge_user" != "$user" ]; then
    chown "$munge_user:" "$DIR/munge" "$key" "$DIR/log/munged.log" "$DIR/run/munged.pid"
    chmod 0755 "$DIR/munge"
  fi
  local munged_args=(--socket="$socket" --key-file="$key" --pid-file="$DIR/run/munged.pid"
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" --num-threads=2)
  if [ "$munge_user" != "$user" ]; then
    runuser -u "$munge_user" -- munged "${munged_args[@]}" || fail "munged did not start"
  else
    munged "${munged_args[@]}" || fail "munged did not start"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    if munge -n -S "$socket" 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  ((i < 100)) || fail "munged does not answer on $socket"

  # --- slurm.conf
  local ctld_port=$PORT_BASE n1_port=$((PORT_BASE + 1)) n2_port=$((PORT_BASE + 2))
  cat >"$DIR/slurm.conf" <<EOF
# Written by scripts/slurm-cluster.sh: a two-node cluster on 127.0.0.1, all state in $DIR.
ClusterName=gadugi$PORT_BASE
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
# Finished jobs stay visible to squeue --states=all for 5 minutes.
MinJobAge=300
# A cancelled job's processes get SIGTERM, then SIGKILL 10 s later.
KillWait=10
# A node whose slurmd stopped answering is marked down after 30 s, and back by itself.
SlurmdTimeout=30
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$n1_port CPUs=1 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$n2_port CPUs=1 State=UNKNOWN
PartitionName=agents Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$DIR/slurm.conf"

  # --- the daemons (each forks into the background and writes its pid file)
  slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
  slurmd -f "$SLURM_CONF" -N n1 || fail "slurmd n1 did not start"
  slurmd -f "$SLURM_CONF" -N n2 || fail "slurmd n2 did not start"

  # --- ready when both nodes are idle
  local states=""
  for ((i = 0; i < 600; i++)); do
    states=$(sinfo -h -N -o '%N=%t' 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ "$states" = "n1=idle n2=idle " ]; then break; fi
    sleep 0.1
  done
  ((i < 600)) || fail "the nodes are not idle after 60 s (sinfo: ${states:-no answer})"

  cat >"$DIR/env" <<EOF
export SLURM_CONF=$SLURM_CONF
EOF
  echo "# slurm-cluster up in $((SECONDS - started)) s: controller 127.0.0.1:$ctld_port, nodes n1 and n2, partition agents" >&2
  cat "$DIR/env"
}

[ $# -ge 2 ] || usage
command=$1
DIR=$2
PORT_BASE=${3:-17100}
case "$PORT_BASE" in '' | *[!0-9]*) usage ;; esac
case "$command" in
  up) up ;;
  down)
    [ -d "$DIR" ] || exit 0
    DIR=$(cd "$DIR" && pwd -P)
    down
    ;;
  status) status ;;
  *) usage ;;
esac
