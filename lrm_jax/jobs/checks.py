"""`validate(config)` per job: the whole config checked in a second, before any simulation or training starts.

`lrm_jax.main` calls `jobs.validate(config)` (which dispatches here) before the job runs. Without it a bad field
surfaced only where it was first used: a training task in `eval_data.tasks` after the sources were built (1-2
min), `num_envs=0` after demos and BC, `episodes_per_task=0` as a TFDS assertion after 54 s, `batch=0` as
"prompt kind: expected one of (...), got '99'", `image_size=-1` as a JAX broadcasting error. Each check raises
`config_args.ConfigError` (one line: `<field>: expected <x>, got <y>`). The checks only read the config: nothing
is built, loaded or compiled. The stages keep their own checks too (they are also called from notebooks).
"""
import math
import os
from typing import Callable

from lrm_jax.envs import experts
from lrm_jax.envs import splits
from lrm_jax.envs import tasks as tasks_lib
from lrm_jax.models import checkpoint
from lrm_jax.models import release
from lrm_jax.utils import config_args
from lrm_jax.utils.config_args import require

_EMBODIMENTS = ("gripper", "hand")
_CAMERAS = ("front", "side", "left", "wrist")
_MIN_IMAGE = 8  # the renderer's and the smallest model's (patch 8) floor; the CPU configs use 16-64


def _int(config, key: str, what: str, minimum: int) -> int:
  value = config.get(key)
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == int(value)
  require(ok and int(value) >= minimum, f"{what}.{key}" if what else key, f"an integer >= {minimum}", value)
  return int(value)


def _reuse(check: Callable, *args) -> None:
  """A stage's own check (one-line ValueError) as a ConfigError, so main prints it without a traceback."""
  try:
    check(*args)
  except config_args.ConfigError:
    raise
  except ValueError as e:
    raise config_args.ConfigError(str(e)) from None


def task_names(names, what: str, allowed=None) -> None:
  """Known task names; with `allowed`, also from that set (the error says which it is: unknown or wrong side)."""
  require(len(names) > 0, what, "at least one task", list(names))
  for t in names:
    require(t in tasks_lib.TASKS, what, f"task names from {sorted(tasks_lib.TASKS)}", f"unknown task {t!r}")
    if allowed is not None:
      side = "held-out" if allowed is splits.HELD_OUT_TASKS else "training"
      require(t in allowed, what, f"{side} tasks only {sorted(allowed)}",
              f"{t!r}, a {'held-out' if t in splits.HELD_OUT_TASKS else 'training'} task")


def datagen_config(c, what: str, min_episodes: int = 1) -> None:
  """A `configs/datagen.py`-shaped config (also reward_data's generations and reward_model's eval_data)."""
  task_names(tuple(c.tasks), f"{what}.tasks")
  _int(c, "episodes_per_task", what, min_episodes)
  _int(c, "image_size", what, _MIN_IMAGE)
  _int(c, "batch_size", what, 1)
  f = c.get("failure_fraction", 0.0)
  require(isinstance(f, (int, float)) and 0.0 <= f <= 1.0, f"{what}.failure_fraction", "a number in [0, 1]", f)
  for m in c.get("failure_modes", ()):
    require(m in experts.MODES, f"{what}.failure_modes", f"names from {list(experts.MODES[1:])}", repr(m))
  for e in c.get("embodiments", ()):
    require(e in _EMBODIMENTS, f"{what}.embodiments", f"names from {list(_EMBODIMENTS)}", repr(e))
  require(len(c.get("embodiments", ("gripper",))) > 0, f"{what}.embodiments", "at least one", "none")
  cams = str(c.get("camera", "front")).split("+")  # several cameras cycle per episode (jobs/datagen.cameras)
  require(all(cam in _CAMERAS for cam in cams), f"{what}.camera",
          f"one of {list(_CAMERAS)}, or several joined by '+'", repr(c.get("camera")))


