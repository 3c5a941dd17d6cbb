"""Reading RLDS episodes from a TFDS folder (`<name>/<version>/` with dataset_info.json) without builder code."""
import contextlib
import io
import logging
import os
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.errors import DataFormatError


def prepare(builder, **download_config) -> None:
  """`builder.download_and_prepare` with TFDS's stdout banners ("Downloading and preparing dataset Unknown size
  ...", "... downloaded and prepared to ...": `termcolor.cprint`, no setting turns them off) sent to the log, so a
  run's console shows its own stages; nothing is downloaded here, the banners only mislead."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**download_config))
  for line in out.getvalue().splitlines():
    if line.strip():
      logging.getLogger(__name__).info("tfds: %s", line.strip())


def open_builder(path):
  """`tfds.builder_from_directory`, with a one-line error when `path` is not a prepared TFDS folder."""
  path = os.fspath(path)
  for name in ("dataset_info.json", "features.json"):
    if not os.path.exists(os.path.join(path, name)):
      raise DataFormatError(path, name, "a TFDS dataset folder <name>/<version>/ holding dataset_info.json and "
                            "features.json", "file not found")
  try:
    return tfds.builder_from_directory(path)
  except Exception as e:
    raise DataFormatError(path, "dataset_info.json", "a readable TFDS dataset", f"{type(e).__name__}: {e}")


def flatten(tree, prefix: str = "") -> dict:
  """Nested dicts -> {"observation/image": value}."""
  out = {}
  for k, v in tree.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(flatten(v, key + "/"))
    else:
      out[key] = v
  return out


def _feature_keys(feature, prefix=""):
  keys = []
  for k in feature.keys():
    sub = feature[k]
    if isinstance(sub, tfds.features.FeaturesDict):
      keys += _feature_keys(sub, f"{prefix}{k}/")
    else:
      keys.append(f"{prefix}{k}")
  return keys


def step_keys(builder) -> list[str]:
  """Flattened step feature names, e.g. ["action", "observation/image", ...]."""
  feats = builder.info.features
  if "steps" not in feats.keys():
    return []
  return sorted(_feature_keys(feats["steps"].feature))


def episode_keys(builder) -> list[str]:
  """Flattened episode-level feature names other than steps, e.g. ["episode_metadata/file_path"]."""
  feats = builder.info.features
  return sorted(k for k in _feature_keys(feats) if not k.startswith("steps"))


def iter_episodes(builder, split: str = "train", shard: tuple[int, int] = (0, 1)
                  ) -> Iterator[tuple[int, dict, dict]]:
  """Yields (episode index in the split, steps {key: array [T, ...]}, episode-level {key: value}) in file order.

  shard=(index, count): a contiguous 1/count of the episodes, selected by TFDS split slicing so the other
  hosts' records are never read or decoded.
  """
  if split not in builder.info.splits:
    raise DataFormatError(builder.data_dir, "split", f"split '{split}'", f"splits {sorted(builder.info.splits)}")
  if "steps" not in builder.info.features.keys():
    raise DataFormatError(builder.data_dir, "steps", "an RLDS dataset with a 'steps' feature",
                          f"features {sorted(builder.info.features.keys())}")
  index, count = shard
  n = builder.info.splits[split].num_examples
  start, end = index * n // count, (index + 1) * n // count
  if start == end:
    return
  sub = split if count == 1 else f"{split}[{start}:{end}]"
  ds = builder.as_dataset(split=sub, shuffle_files=False)
  for i, ep in enumerate(tfds.as_numpy(ds), start=start):
    steps = [flatten(s) for s in ep.pop("steps")]
    stacked = {k: np.stack([s[k] for s in steps]) for k in steps[0]} if steps else {}
    yield i, stacked, flatten(ep)
