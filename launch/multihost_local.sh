#!/usr/bin/env bash
# N processes of lrm_jax.main on this machine, exactly as N hosts run it (jax.distributed over 127.0.0.1, CPU
# collectives through gloo, one CPU device per process): the local rehearsal of a pod / multi-node run.
#   launch/multihost_local.sh 2 configs/reward_model/cpu_demo.py:steps=20 workdir/rm2 [--config.x=y ...]
# Logs: WORKDIR/logs/process_<i>.log (process 0's is also shown here), pids: WORKDIR/logs/process_<i>.pid. Exit status: 0 if every process succeeded,
# else the first failure's. When one process fails the others get LRM_JAX_KILL_GRACE_S (default 30) seconds to
# stop on their own (they do, within seconds: their next collective fails), then are killed.
# Environment: LRM_JAX_PYTHON (default: .venv/bin/python, built by `make venv`), LRM_JAX_PORT (default: a free
# port), and anything lrm_jax.utils.distributed reads (LRM_JAX_HEARTBEAT_TIMEOUT_S, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 N CONFIG WORKDIR [flags]   (N: number of processes, a positive integer; got '${1:-}')" >&2; exit 2
fi
n=$1; config=$2; workdir=$3; shift 3
py=${LRM_JAX_PYTHON:-}
if [ -z "$py" ]; then make venv >/dev/null || exit 1; py=.venv/bin/python; fi
port=${LRM_JAX_PORT:-$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
grace=${LRM_JAX_KILL_GRACE_S:-30}
mkdir -p "$workdir/logs"

pids=(); tail_pid=
stop_all() {  # TERM, then KILL what is left after 5 s
  local sig pid
  for sig in TERM KILL; do
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -s "$sig" "$pid" 2>/dev/null; done
    [ "$sig" = TERM ] && for _ in $(seq 50); do
      alive=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break; sleep 0.1; done
  done
}
trap 'echo "multihost_local: interrupted; stopping all processes" >&2; stop_all; exit 130' INT TERM

for ((i = 0; i < n; i++)); do
  JAX_COORDINATOR_ADDRESS=127.0.0.1:$port JAX_NUM_PROCESSES=$n JAX_PROCESS_ID=$i \
    LRM_JAX_CPU_DEVICES=${LRM_JAX_CPU_DEVICES:-1} JAX_PLATFORMS=${JAX_PLATFORMS:-cpu} PYTHONUNBUFFERED=1 \
    "$py" -m lrm_jax.main --config="$config" --workdir="$workdir" "$@" >"$workdir/logs/process_$i.log" 2>&1 &
  pids+=($!); echo "${pids[$i]}" >"$workdir/logs/process_$i.pid"
  echo "multihost_local: process $i of $n: pid ${pids[$i]}, log $workdir/logs/process_$i.log"
done
tail -n +1 -f --pid="${pids[0]}" "$workdir/logs/process_0.log" & tail_pid=$!

declare -A rcs=(); first_fail=; deadline=
while [ ${#rcs[@]} -lt "$n" ]; do
  for ((i = 0; i < n; i++)); do
    [ -n "${rcs[$i]:-}" ] && continue
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      wait "${pids[$i]}"; rcs[$i]=$?
      if [ "${rcs[$i]}" != 0 ] && [ -z "$first_fail" ]; then
        first_fail=$i; deadline=$((SECONDS + grace))
        echo "multihost_local: process $i exited with status ${rcs[$i]}; the others get ${grace} s to stop" >&2
      fi
    fi
  done
  if [ -n "$deadline" ] && [ $SECONDS -ge "$deadline" ] && [ ${#rcs[@]} -lt "$n" ]; then
    echo "multihost_local: killing the processes still running after ${grace} s" >&2
    stop_all; deadline=
  fi
  sleep 0.2
done
wait "$tail_pid" 2>/dev/null
for ((i = 0; i < n; i++)); do
  if [ "${rcs[$i]}" != 0 ]; then
    echo "multihost_local: process $i: status ${rcs[$i]}: $(grep -v '^\s*$' "$workdir/logs/process_$i.log" | tail -n 1)" >&2
  fi
done
[ -n "$first_fail" ] && exit "${rcs[$first_fail]}"
echo "multihost_local: all $n processes finished"
