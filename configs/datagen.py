"""Scripted-expert data generation on LRM-Bench -> RLDS/TFDS dataset `lrm_bench` under the workdir.

  python -m lrm_jax.main --config=configs/datagen.py --workdir=W
  python -m lrm_jax.main --config=configs/datagen.py:episodes_per_task=4,image_size=32 --workdir=W   # tiny
Full-size data for PaliGemma-224 models: `:image_size=224,episodes_per_task=2000,batch_size=256` on a GPU.
"""
import ml_collections

from lrm_jax.envs import tasks
from lrm_jax.utils import config_args


def get_config(arg=None):
  a = config_args.parse_arg(arg, episodes_per_task=20, image_size=64, batch_size=32, seed=0,
                            failure_fraction=0.5, videos=True)
  c = ml_collections.ConfigDict()
  c.job = "datagen"
  c.tasks = tuple(sorted(tasks.TASKS))           # train and held-out tasks; the split is kept on disk
  c.episodes_per_task = a.episodes_per_task
  c.failure_fraction = a.failure_fraction        # share of episodes run with a failure mode
  c.failure_modes = ("noise", "wrong_object", "drop", "stall", "undo")
  c.noise_std = 0.8                              # std of the noise added to motion commands in mode "noise"
  c.embodiments = ("gripper", "hand")            # alternated episode by episode
  c.camera = "front"
  c.image_size = a.image_size
  c.randomize_appearance = True                  # camera pose, light and non-task colours per episode
  c.appearance_strength = 1.0
  c.shadows = True
  c.batch_size = a.batch_size                    # episodes per jitted rollout call (fixed shape: one compile)
  c.seed = a.seed
  c.videos = a.videos                            # one mp4 + contact sheet per task in W/videos
  c.compile_cache_dir = ""
  return c
