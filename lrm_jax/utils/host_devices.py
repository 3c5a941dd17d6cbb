"""One XLA CPU device per core, so batched simulation uses every core of a CPU-only machine.

XLA runs one CPU program mostly on one thread: a batched MJX episode keeps ~1.2 of 2 cores busy, and a bigger batch
does not change that (bench/RESULTS.md). With one CPU device per core, the episode batches that `sharding.
shard_episodes` splits over devices (datagen, demos, evaluation) and brax's PPO (which pmaps over local devices)
run side by side. It must be set before JAX creates its CPU backend, so the entry point calls it first. On a GPU
or TPU machine the CPU devices stay unused and nothing changes.
"""
import os

import jax

from lrm_jax.utils import config_args

MAX_DEVICES = 8  # more devices than this only add per-device overhead on the small batches CPU runs use


def use_all_cores(n: int | None = None) -> int:
  """Sets jax_num_cpu_devices (LRM_JAX_CPU_DEVICES overrides; default: the cores, at most MAX_DEVICES)."""
  if not n:
    raw = os.environ.get("LRM_JAX_CPU_DEVICES", "").strip()
    try:
      n = int(raw or "0") or min(os.cpu_count() or 1, MAX_DEVICES)
    except ValueError:  # int() alone would say "invalid literal" without naming the variable
      raise config_args.ConfigError("environment variable LRM_JAX_CPU_DEVICES", "an integer >= 1 (or unset)",
                                    repr(raw)) from None
  if n < 1:
    raise config_args.ConfigError("environment variable LRM_JAX_CPU_DEVICES", "an integer >= 1 (or unset)", n)
  jax.config.update("jax_num_cpu_devices", n)
  return n
