"""Released reward models: a folder with big_vision-layout bf16 params, the tokenizer and a manifest.

  lrm_jax/models/assets/lrm_tiny/
    params.bf16.npz   the trained params (`paligemma.save`, bfloat16 as big_vision stores it)
    tokenizer.model   the SentencePiece model it was trained with
    manifest.json     how it was made: the full training config, model config, image size, data seeds, the exact
                      training tasks, the commit, a training-curve summary and the evaluation metrics

As big_vision and the paper's authors publish weights: trained once by a committed config
(`configs/reward_model/lrm_tiny.py`, which calls `export` at the end of the `reward_model` job), loaded anywhere
with `load` (or the public `paligemma.load` on `params.bf16.npz` with the manifest's model config).
"""
import json
import os
import shutil
from typing import Optional

import ml_dtypes
import numpy as np

from lrm_jax.models import paligemma
from lrm_jax.models import tokenizer as tokenizer_lib

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
LRM_TINY = os.path.join(ASSETS, "lrm_tiny")
PARAMS, TOKENIZER, MANIFEST = "params.bf16.npz", "tokenizer.model", "manifest.json"
MAX_BYTES = 10 * 2**20  # what may live in git (DEVELOPERS: released assets <= 10 MB)


def is_release(path: str) -> bool:
  return bool(path) and os.path.isfile(os.path.join(path, MANIFEST)) and os.path.isfile(os.path.join(path, PARAMS))


def export(out_dir: str, params: dict, tokenizer_path: str, manifest: dict) -> dict:
  """Writes a release folder (each file atomically, the manifest last, so a folder with a manifest is complete).
  `manifest` must hold `model` (the `paligemma.from_config` dict) and `image_size`. Returns the manifest written."""
  for key in ("model", "image_size"):
    if key not in manifest:
      raise ValueError(f"release manifest: expected a '{key}' entry, got keys {sorted(manifest)}")
  os.makedirs(out_dir, exist_ok=True)
  if os.path.exists(os.path.join(out_dir, MANIFEST)):
    os.remove(os.path.join(out_dir, MANIFEST))  # the folder is incomplete until the new manifest lands
  paligemma.save(os.path.join(out_dir, PARAMS), params, dtype=ml_dtypes.bfloat16)
  size = os.path.getsize(os.path.join(out_dir, PARAMS))
  if size > MAX_BYTES:
    raise ValueError(f"{out_dir}/{PARAMS}: {size:,} bytes; a released asset must be <= {MAX_BYTES:,} bytes")
  shutil.copyfile(tokenizer_path, os.path.join(out_dir, TOKENIZER + ".tmp"))
  os.replace(os.path.join(out_dir, TOKENIZER + ".tmp"), os.path.join(out_dir, TOKENIZER))
  manifest = dict(manifest, files={PARAMS: size, TOKENIZER: os.path.getsize(os.path.join(out_dir, TOKENIZER))})
  with open(os.path.join(out_dir, MANIFEST + ".tmp"), "w") as f:
    json.dump(manifest, f, indent=1, default=lambda x: x.item() if hasattr(x, "item") else str(x))
  os.replace(os.path.join(out_dir, MANIFEST + ".tmp"), os.path.join(out_dir, MANIFEST))
  return manifest


def read_manifest(path: str = LRM_TINY) -> dict:
  if not is_release(path):
    raise FileNotFoundError(f"{path}: expected a released model folder ({MANIFEST} + {PARAMS}); see "
                            "configs/reward_model/lrm_tiny.py for how one is made")
  with open(os.path.join(path, MANIFEST)) as f:
    return json.load(f)


def load(path: str = LRM_TINY, dtype=np.float32):
  """(model, tokenizer, params, manifest) of a released model; params through the public `paligemma.load`."""
  manifest = read_manifest(path)
  model = paligemma.from_config(manifest["model"])
  params = paligemma.load(os.path.join(path, PARAMS), model, int(manifest["image_size"]), dtype=dtype)
  return model, tokenizer_lib.load(os.path.join(path, TOKENIZER)), params, manifest


def available(path: Optional[str] = None) -> bool:
  return is_release(path or LRM_TINY)
