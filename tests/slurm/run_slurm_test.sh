#!/usr/bin/env bash
# A real Slurm test: starts a one-node Slurm cluster on this machine (Debian's slurmctld, slurmd and
# munge, on localhost, in a temporary directory), submits launch/slurm/single-node.sbatch for a
# 2-rank CPU run of configs/quickstart.yaml, and checks
#   A. an uninterrupted job finishes (exit 0) and leaves checkpoints/latest;
#   B. a job sent SIGUSR1 mid-run (`scancel --signal=USR1 --batch`, as Slurm's --signal=B:USR1@lead
#      does) saves, exits 3, is requeued by its batch script, resumes from the checkpoint and
#      finishes with metrics.jsonl records equal to A's: step, loss and grad_norm as JSON text.
# Stops its daemons and removes its directory on exit (TAILOR_SLURM_KEEP=1 keeps the directory).
#   tests/slurm/run_slurm_test.sh [PATH/TO/tailor]      (default: build/tailor; or TAILOR_BIN)
#   tests/slurm/run_slurm_test.sh --cluster             only start the cluster and keep it up until
#                                                       Ctrl-C, to try docs/slurm.md on this machine
# Needs root (slurmd runs as root) and the Debian packages slurmctld, slurmd, slurm-client, munge,
# which it installs with apt-get when missing. Exit codes: 0 passed, 1 failed, 77 skipped (not root,
# no apt-get, the packages cannot be installed) — CTest's SKIP_RETURN_CODE.
# CTest: tests/slurm/CMakeLists.txt (labels slurm, slow). Takes about a minute (see docs/slurm.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster_only=0
if [[ "${1:-}" == --cluster ]]; then cluster_only=1; shift; fi
tailor=${1:-${TAILOR_BIN:-$repo/build/tailor}}
steps=${TAILOR_SLURM_TEST_STEPS:-60}
t_start=$SECONDS

log() { echo "[slurm-test $(( SECONDS - t_start ))s] $*"; }
skip() { echo "SKIPPED: $*"; exit 77; }

# ---- preconditions ----
[[ $(uname -s) == Linux ]] || skip "needs Linux"
[[ $(id -u) -eq 0 ]] || skip "needs root: slurmd and munged are started as root (run it as root, or under sudo)"
if [[ $cluster_only -eq 0 ]]; then
  [[ -x "$tailor" ]] || { echo "FAILED: no tailor executable at $tailor (build it first)"; exit 1; }
  tailor=$(cd "$(dirname "$tailor")" && pwd)/$(basename "$tailor")
  # The two templates share their body (everything below the "---- body" line).
  cmp -s <(sed -n '/^# ---- body/,$p' "$repo/launch/slurm/single-node.sbatch") \
         <(sed -n '/^# ---- body/,$p' "$repo/launch/slurm/multi-node.sbatch") ||
    { echo "FAILED: the bodies of launch/slurm/single-node.sbatch and multi-node.sbatch differ"; exit 1; }
fi

packages=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ "${TAILOR_SLURM_TEST_INSTALL:-1}" != 0 ]] ||
    skip "needs the Debian packages ${missing[*]} (TAILOR_SLURM_TEST_INSTALL=0: not installing them)"
  command -v apt-get >/dev/null || skip "needs the Debian packages ${missing[*]} and there is no apt-get to install them"
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # (bounded: without a network apt-get can wait long for a mirror)
  if ! { timeout 240 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
         { timeout 240 apt-get update -qq >/dev/null 2>&1 &&
           timeout 240 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }; }; then
    skip "could not install ${missing[*]} with apt-get (no network or no Debian mirror?)"
  fi
fi
for c in slurmctld slurmd sbatch scontrol scancel sinfo munged; do
  command -v "$c" >/dev/null || skip "$c is missing after installing ${packages[*]}"
done

# An outer Slurm job's variables would leak into ours.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM_|SBATCH_|SRUN_|SALLOC_)' || true)

# ---- a temporary cluster ----
tmp=$(mktemp -d /tmp/tailor-slurm.XXXXXX)
chmod 755 "$tmp"   # munged wants its socket's directories traversable by everyone
pids=()
ctld_started=0

