"""Pretraining the image tower on rendered scenes: dense semantic classes and the privileged scene state.

A released PaliGemma starts from a SigLIP tower that already knows objects, colours and where they are. A tower
trained from random init inside the reward model's answer-only loss gets one label per example and, on CPU budgets,
never gets there (bench/RESULTS.md: the model stays at the answer marginals). So the CPU model first trains the
tower on two dense objectives, the CPU stand-in for SigLIP's pretraining:
- segmentation: every image token predicts the semantic class of each of its p x p pixels
  (`envs.base.SEMANTIC_CLASSES`: end effector, cubes by colour, plate, mat, buttons by colour and state, drawer,
  handle, ...) through a linear pixel decoder, with class-balanced cross-entropy;
- scene state: an MLP on the image tokens regresses `envs.base.SCENE_STATE` (end-effector position and opening,
  each cube's position and whether it is grasped, by colour; plate and mat positions; which buttons are lit; how far
  the drawer is open), masked where the scene has no such thing. This is what a reward model must read off a frame
  to tell how far along a task is, and it is what makes the tokens carry geometry rather than texture.
The frames come from scripted rollouts of *training* tasks only; the labels say what is where, never anything about
a task, its progress or its success. The decoder and the state head are thrown away; the tower (including its
`head`, so the LLM receives tokens that already encode the scene) initialises the reward model.

`pretrain(model, params, data, config, num_classes)` returns params with `img` replaced, the per-step losses and
the held-back metrics; everything runs in one jitted `lax.scan` per chunk of steps, with a tqdm bar.
`evaluate(...)` measures a trained tower on other frames (e.g. held-out tasks' frames: transferable perception,
measured without ever training on them).
"""
import dataclasses
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from lrm_jax.envs import base
from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.models import vit

_EVAL_CHUNK = 256  # frames per jitted evaluation call (bounds memory)
FLAG_GROUPS = ("grasped", "lit")  # the scene-state flag groups `flag_weights` can balance


@dataclasses.dataclass
class Frames:
  """Pretraining frames uint8 [N, S, S, 3] with labels: seg uint8 [N, S, S]; scene / scene_mask float32
  [N, len(base.SCENE_STATE)] (None: segmentation only)."""
  frames: np.ndarray
  seg: np.ndarray
  scene: Optional[np.ndarray] = None
  scene_mask: Optional[np.ndarray] = None

  @classmethod
  def load(cls, path: str) -> "Frames":
    with np.load(path) as z:
      return cls(z["frames"], z["seg"], *((z["scene"], z["scene_mask"]) if "scene" in z else (None, None)))

  def take(self, idx) -> "Frames":
    return Frames(*(None if a is None else a[idx] for a in dataclasses.astuple(self)))

  def check(self, num_classes: int) -> None:
    n, size = len(self.frames), int(self.frames.shape[1]) if self.frames.ndim == 4 else -1
    if self.frames.ndim != 4 or self.frames.shape[1:] != (size, size, 3) or self.seg.shape != self.frames.shape[:3]:
      raise ValueError(f"tower pretraining frames {self.frames.shape} / seg {self.seg.shape}: expected square "
                       "frames [N, S, S, 3] and labels [N, S, S]")
    if int(self.seg.max()) >= num_classes:
      raise ValueError(f"tower pretraining labels: expected classes < {num_classes}, got {int(self.seg.max())}")
    if self.scene is not None and (self.scene.shape != (n, len(base.SCENE_STATE))
                                   or self.scene_mask is None or self.scene_mask.shape != self.scene.shape):
      raise ValueError(f"tower pretraining scene state {self.scene.shape}: expected [{n}, {len(base.SCENE_STATE)}] "
                       "with a scene_mask of the same shape")


class PixelDecoder(nn.Module):
  """Image tokens [B, P, D] -> per-pixel class logits [B, H, W, C] (each token decodes its own p x p patch)."""
  patch: int
  grid: int
  num_classes: int

  @nn.compact
  def __call__(self, tokens):
    b = tokens.shape[0]
    p, g, c = self.patch, self.grid, self.num_classes
    x = nn.Dense(p * p * c, name="pixels")(tokens.astype(jnp.float32))       # [B, g*g, p*p*C]
    x = x.reshape(b, g, g, p, p, c).transpose(0, 1, 3, 2, 4, 5)               # [B, g, p, g, p, C]
    return x.reshape(b, g * p, g * p, c)


