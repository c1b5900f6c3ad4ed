#!/usr/bin/env bash
# .ci/slurm/run.sh: the Slurm recipe in configs/slurm, run for real on a
# one-node Slurm cluster on 127.0.0.1 (munged, slurmctld and slurmd, with a
# throwaway config under a temporary directory and ports chosen free).
#
#   bash .ci/slurm/run.sh          (as root; .ci/run calls it)
#
# Against a local test server that counts the requests for every URL:
#   1. a single trawl run of the list, for reference and for timing;
#   2. configs/slurm/submit.sh with 4 tasks, timed; the merged output must
#      equal the single run record for record, every URL requested once
#      per attempt its records count;
#   3. the same again with one task held mid-run by the server, killed and
#      requeued with `scontrol requeuehold` + `scontrol release`; --resume
#      may fetch a URL again only where the kill left no kept record of it;
#   4. the merge job on a copy with indexes missing, and with a shard file
#      missing: both must fail (exit 3);
#   5. an array that starts at 3 in steps of 2 (--array=3-7:2): the tasks
#      must find shards 0, 1 and 2;
#   6. an array with holes (--array=1,2,7): every task must refuse (exit 2).
# The two runs on the cluster must end within 3 minutes, and every wait is
# bounded. If the cluster cannot start, this fails and prints the daemons'
# logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
export PATH="/usr/local/go/bin:$PATH"

URLS=${SLURM_CI_URLS:-4000}
TASKS=4
DELAY=${SLURM_CI_DELAY:-20ms} # the test server's answer time, standing in for the network
LIMIT=240                     # seconds any one wait below may take

TMP=$(mktemp -d)
DAEMONS=() # pids, in start order
NAMES=()   # and what they are
JOBS=()    # Slurm job IDs to cancel at the end
passed=false

say() { printf '%s\n' "slurm-ci [${SECONDS}s]: $*"; }
fail() {
  printf '%s\n' "slurm-ci: FAIL: $*" >&2
  exit 1
}

