"""Parameter files: big_vision `.npz` (released PaliGemma weights) and orbax (training-time checkpoints).

big_vision `.npz` keys are the flattened tree joined by "/" under `params/`. numpy has no bfloat16, so bf16 arrays
are stored as 2-byte void (`V2`) and reinterpreted on load; float16 (`.f16.npz`) files load as float16.
"""
import os
import tempfile
import zipfile
import zlib

import jax
import ml_dtypes
import numpy as np

from data_pipelines.errors import DataFormatError

PREFIX = "params/"


def flatten(tree: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) or hasattr(v, "items"):
      out.update(flatten(dict(v.items()), f"{prefix}{k}/"))
    else:
      out[f"{prefix}{k}"] = v
  return out


def unflatten(flat: dict) -> dict:
  tree = {}
  for key, v in flat.items():
    *path, leaf = key.split("/")
    node = tree
    for p in path:
      node = node.setdefault(p, {})
    node[leaf] = v
  return tree


def _decode(arr: np.ndarray) -> np.ndarray:
  if arr.dtype.kind == "V":
    if arr.dtype.itemsize != 2:
      raise ValueError(f"void array of {arr.dtype.itemsize} bytes: expected V2 (bfloat16)")
    return arr.view(ml_dtypes.bfloat16)
  return arr


def check_npz(path: str) -> None:
  """Cheap check that `path` is a readable big_vision .npz (its zip directory and key names, no array data), so a
  run refuses a truncated or wrong file before minutes of data building, not when it first loads the weights."""
  expected = "a big_vision .npz (a zip of .npy arrays)"
  try:
    with zipfile.ZipFile(path) as z:
      names = z.namelist()
  except (zipfile.BadZipFile, OSError) as e:
    raise DataFormatError(path, "file", expected + ", complete", f"{type(e).__name__}: {e}") from None
  bad = [n for n in names if not n.startswith(PREFIX)]
  if bad or not names:
    raise DataFormatError(path, bad[0] if bad else "file", f"keys under {PREFIX!r} (not a big_vision checkpoint?)",
                          repr(bad[0]) if bad else "no arrays")


def load_npz(path: str, dtype=None) -> dict:
  """`.npz` -> nested dict of numpy arrays under the `params/` prefix (bf16 restored from `V2`)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint {path!r} does not exist")
  flat = {}
  expected = "a big_vision .npz (a zip of .npy arrays)"
  try:
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):  # a lone .npy renamed: one array, no keys
      raise DataFormatError(path, "file", expected, "a single .npy array")
    with z:
      for key in z.files:
        if not key.startswith(PREFIX):
          raise DataFormatError(path, key, f"keys under {PREFIX!r} (not a big_vision checkpoint?)", repr(key))
        arr = _decode(z[key])
        flat[key[len(PREFIX):]] = arr if dtype is None else arr.astype(dtype)
  except DataFormatError:
    raise
  # A truncated file is BadZipFile (or EOFError / a zlib error mid-array), random bytes are numpy's "pickled data"
  # ValueError: neither names the file, so both become one line that does.
  except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
    raise DataFormatError(path, "file", expected + ", complete",
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from e
  return unflatten(flat)


def save_npz(path: str, params: dict, dtype=None) -> None:
  """Nested dict -> `.npz` in big_vision layout, written to a temp file and renamed (atomic)."""
  flat = {}
  for key, v in flatten(params).items():
    arr = np.asarray(jax.device_get(v))
    if dtype is not None:
      arr = arr.astype(dtype)
    if arr.dtype == ml_dtypes.bfloat16:
      arr = arr.view("V2")
    flat[PREFIX + key] = arr
  d = os.path.dirname(os.path.abspath(path))
  os.makedirs(d, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=d, suffix=".npz.tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **flat)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def check_tree(params: dict, ref: dict, what: str = "params") -> None:
  """Raises naming the first missing / unexpected / wrongly-shaped entry of `params` against `ref`."""
  got = {k: np.shape(v) for k, v in flatten(params).items()}
  want = {k: tuple(v.shape) for k, v in flatten(ref).items()}
  missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
  if missing:
    raise ValueError(f"{what}: missing {missing[0]} (and {len(missing) - 1} more); expected shape {want[missing[0]]}")
  if extra:
    raise ValueError(f"{what}: unexpected {extra[0]} (and {len(extra) - 1} more)")
  for k in sorted(want):
    if got[k] != want[k]:
      raise ValueError(f"{what}: {k} has shape {got[k]}, expected {want[k]}")


def save_orbax(directory: str, tree) -> None:
  """Training-time checkpoint (params and optimizer state); orbax writes to a temp dir and renames."""
  import orbax.checkpoint as ocp
  ckptr = ocp.StandardCheckpointer()
  ckptr.save(os.path.abspath(directory), tree, force=True)
  ckptr.wait_until_finished()


def restore_orbax(directory: str, target=None):
  """Restores a `save_orbax` tree; `target` (arrays or ShapeDtypeStructs, possibly sharded) sets the layout."""
  import orbax.checkpoint as ocp
  return ocp.StandardCheckpointer().restore(os.path.abspath(directory), target)
