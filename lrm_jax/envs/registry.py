"""Make LRM-Bench environments by task name, mujoco_playground style."""
import ml_collections

from lrm_jax.envs import base
from lrm_jax.envs import splits
from lrm_jax.envs import tasks as tasks_lib

ALL_TASKS = tuple(sorted(tasks_lib.TASKS))
TRAIN_TASKS = tuple(sorted(splits.TRAIN_TASKS))
HELD_OUT_TASKS = tuple(sorted(splits.HELD_OUT_TASKS))


def default_config() -> ml_collections.ConfigDict:
  return base.default_config()


def make(name: str, config: ml_collections.ConfigDict | None = None, **overrides) -> base.LrmBenchEnv:
  """`make("stack_three", image_size=96)`: one task as a brax `Env`; overrides update `default_config()`."""
  config = config or default_config()
  if overrides:
    config = config.copy_and_resolve_references()
    config.update(overrides)
  return base.LrmBenchEnv(name, config)
