"""Pretraining the image tower on rendered scenes with dense semantic labels (the CPU demo's stand-in for SigLIP).

A released PaliGemma starts from a SigLIP tower that already knows objects, colours and where they are. A tower
trained from random init inside the reward model's answer-only loss gets one label per example and, on CPU budgets,
never gets there (bench/RESULTS.md: the model stays at the answer marginals). So the CPU demo first trains the
tower the way dense vision pretraining does: every image token predicts the semantic class of each of its p x p
pixels (`envs.base.SEMANTIC_CLASSES`: end effector, cubes by colour, plate, mat, buttons by colour and state,
drawer, handle, ...) through a linear pixel decoder, with class-balanced cross-entropy. The frames are rendered
from scripted rollouts of *training* tasks only; the labels say what is where, never anything about a task's
progress or success. The decoder is thrown away; the tower (including its `head`, so the LLM receives tokens that
already encode the scene) initialises the reward model.

`pretrain(model, params, frames, seg, config)` returns params with `img` replaced; everything runs in one jitted
`lax.scan` per chunk of steps, with a tqdm bar.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.models import vit


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


def pretrain(model: paligemma.Model, params: dict, frames: np.ndarray, seg: np.ndarray, config,
             num_classes: int, progress: bool = True):
  """Trains params["img"] on frames uint8 [N, S, S, 3] / seg uint8 [N, S, S] (classes < num_classes).

  config: steps, batch_size, lr, seed. Returns (params with the new `img`, per-step losses, pixel accuracy on the
  object pixels (classes above background and static scene) of a held-back tenth of the frames).
  """
  size = int(frames.shape[1])
  if frames.ndim != 4 or frames.shape[1:] != (size, size, 3) or seg.shape != frames.shape[:3]:
    raise ValueError(f"tower pretraining frames {frames.shape} / seg {seg.shape}: expected square frames "
                     "[N, S, S, 3] and labels [N, S, S]")
  if int(seg.max()) >= num_classes:
    raise ValueError(f"tower pretraining labels: expected classes < {num_classes}, got {int(seg.max())}")
  patch = int((model.img_config.get("patch_size") or vit.get_variant(model.img_config["variant"])["patch_size"])[0])
  decoder = PixelDecoder(patch=patch, grid=size // patch, num_classes=num_classes)
  n_val = max(1, len(frames) // 10)
  val_x, val_y = jnp.asarray(frames[:n_val]), jnp.asarray(seg[:n_val])
  train_x, train_y = jnp.asarray(frames[n_val:]), jnp.asarray(seg[n_val:])
  weights = jnp.asarray(class_weights(seg[n_val:], num_classes))
  key = jax.random.PRNGKey(int(config.seed))
  tokens0 = model.apply({"params": params}, preprocess.images(train_x[:1], size), method=paligemma.Model.embed_image)
  dec_params = decoder.init(key, tokens0)["params"]
  trainable = {"img": params["img"], "decoder": dec_params}
  steps, batch = int(config.steps), int(config.batch_size)
  opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, float(config.lr), min(100, steps // 10 + 1), steps,
                                                       float(config.lr) * 0.05), weight_decay=1e-4)

  def logits_of(tr, images):
    full = dict(params, img=tr["img"])
    tokens = model.apply({"params": full}, images, method=paligemma.Model.embed_image)
    return decoder.apply({"params": tr["decoder"]}, tokens)

  def loss_fn(tr, images, labels):
    logp = jax.nn.log_softmax(logits_of(tr, images), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    w = weights[labels.astype(jnp.int32)]
    return jnp.sum(nll * w) / jnp.sum(w)

  def step(carry, k):
    tr, opt_state = carry
    k_idx, k_aug = jax.random.split(k)
    idx = jax.random.randint(k_idx, (batch,), 0, train_x.shape[0])
    images = _jitter(preprocess.images(train_x[idx], size), k_aug)
    loss, grads = jax.value_and_grad(loss_fn)(tr, images, train_y[idx])
    updates, opt_state = opt.update(grads, opt_state, tr)
    return (optax.apply_updates(tr, updates), opt_state), loss

  chunk = max(1, min(steps, 100))
  run = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys))
  carry, losses = (trainable, opt.init(trainable)), []
  keys = jax.random.split(jax.random.fold_in(key, 1), steps)
  bar = tqdm.tqdm(total=steps, desc="pretrain image tower", unit="step", disable=not progress, mininterval=2.0)
  for start in range(0, steps, chunk):
    ks = keys[start:start + chunk]
    if len(ks) < chunk:  # one compiled shape: pad the last chunk with extra steps' keys
      ks = jnp.concatenate([ks, jax.random.split(ks[-1], chunk - len(ks))])[:chunk]
    carry, l = run(carry, ks)
    losses.append(np.asarray(l))
    bar.update(min(chunk, steps - start))
    bar.set_postfix(loss=f"{float(l[-1]):.3f}")
  bar.close()
  trained = carry[0]
  pred = jax.jit(lambda tr, x: jnp.argmax(logits_of(tr, preprocess.images(x, size)), -1))(trained, val_x)
  fg = np.asarray(val_y) > 1  # objects and end effector, not background / static scene
  accuracy = float((np.asarray(pred) == np.asarray(val_y))[fg].mean()) if fg.any() else float("nan")
  return dict(params, img=trained["img"]), np.concatenate(losses)[:steps], accuracy
