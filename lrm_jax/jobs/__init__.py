"""Registry of runnable jobs. A config's `job` field names one; each is `run(config, workdir)`.

Jobs are imported lazily so that `python -m lrm_jax.main` only pays for what the chosen job needs.
"""
import importlib

from lrm_jax.utils import config_args

JOBS = {
    "datagen": "lrm_jax.jobs.datagen",
    "reward_data": "lrm_jax.jobs.reward_data",
    "reward_model": "lrm_jax.jobs.reward_model",
    "refine": "lrm_jax.jobs.refine",
    "demo": "lrm_jax.jobs.demo",
    "serve": "lrm_jax.jobs.serve",
}


def get(name: str):
  if name not in JOBS:
    raise config_args.ConfigError("config.job", f"one of {sorted(JOBS)}", f"unknown job {name!r}")
  return importlib.import_module(JOBS[name]).run


def validate(config) -> None:
  """The job's whole config checked before it runs (`lrm_jax/jobs/checks.py`); one-line ConfigError if bad."""
  from lrm_jax.jobs import checks
  get(config.get("job", None))
  checks.VALIDATORS[config.job](config)
