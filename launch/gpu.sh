#!/usr/bin/env bash
# GPU hosts: installs the CUDA build of jax into .venv, then runs the config on every visible GPU (the mesh spans
# all devices; batches are split over them).
#   launch/gpu.sh configs/reward_model/paligemma_3b.py:ckpt=/ckpt/pt_224.bf16.npz,tokenizer=/ckpt/tokenizer.model,root=/data /runs/lrm3b
# Several nodes: the same command on every node, one process per node (lrm_jax.utils.distributed), either
#   JAX_COORDINATOR_ADDRESS=node0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=i launch/gpu.sh CONFIG WORKDIR   (node i)
# or under SLURM `srun --nodes=N --ntasks-per-node=1 launch/gpu.sh CONFIG WORKDIR` (jax reads SLURM's variables).
# WORKDIR must be on a filesystem every node sees (checkpoints are written by all processes together).
set -euo pipefail
cd "$(dirname "$0")/.."
make venv >/dev/null
jax_version=$(.venv/bin/python -c "import jax; print(jax.__version__)")
.venv/bin/pip install -q "jax[cuda12]==${jax_version}"
config=$1; workdir=$2; shift 2
if [ "${SLURM_NTASKS:-1}" -gt 1 ]; then export LRM_JAX_DISTRIBUTED=1; fi
XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9} \
  exec .venv/bin/python -m lrm_jax.main --config="$config" --workdir="$workdir" "$@"