cleanup() {
  local status=$?
  set +e
  if [ ${#JOBS[@]} -gt 0 ] && [ -n "${SLURM_CONF:-}" ]; then
    scancel "${JOBS[@]}" 2>/dev/null
  fi
  # Job processes and slurmstepd outlive slurmd, so they are found by the
  # SLURM_CONF this run gave them, and ended by their ids.
  local pids=() p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$TMP/slurm.conf"; then
      pids+=("${p#/proc/}")
    fi
  done
  local i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do pids+=("${DAEMONS[i]}"); done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  if [ "$passed" != true ]; then
    for log in "$TMP"/log/*; do
      [ -f "$log" ] || continue
      echo "----- ${log#"$TMP"/} (last 60 lines)" >&2
      tail -n 60 "$log" >&2
    done
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: run a daemon in the background, its output in log/NAME.out.
start() {
  local name=$1
  shift
  "$@" > "$TMP/log/$name.out" 2>&1 &
  DAEMONS+=($!)
  NAMES+=("$name")
}

# waitfor WHAT CMD...: run CMD every 0.2s until it succeeds, at most LIMIT
# seconds, and fail at once when a daemon has died.
waitfor() {
  local what=$1 end=$((SECONDS + LIMIT)) i
  shift
  until "$@"; do
    for i in "${!DAEMONS[@]}"; do
      kill -0 "${DAEMONS[i]}" 2>/dev/null || fail "${NAMES[i]} exited while waiting for $what"
    done
    [ $SECONDS -lt $end ] || fail "no $what after ${LIMIT}s"
    sleep 0.2
  done
}

echo "== the Slurm recipe on a one-node Slurm cluster (.ci/slurm/run.sh)"
mkdir -p "$TMP/bin" "$TMP/log" "$TMP/work"

say "installing slurm-wlm and munge from Debian"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y slurm-wlm munge > "$TMP/log/apt.log" 2>&1; then
  $sudo apt-get update >> "$TMP/log/apt.log" 2>&1 || true
  $sudo apt-get install -y slurm-wlm munge >> "$TMP/log/apt.log" 2>&1 || fail "cannot install slurm-wlm and munge (log below)"
fi

go build -o "$TMP/bin/trawl" .
go build -o "$TMP/bin/harness" ./.ci/slurm/harness
go vet ./.ci/slurm/harness
go test -count=1 ./.ci/slurm/harness
export TRAWL="$TMP/bin/trawl"
H="$TMP/bin/harness"

# --- the cluster -----------------------------------------------------------
say "starting munged, slurmctld and slurmd on 127.0.0.1"
read -r CTLD_PORT SLURMD_PORT < <("$H" ports 2 | paste -sd' ')
node=$(hostname -s)
mkdir -p "$TMP/munge" "$TMP/spool/ctld" "$TMP/spool/slurmd"
chmod 700 "$TMP/munge"
dd if=/dev/urandom of="$TMP/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$TMP/munge/munge.key"
start munged munged --foreground --force --key-file="$TMP/munge/munge.key" --socket="$TMP/munge/socket" \
  --pid-file="$TMP/munge/munged.pid" --seed-file="$TMP/munge/seed" --log-file="$TMP/log/munged.log"
waitfor "munge socket" test -S "$TMP/munge/socket"

cat > "$TMP/slurm.conf" <<EOF
ClusterName=trawlci
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start
# again: 120s by default, 10s here.
AuthInfo=socket=$TMP/munge/socket,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Look at pending jobs every 2s rather than every 60s, so that a released
# task starts soon after its requeue delay.
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$TMP/spool/ctld
SlurmdSpoolDir=$TMP/spool/slurmd
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Finished jobs stay visible to scontrol for the checks below.
MinJobAge=600
# SIGKILL 2s after SIGTERM: a requeued task dies inside trawl's 5s shutdown
# grace, so the requeue below is a hard kill that loses unwritten records.
KillWait=2
# More CPUs than the machine has: the tasks wait on the network, not on CPUs.
SlurmdParameters=config_overrides
NodeName=$node NodeAddr=127.0.0.1 CPUs=$TASKS RealMemory=4096 State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$TMP/slurm.conf"
start slurmctld slurmctld -D -f "$SLURM_CONF"
start slurmd slurmd -D -N "$node" -f "$SLURM_CONF"
node_idle() { [ "$(sinfo -h -N -n "$node" -o %T 2>/dev/null)" = idle ]; }
started=$SECONDS
waitfor "idle Slurm node (the cluster did not start)" node_idle
say "cluster up in $((SECONDS - started))s: $(sinfo --version), node $node with $TASKS CPUs, ports $CTLD_PORT and $SLURMD_PORT"

# --- the test server and the list -------------------------------------------
start server "$H" serve -delay "$DELAY" "$TMP/server.addr"
waitfor "test server address" test -s "$TMP/server.addr"
SRV="http://$(cat "$TMP/server.addr")"
PORT=${SRV##*:}
cd "$TMP/work"
GATE=$("$H" urls -port "$PORT" -n "$URLS" urls.txt)
{
  "$H" resolve -port "$PORT"
  cat <<EOF
fetch-concurrency: 8
retries: 0
max-failures: 100%
transform: [title]
EOF
} > trawl.yaml
export TRAWL_CONFIG="$TMP/work/trawl.yaml"
ctl() { "$H" get "$@"; }

# jobstate JOBID: the job's state and exit code, as "STATE EXIT".
jobstate() {
  scontrol show job -o "$1" | sed -n 's/.* JobState=\([A-Z_]*\) .* ExitCode=\([0-9:]*\) .*/\1 \2/p'
}
job_done() {
  case $(jobstate "$1") in PENDING* | RUNNING* | CONFIGURING* | COMPLETING* | REQUEUE* | SUSPENDED* | "") return 1 ;; esac
}
# submit DIR: the recipe's submit.sh, 4 tasks into DIR; sets ARRAY and MERGE.
submit() {
  read -r ARRAY MERGE < <("$REPO/configs/slurm/submit.sh" urls.txt "$1" "$TASKS")
  JOBS+=("$ARRAY" "$MERGE")
}
# finish DIR: wait for the merge job, then require it and every task to
# have completed with exit 0.
finish() {
  waitfor "end of merge job $MERGE" job_done "$MERGE"
  local s
  s=$(jobstate "$MERGE")
  [ "$s" = "COMPLETED 0:0" ] || { cat "$1"/slurm-*.log >&2; fail "merge job $MERGE ended $s"; }
  for ((k = 0; k < TASKS; k++)); do
    s=$(jobstate "${ARRAY}_$k")
    [ "$s" = "COMPLETED 0:0" ] || { cat "$1"/slurm-*.log >&2; fail "task ${ARRAY}_$k ended $s"; }
  done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
since() { # START_MS: seconds since then, to the millisecond
  local ms=$(($(now_ms) - $1))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}
shards() { for ((k = 0; k < TASKS; k++)); do echo "$1/shard-$k.jsonl"; done; }

# --- 1. one machine -----------------------------------------------------------
say "single run of $URLS URLs (server answer time $DELAY, 8 requests in flight per process)"
start=$(now_ms)
timeout "$LIMIT" "$TRAWL" -q -o single.jsonl urls.txt
single_s=$(since "$start")
ctl -post "$SRV/_ci/reset"

# --- 2. the recipe, 4 tasks ---------------------------------------------------
say "submit.sh: a $TASKS-task array and the merge after it"
pipeline_start=$SECONDS
start=$(now_ms)
submit clean
finish clean
slurm_s=$(since "$start")
ctl "$SRV/_ci/counts" > counts-clean.json
"$H" check -single single.jsonl -merged clean/all.jsonl -counts counts-clean.json $(shards clean)
say "time: single run ${single_s}s, $TASKS-task Slurm array with its merge ${slurm_s}s (submission to merge done)"
ctl -post "$SRV/_ci/reset"

# --- 3. one task killed mid-run and requeued ----------------------------------
K=$("$H" shard-of "$GATE" "$TASKS")
say "again, holding $GATE (shard $K) at the server, then killing and requeuing task $K"
ctl -post "$SRV/_ci/gate/close"
submit kill
ctl "$SRV/_ci/gate/wait?hits=1&timeout=${LIMIT}s" > /dev/null
task="${ARRAY}_$K"
[ "$(jobstate "$task")" = "RUNNING 0:0" ] || fail "task $task holds the gated URL but is $(jobstate "$task")"
has_records() { [ -f "kill/shard-$K.jsonl" ] && [ "$(wc -l < "kill/shard-$K.jsonl")" -ge 1 ]; }
waitfor "record written by task $task" has_records
say "task $task is mid-run: $(wc -l < "kill/shard-$K.jsonl") records written, one request held; requeuing it"
scontrol requeuehold "$task"
held() { case $(jobstate "$task") in PENDING*) return 0 ;; esac; return 1; }
waitfor "held task $task" held
# Its trawl is dead: the held request's connection closed, the output's lock is free.
ctl "$SRV/_ci/gate/wait?waiting=0&timeout=${LIMIT}s" > /dev/null
flock -n "kill/shard-$K.jsonl" true || fail "task $task is held, but a process still locks kill/shard-$K.jsonl"
cp "kill/shard-$K.jsonl" snapshot.jsonl
ctl "$SRV/_ci/counts" > counts-at-kill.json
ctl -post "$SRV/_ci/gate/open"
say "task $task killed and held: $(wc -l < snapshot.jsonl) records in its file; released"
scontrol release "$task"
finish kill
restarts=$(scontrol show job -o "$task" | sed -n 's/.* Restarts=\([0-9]*\) .*/\1/p')
[ "$restarts" = 1 ] || fail "task $task restarted ${restarts:-?} times, want 1"
ctl "$SRV/_ci/counts" > counts.json
"$H" check -single single.jsonl -merged kill/all.jsonl -counts counts.json \
  -killed "$K" -snapshot snapshot.jsonl -counts-at-kill counts-at-kill.json $(shards kill)
grep -h "^trawl-shards: .* task $K, run 2" kill/slurm-*.log > /dev/null || fail "the requeued task's log does not show its second run"
took=$((SECONDS - pipeline_start))
[ "$took" -le 180 ] || fail "the two runs on the cluster took ${took}s, more than 3 minutes"

# --- 4. the merge job fails on missing indexes -----------------------------------
merge_must_fail() { # DIR WHY
  local status=0
  timeout "$LIMIT" sbatch --wait --output="$1/merge.log" "$REPO/configs/slurm/trawl-merge.sbatch" "$1" "$TASKS" > /dev/null || status=$?
  [ "$status" = 3 ] || { cat "$1/merge.log" >&2; fail "merge with $2 exited $status, want 3"; }
  [ ! -e "$1/all.jsonl" ] || fail "merge with $2 wrote all.jsonl"
  say "merge with $2: failed as it must ($(grep -m1 -E 'missing' "$1/merge.log"))"
}
mkdir gaps nofile
cp clean/shard-*.jsonl gaps/
cp clean/shard-*.jsonl nofile/
sed -i '2,20d' gaps/shard-0.jsonl
rm nofile/shard-1.jsonl
merge_must_fail gaps "19 records cut from shard 0"
merge_must_fail nofile "shard-1.jsonl missing"

# --- 5. task IDs that start at 3 and step by 2 ------------------------------------
head -n 41 urls.txt > small.txt
status=0
timeout "$LIMIT" sbatch --wait --array=3-7:2 --output=small-%a.log "$REPO/configs/slurm/trawl-shards.sbatch" small.txt small > /dev/null || status=$?
[ "$status" = 0 ] || { cat small-*.log >&2; fail "the --array=3-7:2 tasks exited $status"; }
found=$(cd small && ls shard-*.jsonl | paste -sd' ')
[ "$found" = "shard-0.jsonl shard-1.jsonl shard-2.jsonl" ] || fail "--array=3-7:2 wrote $found, want shards 0, 1 and 2"
"$TRAWL" merge -q -o small/all.jsonl small/shard-*.jsonl
[ "$(wc -l < small/all.jsonl)" = 40 ] || fail "--array=3-7:2 merged $(wc -l < small/all.jsonl) records, want 40"
say "--array=3-7:2: tasks 3, 5 and 7 found shards 0, 1 and 2 of 3; merged 40 of 40 records"

# --- 6. an array with holes is refused -----------------------------------------
status=0
timeout "$LIMIT" sbatch --wait --array=1,2,7 --output=holes-%a.log "$REPO/configs/slurm/trawl-shards.sbatch" small.txt holes > /dev/null || status=$?
[ "$status" = 2 ] || { cat holes-*.log >&2; fail "the --array=1,2,7 tasks exited $status, want 2"; }
for id in 1 2 7; do
  grep -q "the Slurm array's task IDs are not an evenly spaced range" "holes-$id.log" || { cat "holes-$id.log" >&2; fail "task $id of --array=1,2,7 did not say why it refused"; }
done
say "--array=1,2,7: every task refused to guess (exit 2): $(grep -h -m1 -o 'the Slurm array.*' holes-7.log)"

passed=true
say "passed in ${SECONDS}s"
