"""TFDS builder that writes LRM-Bench episodes as an RLDS dataset (`lrm_bench/1.0.0`).

Readable with `tfds.builder_from_directory(<data_dir>/lrm_bench/1.0.0)` alone. Splits keep the task split on disk:
`train` holds only training tasks, `heldout` only held-out tasks (evaluation and RL); a reader that asks for `train`
cannot see a held-out episode. TFDS writes into a temporary folder and renames it when done, so an interrupted run
never leaves a half-written dataset that looks complete.

An episode given to the builder is a dict:
  images uint8 [T, H, W, 3], state float32 [T, D], action float32 [T, 4], reward float32 [T], stage int32 [T],
  instruction str, task str, success bool, embodiment str, seed int, noise str, num_stages int.
"""
from typing import Callable, Iterable

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import tfds_io

NAME = "lrm_bench"
VERSION = "1.0.0"


def features(image_size: int) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict({
      "steps": tfds.features.Dataset({
          "observation": tfds.features.FeaturesDict({
              "image": tfds.features.Image(shape=(image_size, image_size, 3), encoding_format="png"),
              # Scene families differ in state size; RLDS allows a variable-length vector. Inside `steps` that
              # is a second unknown dimension, which TFDS can only read back from an encoded tensor.
              "state": tfds.features.Tensor(shape=(None,), dtype=np.float32, encoding="zlib"),
          }),
          "action": tfds.features.Tensor(shape=(4,), dtype=np.float32),
          "reward": np.float32,
          "discount": np.float32,
          "is_first": np.bool_,
          "is_last": np.bool_,
          "is_terminal": np.bool_,
          "language_instruction": tfds.features.Text(),
          "stage": np.int32,  # privileged, for evaluation only
      }),
      "episode_metadata": tfds.features.FeaturesDict({
          "task": tfds.features.Text(),
          "success": np.bool_,
          "embodiment": tfds.features.Text(),
          "seed": np.int64,
          "noise": tfds.features.Text(),
          "num_stages": np.int32,
          "file_path": tfds.features.Text(),
      }),
  })


def to_rlds(ep: dict, index: int) -> dict:
  """One episode dict -> the RLDS example (steps + metadata). Checks shapes with one-line errors."""
  images = np.asarray(ep["images"])
  T = images.shape[0]
  if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
    raise ValueError(f"episode {index}: images must be uint8 [T, H, W, 3], got {images.dtype} {images.shape}")
  if T == 0:
    raise ValueError(f"episode {index}: empty episode (0 steps)")
  for key in ("state", "action", "reward", "stage"):
    if len(ep[key]) != T:
      raise ValueError(f"episode {index}: {key} has {len(ep[key])} steps, images have {T}")
  success = bool(ep["success"])
  steps = [{
      "observation": {"image": images[t], "state": np.asarray(ep["state"][t], np.float32)},
      "action": np.asarray(ep["action"][t], np.float32),
      "reward": np.float32(ep["reward"][t]),
      "discount": np.float32(1.0),
      "is_first": t == 0,
      "is_last": t == T - 1,
      "is_terminal": success and t == T - 1,
      "language_instruction": ep["instruction"],
      "stage": np.int32(ep["stage"][t]),
  } for t in range(T)]
  meta = {"task": ep["task"], "success": success, "embodiment": ep["embodiment"], "seed": int(ep["seed"]),
          "noise": ep["noise"], "num_stages": int(ep["num_stages"]),
          "file_path": f"{NAME}/{ep['task']}/{ep['embodiment']}/{index:06d}"}
  return {"steps": steps, "episode_metadata": meta}


class LrmBench(tfds.core.GeneratorBasedBuilder):
  """Builder fed by in-memory episode iterators, one per split: `LrmBench(splits={...}, image_size=64)`."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {str(VERSION): "LRM-Bench scripted-expert episodes (clean and failure modes)."}

  def __init__(self, *, splits: dict[str, Callable[[], Iterable[dict]]] | None = None, image_size: int = 64,
               **kwargs):
    self._splits = splits or {}
    self._image_size = image_size
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, features=features(self._image_size),
        description="LRM-Bench: MJX manipulation episodes rendered in pure JAX, RLDS layout.")

  def _split_generators(self, dl_manager):
    del dl_manager
    return {name: self._generate_examples(make) for name, make in self._splits.items()}

  def _generate_examples(self, make_episodes):
    for i, ep in enumerate(make_episodes()):
      yield f"{ep['task']}_{i:06d}", to_rlds(ep, i)


def write(data_dir: str, splits: dict[str, Callable[[], Iterable[dict]]], image_size: int) -> str:
  """Writes the dataset under `data_dir`; returns the folder to give `tfds.builder_from_directory`."""
  builder = LrmBench(splits=splits, image_size=image_size, data_dir=data_dir)
  tfds_io.prepare(builder, beam_options=None, try_download_gcs=False)
  return builder.data_dir