dump_logs() {
  for f in "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/run-*/slurm-*.out "$tmp"/sbatch-*.out; do
    [[ -f "$f" ]] || continue
    echo "---- $f (last 40 lines)"
    tail -n 40 "$f"
  done
}
fail() {
  echo "FAILED: $*"
  dump_logs
  exit 1
}
cleanup() {
  local rc=$?
  set +e
  # Every job of this private cluster (ours, or submitted by hand in --cluster mode); never ask
  # any other cluster this machine may belong to.
  local ids=""
  if [[ $ctld_started -eq 1 && "${SLURM_CONF:-}" == "$tmp/slurm.conf" ]]; then
    ids=$(squeue -h -o %i 2>/dev/null)
  fi
  if [[ -n "$ids" ]]; then
    # shellcheck disable=SC2086  # one id per word
    scancel $ids 2>/dev/null
    for _ in $(seq 1 40); do
      [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  # Daemons, newest first, each by the pid we started it with.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
  done
  if [[ "${TAILOR_SLURM_KEEP:-0}" == 1 ]]; then
    echo "kept $tmp"
  else
    rm -rf "$tmp"
  fi
  log "done (exit $rc), $(( SECONDS - t_start )) s in all"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "found no free TCP port"
}

host=$(hostname -s)
mkdir -m 700 "$tmp/munge" "$tmp/state" "$tmp/spool"
mkdir -m 1777 "$tmp/tmpfs"
mkdir -m 755 "$tmp/munge-run"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$tmp/munge/munge.key"
socket=$tmp/munge-run/munge.socket
munged -F --socket="$socket" --key-file="$tmp/munge/munge.key" --log-file="$tmp/munge/munged.log" \
  --pid-file="$tmp/munge-run/munged.pid" --seed-file="$tmp/munge/munged.seed" >"$tmp/munged.stdout" 2>&1 &
pids+=($!)

ctld_port=$(free_port)
slurmd_port=$(free_port)
while [[ "$slurmd_port" == "$ctld_port" ]]; do slurmd_port=$(free_port); done
cat > "$tmp/slurm.conf" <<EOF
# A one-node cluster for tests/slurm/run_slurm_test.sh: no cgroups, no accounting, state in $tmp.
ClusterName=tailortest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$socket,cred_expire=10
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
TmpFS=$tmp/tmpfs
MailProg=/bin/true
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
KillWait=10
# Look at the queue every second (a requeued job becomes eligible cred_expire + 1 s after its requeue).
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
InactiveLimit=0
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf

for _ in $(seq 1 40); do [[ -S "$socket" ]] && break; sleep 0.25; done
[[ -S "$socket" ]] || fail "munged did not start ($(cat "$tmp/munge/munged.log" 2>/dev/null))"
slurmctld -D -c -f "$SLURM_CONF" >"$tmp/slurmctld.stdout" 2>&1 &
pids+=($!)
ctld_started=1
slurmd -D -N "$host" -f "$SLURM_CONF" >"$tmp/slurmd.stdout" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 120); do
  if [[ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" == idle ]]; then up=1; break; fi
  sleep 0.5
done
[[ $up -eq 1 ]] || fail "the node did not become idle: $(scontrol show node "$host" 2>&1 | tr '\n' ' ')"
log "cluster up: slurmctld :$ctld_port, slurmd :$slurmd_port, node $host, 2 CPUs ($tmp)"

if [[ $cluster_only -eq 1 ]]; then
  echo "A one-node Slurm cluster (2 CPUs, no GPUs) is up until Ctrl-C. In another shell:"
  echo "  export SLURM_CONF=$SLURM_CONF"
  echo "  sinfo; sbatch --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 launch/slurm/single-node.sbatch ..."
  sleep infinity &
  pids+=($!)
  wait "$!" || true
  exit 0
fi

# ---- jobs ----
overrides=(train.steps="$steps" checkpoint.every_steps=10 train.log_every=1
           parallel.data=2)
# The template asks for a GPU node; here: 2 ranks of 1 CPU each, no GPUs.
sbatch_opts=(--parsable --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 --time=15)

submit() {  # submit NAME: sets job_id
  local name=$1 out
  out=$(cd "$repo" && TAILOR_BIN="$tailor" sbatch "${sbatch_opts[@]}" --job-name="$name" \
          --output="$tmp/sbatch-%x-%j.out" launch/slurm/single-node.sbatch configs/quickstart.yaml \
          "${overrides[@]}" output.dir="$tmp/run-$name") || fail "sbatch failed for job $name: $out"
  job_id=${out%%;*}
}
job_field() {  # job_field ID FIELD
  scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
wait_job() {  # wait_job ID TIMEOUT_S: until the job has ended for good
  local id=$1 limit=$2 t0=$SECONDS state
  while (( SECONDS - t0 < limit )); do
    state=$(job_field "$id" JobState)
    case "$state" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0 ;;
    esac
    sleep 0.5
  done
  fail "job $id did not end within $limit s (state $(job_field "$id" JobState), reason $(job_field "$id" Reason))"
}

# A: uninterrupted.
t0=$SECONDS
submit a
job_a=$job_id
log "job A $job_a submitted"
wait_job "$job_a" 300
state=$(job_field "$job_a" JobState); code=$(job_field "$job_a" ExitCode)
[[ "$state" == COMPLETED && "$code" == 0:0 ]] || fail "job A $job_a: $state, exit code $code (want COMPLETED 0:0)"
[[ -e "$tmp/run-a/checkpoints/latest" ]] || fail "job A left no $tmp/run-a/checkpoints/latest"
[[ "$(readlink "$tmp/run-a/checkpoints/latest")" == "step_$steps" ]] ||
  fail "job A: checkpoints/latest is $(readlink "$tmp/run-a/checkpoints/latest"), want step_$steps"
[[ -f "$tmp/run-a/slurm-$job_a.out" ]] || fail "job A wrote no log to its run directory"
log "job A $job_a: COMPLETED 0:0 in $(( SECONDS - t0 )) s, checkpoints/latest -> step_$steps"

# B: SIGUSR1 to the batch script once it has logged some steps.
t0=$SECONDS
submit b
job_b=$job_id
log "job B $job_b submitted"
metrics_b=$tmp/run-b/metrics.jsonl
signalled=0
while (( SECONDS - t0 < 300 )); do
  if [[ -f "$metrics_b" ]] && (( $(wc -l < "$metrics_b") >= 12 )); then
    scancel --signal=USR1 --batch "$job_b" || fail "scancel --signal=USR1 --batch $job_b failed"
    signalled=1
    break
  fi
  case "$(job_field "$job_b" JobState)" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
  sleep 0.2
done
[[ $signalled -eq 1 ]] || fail "job B $job_b ended or stalled before it could be signalled"
log "job B $job_b: SIGUSR1 sent to its batch script after $(wc -l < "$metrics_b") logged steps"
# Wait for the requeue, then for the end of the resumed run.
for _ in $(seq 1 600); do
  restarts=$(job_field "$job_b" Restarts)
  (( ${restarts:-0} >= 1 )) && break
  case "$(job_field "$job_b" JobState)" in COMPLETED|FAILED|CANCELLED|TIMEOUT) break ;; esac
  sleep 0.2
done
t_requeued=$SECONDS
wait_job "$job_b" 300
state=$(job_field "$job_b" JobState); code=$(job_field "$job_b" ExitCode); restarts=$(job_field "$job_b" Restarts)
log_b=$tmp/run-b/slurm-$job_b.out
[[ "$state" == COMPLETED && "$code" == 0:0 ]] || fail "job B $job_b: $state, exit code $code (want COMPLETED 0:0)"
[[ "$restarts" == 1 ]] || fail "job B $job_b was restarted $restarts times, want 1 (log: $log_b)"
grep -q "job step exited with code 3" "$log_b" || fail "job B: its first run did not exit 3 (log: $log_b)"
grep -q "requeueing job $job_b" "$log_b" || fail "job B: the batch script did not requeue it"
stop_line=$(grep -o "stopped on request (signal) after step [0-9]*" "$log_b" | head -n 1) ||
  fail "job B: no 'stopped on request' message"
stop_step=${stop_line##* }
(( stop_step < steps )) || fail "job B stopped at step $stop_step, not before the end ($steps)"
grep -q "resumed from $tmp/run-b/checkpoints/step_$stop_step" "$log_b" ||
  fail "job B did not resume from checkpoints/step_$stop_step"
log "job B $job_b: stopped after step $stop_step, exit 3, requeued, resumed, COMPLETED 0:0" \
    "($(( SECONDS - t0 )) s in all, $(( SECONDS - t_requeued )) s from the requeue)"

# The resumed run's records equal the uninterrupted run's, as JSON text: step, loss, grad_norm.
records() {
  awk '/"loss":/ {
    out = ""
    n = split("step loss grad_norm", keys, " ")
    for (i = 1; i <= n; i++) {
      if (match($0, "\"" keys[i] "\":[^,}]*")) out = out substr($0, RSTART, RLENGTH) " "
      else out = out "(no " keys[i] ") "
    }
    print out
  }' "$1"
}
records "$tmp/run-a/metrics.jsonl" > "$tmp/records-a.txt"
records "$metrics_b" > "$tmp/records-b.txt"
n_a=$(wc -l < "$tmp/records-a.txt"); n_b=$(wc -l < "$tmp/records-b.txt")
[[ $n_a -eq $steps && $n_b -eq $steps ]] ||
  fail "want $steps training records in each metrics.jsonl, got $n_a (A) and $n_b (B)"
diff "$tmp/records-a.txt" "$tmp/records-b.txt" >"$tmp/records.diff" ||
  fail "metrics.jsonl of A and B differ: $(head -n 4 "$tmp/records.diff")"
log "metrics.jsonl: $steps records, step/loss/grad_norm identical as text (e.g. $(sed -n "${steps}p" "$tmp/records-b.txt"))"
log "PASSED"
