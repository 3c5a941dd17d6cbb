"""The one entry point: `python -m lrm_jax.main --config=configs/<name>.py[:arg] --workdir=DIR`.

Any config field can be overridden on the command line as `--config.field=value` (ml_collections config_flags).
Multi-host: run the same command in every process with the environment of `lrm_jax.utils.distributed` set
(`launch/multihost_local.sh`, `launch/tpu_pod.sh`, `launch/gpu.sh` do that).
"""
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from lrm_jax import jobs
from lrm_jax.utils import compile_cache
from lrm_jax.utils import distributed

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a configs/*.py file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the run writes logs, data, plots and videos.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  # Before anything else creates JAX's backend: jax.distributed when the environment asks for it, and the CPU
  # devices (one per core; with several processes one per process, each process being one host).
  multi = distributed.initialize()
  config = _CONFIG.value
  workdir = os.path.abspath(_WORKDIR.value)
  os.makedirs(workdir, exist_ok=True)
  compile_cache.enable(config.get("compile_cache_dir") or None)
  logging.info("job %s -> %s", config.job, workdir)
  if distributed.is_primary():
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  distributed.exit_on_error(lambda: jobs.get(config.job)(config, workdir), multi)


if __name__ == "__main__":
  app.run(main)
