#!/usr/bin/env bash
# Run any config on this machine (CPU or one GPU): launch/local.sh configs/reward_model/cpu_demo.py workdir/rm [--config.x=y ...]
set -euo pipefail
cd "$(dirname "$0")/.."
make venv >/dev/null
config=$1; workdir=$2; shift 2
exec .venv/bin/python -m lrm_jax.main --config="$config" --workdir="$workdir" "$@"
