"""Small h5py helpers shared by the robomimic-style readers (LIBERO, RoboCasa, EgoDex)."""
import glob
import json
import os
import re

import h5py
import numpy as np

from data_pipelines.errors import DataFormatError
from data_pipelines.record import decode_text


def open_h5(path) -> h5py.File:
  try:
    return h5py.File(path, "r")
  except OSError as e:
    raise DataFormatError(path, "file", "a readable HDF5 file", f"{str(e).splitlines()[0][:120]}")


def demo_names(path, data: h5py.Group) -> list[str]:
  """demo_0, demo_1, ..., demo_10 in numeric (not lexical) order."""
  names = [k for k in data.keys() if re.fullmatch(r"demo_\d+", k)]
  return sorted(names, key=lambda k: int(k.split("_")[1]))


def attr_text(path, node, name: str, *, required: bool = True):
  if name not in node.attrs:
    if required:
      raise DataFormatError(path, f"{node.name}.attrs['{name}']", "a string attribute", "missing")
    return None
  return decode_text(node.attrs[name])


def attr_json(path, node, name: str) -> dict:
  text = attr_text(path, node, name)
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise DataFormatError(path, f"{node.name}.attrs['{name}']", "a JSON string", f"invalid JSON ({e.msg})")
  if not isinstance(value, dict):
    raise DataFormatError(path, f"{node.name}.attrs['{name}']", "a JSON object", type(value).__name__)
  return value


def images(path, group: h5py.Group, key: str, index=None) -> np.ndarray:
  """group[key] as uint8 [T,H,W,3]; `index` (sorted ints) reads only those rows."""
  if key not in group:
    raise DataFormatError(path, f"{group.name}/{key}", "an image dataset (T,H,W,3) uint8",
                          f"missing; keys {sorted(group.keys())}")
  ds = group[key]
  if ds.ndim != 4 or ds.shape[-1] != 3:
    raise DataFormatError(path, f"{group.name}/{key}", "rank 4 (T,H,W,3)", f"shape {ds.shape}")
  if ds.shape[0] == 0:
    raise DataFormatError(path, f"{group.name}/{key}", "at least one frame", "an empty episode")
  if ds.dtype != np.uint8:
    raise DataFormatError(path, f"{group.name}/{key}", "dtype uint8", f"{ds.dtype}")
  return ds[()] if index is None else ds[np.asarray(index)]


def last_flag(group: h5py.Group, *keys) -> bool | None:
  """True when any of `keys` (rewards, dones) is set on the last step; None when none is present."""
  found = [k for k in keys if k in group and group[k].shape and group[k].shape[0] > 0]
  if not found:
    return None
  return any(bool(np.asarray(group[k][-1]) > 0) for k in found)


def data_groups(root: str, pattern: str, what: str):
  """Robomimic-style files: yields (path, the open file's `data` group) for `root` itself or every file matching
  `pattern` under it (sorted), or (path, DataFormatError) for a file that cannot be used. The group stays valid
  until the next item is requested."""
  files = [root] if os.path.isfile(root) else sorted(glob.glob(os.path.join(root, "**", pattern), recursive=True))
  if not files:
    yield root, DataFormatError(root, "files", f"at least one {what}", "none found")
  for path in files:
    try:
      f = open_h5(path)
    except DataFormatError as err:
      yield path, err
      continue
    with f:
      if "data" not in f:
        yield path, DataFormatError(path, "data", "a 'data' group", f"keys {sorted(f.keys())}")
        continue
      yield path, f["data"]
