"""Registry of runnable jobs. A config's `job` field names one; each is `run(config, workdir)`.

Jobs are imported lazily so that `python -m lrm_jax.main` only pays for what the chosen job needs.
"""
import importlib

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
    raise ValueError(f"unknown job {name!r} in config.job; expected one of {sorted(JOBS)}")
  return importlib.import_module(JOBS[name]).run
