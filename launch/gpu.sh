#!/usr/bin/env bash
# One multi-GPU host: installs the CUDA build of jax into .venv, then runs the config on every visible GPU
# (the mesh spans all devices; batches are split over them).
#   launch/gpu.sh configs/reward_model/paligemma_3b.py:ckpt=/ckpt/pt_224.bf16.npz,tokenizer=/ckpt/tokenizer.model,root=/data /runs/lrm3b
set -euo pipefail
cd "$(dirname "$0")/.."
make venv >/dev/null
jax_version=$(.venv/bin/python -c "import jax; print(jax.__version__)")
.venv/bin/pip install -q "jax[cuda12]==${jax_version}"
config=$1; workdir=$2; shift 2
XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9} \
  exec .venv/bin/python -m lrm_jax.main --config="$config" --workdir="$workdir" "$@"