def mixture(m, what: str) -> None:
  from data_pipelines import registry  # light: readers are imported only when a source is read
  _int(m, "batch_size", what, 1)
  _int(m, "image_size", what, _MIN_IMAGE)
  sources = list(m.get("sources", ()))
  require(len(sources) > 0, f"{what}.sources", "at least one source", "none")
  for i, s in enumerate(sources):
    name = f"{what}.sources[{i}]"
    fmt = s.get("format")
    require(callable(fmt) or fmt in registry.READERS, f"{name}.format", f"one of {sorted(registry.READERS)}", repr(fmt))
    w = s.get("weight", 1.0)
    require(isinstance(w, (int, float)) and w >= 0 and math.isfinite(w), f"{name}.weight", "a number >= 0", w)
  require(any(s.get("weight", 1.0) > 0 for s in sources), f"{what}.sources", "at least one weight > 0",
          [s.get("weight", 1.0) for s in sources])
  from data_pipelines import labels as labels_lib  # light: numpy only
  try:  # the label rules' own checks (kinds, fractions, counts), before any source is built
    labels_lib.LabelConfig(**dict(m.get("labels", None) or {}))
  except (TypeError, ValueError) as e:
    require(False, f"{what}.labels", "LabelConfig fields with valid values", str(e))


def datagen(c) -> None:
  datagen_config(c, "config")


def reward_data(c, what: str = "config") -> None:
  if c.get("generate", True):
    datagen_config(c.datagen, f"{what}.datagen")
    datagen_config(c.datagen_oxe, f"{what}.datagen_oxe")
    # Generated sources are training data: a held-out task there would leak into the reward model.
    task_names(tuple(c.datagen.tasks), f"{what}.datagen.tasks", splits.TRAIN_TASKS)
    task_names(tuple(c.datagen_oxe.tasks), f"{what}.datagen_oxe.tasks", splits.TRAIN_TASKS)
  mixture(c.mixture, f"{what}.mixture")
  _int(c, "batches", what, 1)


def _patch(variant: str) -> int:
  tail = str(variant).rpartition("/")[2]
  return int(tail) if tail.isdigit() else 1


def reward_model(c, what: str = "config") -> None:
  reward_data(c.data, f"{what}.data")
  _int(c, "batch_size", what, 1)
  _int(c, "total_steps", what, 1)
  size = _int(c, "image_size", what, _MIN_IMAGE)
  patch = _patch(c.model.get("img", {}).get("variant", ""))
  require(size >= patch, f"{what}.image_size", f"at least the image patch size {patch}", size)
  _int(c, "text_len", what, 8)
  _int(c, "val_batches", what, 1)
  for k in ("log_every", "eval_every", "checkpoint_every"):
    _int(c, k, what, 1)
  shards = _int(c, "data_shards", what, 0) if "data_shards" in c else 0
  if shards:
    require(c.batch_size % shards == 0, f"{what}.batch_size", f"a multiple of data_shards={shards}", c.batch_size)
  # Zero-shot evaluation: held-out tasks only (0 episodes per task = no evaluation).
  datagen_config(c.eval_data, f"{what}.eval_data", min_episodes=0)
  task_names(tuple(c.eval_data.tasks), f"{what}.eval_data.tasks", splits.HELD_OUT_TASKS)
  ckpt = c.init.get("ckpt", "")
  require(not ckpt or os.path.isfile(ckpt), f"{what}.init.ckpt", "an existing big_vision .npz file (or '')",
          repr(ckpt))
  if ckpt:
    checkpoint.check_npz(ckpt)  # truncated / not an .npz: now, not after the sources are built
  tok = c.init.get("tokenizer", "")
  require(not tok or os.path.isfile(tok), f"{what}.init.tokenizer", "an existing SentencePiece .model file (or '')",
          repr(tok))
  _int(c.eval, "interval", f"{what}.eval", 1)
  _int(c.eval, "batch_size", f"{what}.eval", 1)
  from lrm_jax.train import tower_pretrain
  flags = list(c.get("tower", {}).get("balance_flags", ("grasped",)))
  require(set(flags) <= set(tower_pretrain.FLAG_GROUPS), f"{what}.tower.balance_flags",
          f"flag groups from {list(tower_pretrain.FLAG_GROUPS)}", flags)
  if "warmup" in c:  # the first stage on some questions only (jobs/reward_model.warmup_stage)
    from data_pipelines import prompts
    stages = ((c.warmup, "warmup"),) + (((c.warmup.then, "warmup.then"),) if c.warmup.get("then", None) else ())
    for stage, name in stages:
      if _int(stage, "steps", f"{what}.{name}", 0):
        kinds = tuple(stage.get("kinds", ()))
        require(kinds and set(kinds) <= set(prompts.KINDS), f"{what}.{name}.kinds",
                f"one or more of {list(prompts.KINDS)}", list(kinds))


