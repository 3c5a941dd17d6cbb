#!/usr/bin/env bash
# A TPU pod slice: the same command on every host, one process per host; LRM_JAX_DISTRIBUTED=1 makes lrm_jax.main
# call jax.distributed.initialize, which reads the topology from the TPU metadata (lrm_jax/utils/distributed.py).
#   launch/tpu_pod.sh NAME ZONE configs/reward_model/paligemma_3b.py:... gs://bucket/runs/lrm3b
# The repo must be checked out at the same path on every host (e.g. via `gcloud ... scp --worker=all`).
# Rehearse it on one machine first: launch/multihost_local.sh 2 CONFIG WORKDIR (the same code path on CPU).
set -euo pipefail
name=$1; zone=$2; config=$3; workdir=$4; shift 4
gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all --command "
  cd ~/lrm_jax && make venv >/dev/null && .venv/bin/pip install -q 'jax[tpu]==\$(.venv/bin/python -c \"import jax; print(jax.__version__)\")' \
    -f https://storage.googleapis.com/jax-releases/libtpu_releases.html &&
  LRM_JAX_DISTRIBUTED=1 .venv/bin/python -m lrm_jax.main --config='$config' --workdir='$workdir' $*"
