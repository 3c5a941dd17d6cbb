"""Reward-model training data: builds CPU-scale simulated sources in three real on-disk formats, then the mixture.

  python -m lrm_jax.main --config=configs/reward_data.py --workdir=W             # ~5 min on 2 CPU cores (cold cache)
  python -m lrm_jax.main --config=configs/reward_data.py:episodes_per_task=3,failure_fraction=0.34,image_size=16,batch_size=4,tasks=press_button+push_cube --workdir=W

The suite's training tasks only (`lrm_jax.envs.splits.TRAIN_TASKS`; held-out tasks raise) are generated twice and
written under `W/sources/` (or `root=DIR`) through the formats real data comes in, so the same readers run:
  lrm_bench/1.0.0      gripper episodes (clean + failure modes, success flags), our suite RLDS     format lrm_bench
  EPIC-KITCHENS/       successful clean "hand" episodes as human video: EPIC-KITCHENS-100 narration  format epic_kitchens
                       CSV + PXX/rgb_frames/PXX_YY/frame_%010d.jpg (no success flags, like real human video)
  lrm_bench_oxe/0.1.0  a second camera ("side") with stronger appearance randomisation, successful    format oxe
                       gripper episodes in the Open-X "converted" RLDS key layout

Real datasets instead: `:real,root=/data` skips generation and mixes the on-disk datasets listed in
`configs/reward_data_mixture.py` under `/data` (`lrm_bench/1.0.0` from the `datagen` job, Open-X
`fractal20220817_data/0.1.0` and `bridge_dataset/1.0.0`, RLDS LIBERO `libero_10_no_noops/1.0.0`, `robocasa/`,
`egodex/`, `HOI4D_release/`, `something-something-v2/`, `EPIC-KITCHENS/`); edit that list (paths, weights, or
weight 0 to leave a source out). Any source dict may also be added to `config.mixture.sources` here: relative
paths are resolved against the sources root, absolute ones are used as they are.

Arguments: episodes_per_task (first generation; the Open-X source gets half), failure_fraction (first
generation; clean episodes come first per task and embodiments alternate, so keep >= 2 clean episodes per task for
the hand source), batch_size (episodes per jitted rollout), image_size, seed, tasks ("+"-separated; default all
training tasks), root, real, batches (how many batches the job takes to prove the stream works), examples (shown in
the PNG grid).
"""
import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from lrm_jax.envs import splits
from lrm_jax.utils import config_args


def _datagen(tasks, episodes_per_task, image_size, batch_size, seed, **overrides):
  """A `configs/datagen.py`-shaped config for `lrm_jax.jobs.datagen.generate`."""
  c = ml_collections.ConfigDict(dict(
      tasks=tuple(tasks), episodes_per_task=episodes_per_task, failure_fraction=0.5,
      failure_modes=("noise", "wrong_object", "drop", "stall", "undo"), noise_std=0.8,
      embodiments=("gripper", "hand"), camera="front", image_size=image_size, randomize_appearance=True,
      appearance_strength=0.5, shadows=True, batch_size=batch_size, seed=seed))
  c.update(overrides)
  return c


def _real_mixture():
  """configs/reward_data_mixture.py, loaded by path (config files are loaded by path, not as a package)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reward_data_mixture.py")
  spec = importlib.util.spec_from_file_location("reward_data_mixture", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg=None):
  a = config_args.parse_arg(arg, episodes_per_task=12, image_size=64, seed=0, tasks="", root="", real=False,
                            batches=4, examples=8, batch_size=24,
                            failure_fraction=0.5)
  tasks = tuple(sorted(a.tasks.split("+"))) if a.tasks else tuple(sorted(splits.TRAIN_TASKS))
  c = ml_collections.ConfigDict()
  c.job = "reward_data"
  c.generate = not a.real                # build the simulated sources first (False: mix existing data)
  c.root = a.root                        # sources root; "" -> W/sources (generated), ./data with `real`
  # Source 1+2: one generation, embodiments alternate episode by episode. Gripper episodes (clean and failed) ->
  # lrm_bench RLDS; clean successful hand episodes -> EPIC-KITCHENS layout (failed hand episodes are dropped).
  # Both generations run together, one compiled rollout per scene family (cameras, looks and embodiments are data),
  # in chunks of batch_size. 24: the CPU demo's 8 episodes per task give 156 table (13 tasks x 8 + 13 x 4) and 36
  # drawer episodes, 7 + 2 chunks with 24 padded slots; the held-out generation (12 per task) shares the program.
  c.datagen = _datagen(tasks, a.episodes_per_task, a.image_size, a.batch_size, a.seed,
                       failure_fraction=a.failure_fraction)
  # Source 3: second camera and colour style, gripper only, clean demos (failures would read as successes).
  c.datagen_oxe = _datagen(tasks, max(1, a.episodes_per_task // 2), a.image_size, a.batch_size, a.seed + 1,
                           embodiments=("gripper",), failure_fraction=0.0, camera="side", appearance_strength=1.0)
  c.epic_segments_per_video = 8
  # Every 3rd frame of both generations with its semantic segmentation -> W/sources/tower_frames.npz, the image
  # tower's pretraining data in the CPU demo (lrm_jax/train/tower_pretrain.py); 0 = do not write it.
  c.tower_frame_stride = 3
  if a.real:
    c.root = os.path.abspath(a.root or "data")  # the datasets' parent folder (paths become absolute)
    c.mixture = _real_mixture().get_config(f"root={c.root},image_size={a.image_size},seed={a.seed}")
  else:
    c.mixture = ml_collections.ConfigDict(dict(
        seed=a.seed, image_size=a.image_size, augment=True, shuffle_buffer=256, batch_size=8, prefetch=2,
        summary_max_trajectories=config_dict.placeholder(int), labels={},
        sources=[
            dict(name="lrm_bench", format="lrm_bench", path="lrm_bench/1.0.0", weight=0.4),
            dict(name="epic_kitchens", format="epic_kitchens", path="EPIC-KITCHENS", weight=0.3),
            dict(name="lrm_bench_oxe", format="oxe", path="lrm_bench_oxe/0.1.0", weight=0.3),
        ]))
  c.mixture.batch_size = 8
  c.batches = a.batches                  # batches taken from the stream at the end (proof it yields)
  c.examples = a.examples                # examples drawn in W/reward_data_examples.png
  c.compile_cache_dir = ""
  return c