def refine(c, what: str = "config", reward_model_built_by_job: bool = False) -> None:
  from lrm_jax.rewards import interval
  from lrm_jax.rl import ppo
  # Unknown first, then the wrong side of the split: "fly_to_moon is a training task" misled.
  task_names((c.task,), f"{what}.task", splits.HELD_OUT_TASKS)
  rewards = list(c.rewards)
  require(len(rewards) > 0, f"{what}.rewards", f"a non-empty list from {list(interval.MODES)}", rewards)
  for r in rewards:
    require(r in interval.MODES, f"{what}.rewards", f"names from {list(interval.MODES)}", repr(r))
  for k in ("iterations", "num_envs", "batch_size", "num_minibatches", "unroll_length", "num_updates_per_batch"):
    _int(c.ppo, k, f"{what}.ppo", 1)
  _reuse(ppo.check_config, c.ppo)
  if c.ppo.get("reset_each_iteration", False):
    _reuse(ppo.check_episode_fits, c.ppo, tasks_lib.TASKS[c.task].episode_length)
  import jax  # brax splits the envs over the local devices (main has set them up by now)
  devices = jax.local_device_count()
  require(c.ppo.num_envs % devices == 0, f"{what}.ppo.num_envs", f"a multiple of the {devices} local devices "
          "(LRM_JAX_CPU_DEVICES=1 for one)", c.ppo.num_envs)
  _int(c.demos, "num", f"{what}.demos", 1)
  _int(c.eval, "num_episodes", f"{what}.eval", 1)
  _int(c.eval, "video_episodes", f"{what}.eval", 0)
  _int(c.reward, "interval", f"{what}.reward", 1)
  needs_model = any(r.startswith("lrm_") or r == "vlmrm" for r in rewards)
  if needs_model:
    reward_model(c.reward_model, f"{what}.reward_model")
    if not reward_model_built_by_job:
      d = c.get("reward_model_workdir", "")
      require(bool(d) and (os.path.isdir(os.path.join(d, "checkpoints")) or release.is_release(d)),
              f"{what}.reward_model_workdir", "a finished reward_model run's workdir or a released model folder "
              f"(rewards {[r for r in rewards if r.startswith('lrm_') or r == 'vlmrm']} need it)", repr(d))


def demo(c) -> None:
  reward_model(c.reward_model, "config.reward_model")
  rel = c.get("reward_model_release", "")
  require(not rel or release.is_release(rel), "config.reward_model_release",
          f"a released model folder ({release.PARAMS}, {release.TOKENIZER}, {release.MANIFEST}) or ''", repr(rel))
  refine(c.refine, "config.refine", reward_model_built_by_job=True)


def serve(c) -> None:
  reward_model(c.reward_model, "config.reward_model")
  s = c.server
  require(isinstance(s.port, int) and 0 <= s.port <= 65535, "config.server.port", "an integer in [0, 65535]", s.port)
  require(len(s.batch_sizes) > 0 and all(b >= 1 for b in s.batch_sizes), "config.server.batch_sizes",
          "integers >= 1", list(s.batch_sizes))
  ckpt = c.get("ckpt", "")
  require(not ckpt or os.path.isdir(ckpt) or (os.path.isfile(ckpt) and ckpt.endswith(".npz")), "config.ckpt",
          "a reward_model run's workdir or a big_vision .npz file (or '')", repr(ckpt))
  if ckpt and os.path.isfile(ckpt):
    checkpoint.check_npz(ckpt)
  if ckpt and os.path.isdir(ckpt):
    require(os.path.isdir(os.path.join(ckpt, "checkpoints")) or release.is_release(ckpt), "config.ckpt",
            "a finished reward_model run's workdir (with checkpoints/) or a released model folder", repr(ckpt))


VALIDATORS = dict(datagen=datagen, reward_data=reward_data, reward_model=reward_model, refine=refine, demo=demo,
                  serve=serve)