class StateHead(nn.Module):
  """Image tokens [B, P, D] -> scene state [B, len(SCENE_STATE)]: every token in place (where matters), one MLP."""
  hidden: int = 256

  @nn.compact
  def __call__(self, tokens):
    x = tokens.astype(jnp.float32).reshape(tokens.shape[0], -1)
    x = nn.gelu(nn.Dense(self.hidden, name="hidden")(x))
    return nn.Dense(len(base.SCENE_STATE), name="out")(x)


def class_weights(seg: np.ndarray, num_classes: int) -> np.ndarray:
  """Inverse square-root frequency weights (mean 1 over pixels): small objects count, background does not rule."""
  counts = np.bincount(seg.reshape(-1), minlength=num_classes).astype(np.float64)
  w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
  return (w / (w * counts).sum() * counts.sum()).astype(np.float32)


def _jitter(images, key, brightness=0.1, contrast=0.1):
  """Per-image brightness / contrast jitter of [-1, 1] images (labels do not move)."""
  kb, kc = jax.random.split(key)
  b = images.shape[0]
  shift = jax.random.uniform(kb, (b, 1, 1, 1), minval=-brightness, maxval=brightness) * 2.0
  scale = jax.random.uniform(kc, (b, 1, 1, 1), minval=1.0 - contrast, maxval=1.0 + contrast)
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return jnp.clip((images - mean) * scale + mean + shift, -1.0, 1.0)


def _field_groups() -> dict[str, np.ndarray]:
  names = base.SCENE_STATE
  idx = lambda pred: np.array([i for i, n in enumerate(names) if pred(n)], np.int32)
  return dict(
      position=idx(lambda n: n[-2:] in ("_x", "_y", "_z")), closure=idx(lambda n: n == "closure"),
      grasped=idx(lambda n: n.endswith("_grasped")), lit=idx(lambda n: n.endswith("_lit")),
      drawer=idx(lambda n: n == "drawer_opening"))


def state_errors(pred: np.ndarray, scene: np.ndarray, mask: np.ndarray) -> dict[str, float]:
  """Errors in natural units over the fields present (mask 1): positions in cm (targets are in dm), closure as a
  fraction of fully open, grasp / lit flags as accuracy at 0.5, drawer opening in cm."""
  from lrm_jax.envs import scene as scene_lib  # the drawer's travel, to undo its normalisation
  g = _field_groups()
  err = np.abs(pred - scene)

  def mean(group, scale=1.0):
    m = mask[:, g[group]] > 0
    return float(err[:, g[group]][m].mean() * scale) if m.any() else float("nan")

  def acc(group):
    m = mask[:, g[group]] > 0
    return float(((pred[:, g[group]] > 0.5) == (scene[:, g[group]] > 0.5))[m].mean()) if m.any() else float("nan")

  out = dict(position_cm=mean("position", 10.0), closure=mean("closure"), grasped_acc=acc("grasped"),
             lit_acc=acc("lit"), drawer_cm=mean("drawer", scene_lib.DRAWER_TRAVEL * 100.0))
  # A grasp is rare (most frames hold nothing): accuracy on the frames that do hold a cube, too.
  held = (scene[:, g["grasped"]] > 0.5) & (mask[:, g["grasped"]] > 0)
  out["grasped_recall"] = float((pred[:, g["grasped"]] > 0.5)[held].mean()) if held.any() else float("nan")
  lit = (scene[:, g["lit"]] > 0.5) & (mask[:, g["lit"]] > 0)  # lit buttons are as rare
  out["lit_recall"] = float((pred[:, g["lit"]] > 0.5)[lit].mean()) if lit.any() else float("nan")
  return out


