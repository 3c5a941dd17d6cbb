"""Plain config (no job): the reward-model training mixture over the on-disk sources under one root.

  python -c "from configs import reward_data_mixture as c; print(c.get_config('root=/data'))"

Each source: name, format (data_pipelines.registry.READERS), path, weight (normalised over sources with weight >
0), optional reader_kwargs and per-source label overrides. Paths follow each dataset's usual folder name; edit
them, or set a weight to 0 to leave a source out.
"""
import ml_collections
from ml_collections import config_dict

from lrm_jax.utils import config_args


def get_config(arg=None):
  a = config_args.parse_arg(arg, root="data", image_size=224, seed=0, max_frames=64)
  r = a.root
  video = dict(max_frames=a.max_frames, frame_size=(256, 256))  # bound decoding memory for 1080p video
  sources = [
      dict(name="lrm_bench", format="lrm_bench", path=f"{r}/lrm_bench/1.0.0", weight=0.3,
           reader_kwargs=dict(max_frames=a.max_frames)),
      dict(name="fractal", format="oxe", path=f"{r}/fractal20220817_data/0.1.0", weight=0.1,
           reader_kwargs=dict(max_frames=a.max_frames)),
      dict(name="bridge", format="oxe", path=f"{r}/bridge_dataset/1.0.0", weight=0.1,
           reader_kwargs=dict(max_frames=a.max_frames)),
      dict(name="libero", format="libero_rlds", path=f"{r}/libero_10_no_noops/1.0.0", weight=0.1,
           reader_kwargs=dict(max_frames=a.max_frames)),
      dict(name="robocasa", format="robocasa", path=f"{r}/robocasa", weight=0.1,
           reader_kwargs=dict(max_frames=a.max_frames)),
      dict(name="egodex", format="egodex", path=f"{r}/egodex", weight=0.1, reader_kwargs=video),
      dict(name="hoi4d", format="hoi4d", path=f"{r}/HOI4D_release", weight=0.1, reader_kwargs=video),
      dict(name="ssv2", format="ssv2", path=f"{r}/something-something-v2", weight=0.05, reader_kwargs=video),
      dict(name="epic_kitchens", format="epic_kitchens", path=f"{r}/EPIC-KITCHENS", weight=0.05,
           reader_kwargs=dict(max_frames=a.max_frames, frame_size=(256, 256))),
  ]
  return ml_collections.ConfigDict(dict(
      seed=a.seed, image_size=a.image_size, augment=True, shuffle_buffer=1024, batch_size=None, prefetch=2,
      summary_max_trajectories=config_dict.placeholder(int), labels={}, sources=sources))