def flag_weights(scene: np.ndarray, mask: np.ndarray, cap: float = 30.0,
                 groups: tuple[str, ...] = ("grasped",)) -> np.ndarray:
  """Per-field weight [len(SCENE_STATE)] for a target of 1: (frames without / frames with), capped, for the flags of
  each group in `groups` ("grasped", "lit"), and 1 elsewhere. Few frames hold a cube, so an unweighted regression
  learns "never grasped" (recall 0.005 in the v0 release run, bench/RESULTS.md); balanced, the tower has to see the
  cube in the fingers. Lit buttons are as rare (8% of the flags): unweighted, the head answers "unlit" everywhere
  (RESULTS: "A longer tower pretraining")."""
  w = np.ones(scene.shape[1], np.float32)
  fields = _field_groups()
  for group in groups:
    if group not in FLAG_GROUPS:
      raise ValueError(f"tower balance_flags: {group!r} is not a flag group; expected one of {list(FLAG_GROUPS)}")
    g = fields[group]
    present = mask[:, g] > 0
    pos = ((scene[:, g] > 0.5) & present).sum()
    neg = ((scene[:, g] <= 0.5) & present).sum()
    if pos > 0:
      w[g] = float(np.clip(neg / pos, 1.0, cap))
  return w


class _Towers:
  """The model's image tower with the two pretraining heads."""

  def __init__(self, model: paligemma.Model, size: int, num_classes: int):
    self.model, self.size = model, size
    patch = int((model.img_config.get("patch_size") or vit.get_variant(model.img_config["variant"])["patch_size"])[0])
    self.decoder = PixelDecoder(patch=patch, grid=size // patch, num_classes=num_classes)
    self.state_head = StateHead()

  def init(self, key, params, image):
    tokens = self.model.apply({"params": params}, preprocess.images(image, self.size),
                              method=paligemma.Model.embed_image)
    k1, k2 = jax.random.split(key)
    return dict(img=params["img"], decoder=self.decoder.init(k1, tokens)["params"],
                state=self.state_head.init(k2, tokens)["params"])

  def __call__(self, params, tr, images):
    """[-1, 1] images -> (pixel logits, scene state)."""
    tokens = self.model.apply({"params": dict(params, img=tr["img"])}, images, method=paligemma.Model.embed_image)
    return (self.decoder.apply({"params": tr["decoder"]}, tokens),
            self.state_head.apply({"params": tr["state"]}, tokens))


def _predict(towers: _Towers, params, tr, frames: np.ndarray):
  fn = jax.jit(lambda t, x: (lambda o: (jnp.argmax(o[0], -1).astype(jnp.uint8), o[1]))(
      towers(params, t, preprocess.images(x, towers.size))))
  segs, states = [], []
  for start in range(0, len(frames), _EVAL_CHUNK):
    x = frames[start:start + _EVAL_CHUNK]
    pad = _EVAL_CHUNK - len(x) if len(frames) > _EVAL_CHUNK else 0  # one compiled shape
    s, st = fn(tr, np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x)
    segs.append(np.asarray(s)[:len(x)])
    states.append(np.asarray(st)[:len(x)])
  return np.concatenate(segs), np.concatenate(states)


def _metrics(seg_pred, state_pred, data: Frames) -> dict[str, float]:
  fg = data.seg > 1  # objects and end effector, not background / static scene
  out = dict(object_pixel_accuracy=float((seg_pred == data.seg)[fg].mean()) if fg.any() else float("nan"))
  if data.scene is not None:
    out.update(state_errors(state_pred, data.scene, data.scene_mask))
  return out


def pretrain(model: paligemma.Model, params: dict, data: Frames, config, num_classes: int,
             progress: bool = True, eval_sets: Optional[dict] = None):
  """Trains params["img"] on `data` (classes < num_classes; scene state optional).

  config: steps, batch_size, lr, seed, and optionally seg_weight (1.0), state_weight (1.0; used only when `data`
  has a scene state) and balance_flags (("grasped",): the flag groups whose rare 1s are up-weighted; `flag_weights`).
  Returns (params with the new `img`, per-step losses, metrics): `metrics["val"]` on a random held-back tenth of the
  frames and `metrics[name]` on each of `eval_sets` (name -> Frames): object-pixel accuracy and, with scene state,
  `state_errors`.
  """
  data.check(num_classes)
  size = int(data.frames.shape[1])
  towers = _Towers(model, size, num_classes)
  n_val = max(1, len(data.frames) // 10)
  # A random tenth (the frames come grouped by family and task): neighbours of training frames, so optimistic;
  # `eval_sets` (e.g. held-out tasks' frames) are the real test.
  order = np.random.default_rng(int(config.seed)).permutation(len(data.frames))
  val, train = data.take(np.sort(order[:n_val])), data.take(np.sort(order[n_val:]))
  train_x, train_y = jnp.asarray(train.frames), jnp.asarray(train.seg)
  with_state = train.scene is not None and float(config.get("state_weight", 1.0)) > 0
  train_s = jnp.asarray(train.scene if with_state else np.zeros((len(train.frames), 1), np.float32))
  train_m = jnp.asarray(train.scene_mask if with_state else np.zeros((len(train.frames), 1), np.float32))
  seg_w, state_w = float(config.get("seg_weight", 1.0)), float(config.get("state_weight", 1.0)) * with_state
  weights = jnp.asarray(class_weights(train.seg, num_classes))
  flags = tuple(config.get("balance_flags", ("grasped",)))
  field_w = jnp.asarray(flag_weights(train.scene, train.scene_mask, groups=flags) if with_state
                        else np.ones((1,), np.float32))
  key = jax.random.PRNGKey(int(config.seed))
  trainable = towers.init(key, params, train_x[:1])
  steps, batch = int(config.steps), int(config.batch_size)
  opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, float(config.lr), min(100, steps // 10 + 1), steps,
                                                       float(config.lr) * 0.05), weight_decay=1e-4)

  def loss_fn(tr, images, labels, scene, mask):
    logits, state = towers(params, tr, images)
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    w = weights[labels.astype(jnp.int32)]
    seg_loss = jnp.sum(nll * w) / jnp.sum(w)
    if with_state:  # a held cube's flag weighs as much as all the empty-handed frames' flags together (above)
      w_state = mask * jnp.where(scene > 0.5, field_w, 1.0)
      state_loss = jnp.sum(jnp.square(state - scene) * w_state) / jnp.maximum(jnp.sum(w_state), 1.0)
    else:
      state_loss = 0.0
    return seg_w * seg_loss + state_w * state_loss

  def step(carry, k, data):
    tr, opt_state = carry
    x, y, s, m = data
    k_idx, k_aug = jax.random.split(k)
    idx = jax.random.randint(k_idx, (batch,), 0, x.shape[0])
    images = _jitter(preprocess.images(x[idx], size), k_aug)
    loss, grads = jax.value_and_grad(loss_fn)(tr, images, y[idx], s[idx], m[idx])
    updates, opt_state = opt.update(grads, opt_state, tr)
    return (optax.apply_updates(tr, updates), opt_state), loss

  chunk = max(1, min(steps, 100))
  # The frames are an argument, not a constant the jitted scan closes over: as a constant, XLA embeds them in the
  # program (and the compile cache serialises them), several copies of 1.6 GB at 97,000 frames, which the release's
  # tower ran out of 24 GB on (RESULTS: "LRM-tiny v2").
  train_data = (train_x, train_y, train_s, train_m)
  run = jax.jit(lambda carry, keys, data: jax.lax.scan(lambda c, k: step(c, k, data), carry, keys))
  carry, losses = (trainable, opt.init(trainable)), []
  keys = jax.random.split(jax.random.fold_in(key, 1), steps)
  bar = tqdm.tqdm(total=steps, desc="pretrain image tower", unit="step", disable=not progress, mininterval=2.0)
  for start in range(0, steps, chunk):
    ks = keys[start:start + chunk]
    if len(ks) < chunk:  # one compiled shape: pad the last chunk with extra steps' keys
      ks = jnp.concatenate([ks, jax.random.split(ks[-1], chunk - len(ks))])[:chunk]
    carry, l = run(carry, ks, train_data)
    losses.append(np.asarray(l))
    bar.update(min(chunk, steps - start))
    bar.set_postfix(loss=f"{float(l[-1]):.3f}")
  bar.close()
  trained = carry[0]
  metrics = {}
  for name, frames in dict(val=val, **(eval_sets or {})).items():
    frames.check(num_classes)
    if not with_state:  # the state head was never trained: its errors would mean nothing
      frames = Frames(frames.frames, frames.seg)
    metrics[name] = _metrics(*_predict(towers, params, trained, frames.frames), frames)
  return dict(params, img=trained["img"]), np.concatenate(losses)[:steps], metrics
