"""PaliGemma-style VLM: SigLIP image tokens + text tokens into a Gemma prefix-LM.

Sequence layout per example: [image_1 tokens, ..., image_N tokens, text tokens]. Text carries two masks, as in
big_vision: `input_mask` (1 = real token, 0 = padding) and `mask_ar` (0 = prefix, attended bidirectionally; 1 =
answer, causal). Image tokens are always prefix.

Public calls (all via `model.apply(params, ..., method=...)`):
  embed_image(images)                          -> [B, N*P, D]   share one encoding across several prompts
  embed_text(tokens)                           -> [B, T, D]
  __call__(images, text, mask_ar, input_mask, image_embeds=, logits_at=)  -> text logits
  prefill(images, text, mask_ar, input_mask, image_embeds=, cache_size=)  -> (last logits, cache)
  extend(cache, tokens, input_mask, logits_at=)                            -> (logits, cache)
  query(cache, tokens [B,Q,T], input_mask, logits_at=)  -> logits [B,Q,J,V]: Q independent causal continuations
                                                           of one prefilled prefix, in one pass (reward scoring)
`load` / `save` read and write big_vision `.npz` checkpoints.
"""
from typing import Any, Mapping, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from lrm_jax.models import checkpoint, gemma, vit

# Released configurations (reference: shared/reference/paligemma_params.md) and tiny CPU ones.
VARIANTS = {
    "paligemma_3b": dict(img=dict(variant="So400m/14"), llm=dict(variant="gemma_2b")),
    "paligemma2_3b": dict(img=dict(variant="So400m/14"), llm=dict(variant="gemma2_2b")),
    "tiny": dict(img=dict(variant="mu/8"), llm=dict(variant="gemma_tiny", vocab_size=256)),
    "tiny2": dict(img=dict(variant="mu/8"), llm=dict(variant="gemma2_tiny", vocab_size=256)),
}


def get_config(variant: str = "tiny", img: Optional[Mapping] = None, llm: Optional[Mapping] = None) -> dict:
  """Model kwargs for a variant; `img` / `llm` override fields of the towers (e.g. llm=dict(depth=1))."""
  if variant not in VARIANTS:
    raise ValueError(f"PaliGemma variant {variant!r}: expected one of {sorted(VARIANTS)}")
  base = VARIANTS[variant]
  # Frozen so the Module is hashable (it is a static argument of jitted decoding).
  return dict(img_config=flax.core.FrozenDict({**base["img"], **(img or {})}),
              llm_config=flax.core.FrozenDict({**base["llm"], **(llm or {})}))


def from_config(cfg) -> "Model":
  """Model from a config block: variant, dtype ("float32"/"bfloat16"), remat, scan_unroll (0 = fully unrolled)."""
  unroll = cfg.get("scan_unroll", 1)
  tower = dict(remat=bool(cfg.get("remat", False)), scan_unroll=True if unroll == 0 else int(unroll))
  return Model(**get_config(cfg.get("variant", "tiny"), img={**tower, **cfg.get("img", {})},
                            llm={**tower, **cfg.get("llm", {})}), dtype=jnp.dtype(cfg.get("dtype", "float32")))


def make_attn_mask(input_mask, mask_ar):
  """[B, T] masks -> [B, T, T] bool. Token i sees j iff both are real and cumsum(ar)[j] <= cumsum(ar)[i].

  A run of ar=0 tokens shares one cumsum value (a bidirectional block); each ar=1 token starts a new value, so it
  sees everything before it but nothing after it.
  """
  cum = jnp.cumsum(mask_ar, axis=1)
  causal = cum[:, None, :] <= cum[:, :, None]
  valid = input_mask[:, None, :].astype(bool) & input_mask[:, :, None].astype(bool)
  return causal & valid


def _check(name, x, ndim):
  if x.ndim != ndim:
    raise ValueError(f"{name}: expected {ndim} dims, got shape {x.shape}")


class Model(nn.Module):
  img_config: Mapping = flax.core.FrozenDict(VARIANTS["tiny"]["img"])
  llm_config: Mapping = flax.core.FrozenDict(VARIANTS["tiny"]["llm"])
  dtype: Any = jnp.float32

  def setup(self):
    llm_cfg = dict(self.llm_config)
    self.llm = gemma.Model(**gemma.get_config(llm_cfg.pop("variant", "gemma_tiny"), **llm_cfg), dtype=self.dtype)
    img_cfg = dict(self.img_config)
    img_kw = vit.get_variant(img_cfg.pop("variant", "mu/8"))
    img_kw.update(img_cfg)
    self.img = vit.Model(num_classes=self.llm.width, **img_kw, dtype=self.dtype)

  # ---- embeddings -------------------------------------------------------------------------------------------
  def embed_image(self, images):
    """[B, H, W, 3] or [B, N, H, W, 3] in [-1, 1] -> [B, N*P, D] image tokens (not scaled by sqrt(width))."""
    if images.ndim == 4:
      images = images[:, None]
    _check("images", images, 5)
    b, n = images.shape[:2]
    x = self.img(images.reshape(b * n, *images.shape[2:]))
    return x.reshape(b, n * x.shape[1], x.shape[2])

  def embed_text(self, tokens):
    _check("text", tokens, 2)
    return self.llm.embed_tokens(tokens)

  def _prefix_inputs(self, images, text, mask_ar, input_mask, image_embeds):
    if image_embeds is None:
      if images is None:
        raise ValueError("give images or image_embeds")
      image_embeds = self.embed_image(images)
    _check("image_embeds", image_embeds, 3)
    _check("mask_ar", mask_ar, 2)
    if input_mask is None:
      input_mask = jnp.ones_like(text, dtype=bool)
    b, p = image_embeds.shape[:2]
    x = jnp.concatenate([image_embeds.astype(self.dtype), self.embed_text(text)], axis=1)
    full_mask = jnp.concatenate([jnp.ones((b, p), bool), input_mask.astype(bool)], axis=1)
    full_ar = jnp.concatenate([jnp.zeros((b, p), jnp.int32), mask_ar.astype(jnp.int32)], axis=1)
    positions = jnp.cumsum(full_mask, axis=1) - 1  # padding does not advance positions
    return x, full_mask, full_ar, positions, p

  # ---- full forward -----------------------------------------------------------------------------------------
  def __call__(self, images, text, mask_ar, input_mask=None, *, image_embeds=None, logits_at=None, train=False):
    """Logits for the text part: [B, T, V] float32, or [B, J, V] at `logits_at` ([B, J] indices into text).

    Pass `image_embeds` (from `embed_image`) instead of images to reuse one image encoding for several prompts.
    Logits at text position t predict text token t+1.
    """
    del train  # no dropout in this model
    x, full_mask, full_ar, positions, p = self._prefix_inputs(images, text, mask_ar, input_mask, image_embeds)
    mask = make_attn_mask(full_mask, full_ar)
    at = jnp.broadcast_to(jnp.arange(text.shape[1]), text.shape) if logits_at is None else logits_at
    logits, _ = self.llm(x, positions, mask, logits_at=at + p)
    return logits

  # ---- KV-cache decoding --------------------------------------------------------------------------------------
  def prefill(self, images, text, mask_ar, input_mask=None, *, image_embeds=None, cache_size: int):
    """Runs [images, text] once, fills a KV cache of `cache_size` slots, returns (logits [B,V] at each example's
    last real text token, cache). Cache: k, v [L,B,S,K,H]; mask [B,S] real slots; end (slots written); pos [B]
    (next position id)."""
    x, full_mask, full_ar, positions, p = self._prefix_inputs(images, text, mask_ar, input_mask, image_embeds)
    b, t = full_mask.shape
    if cache_size < t:
      raise ValueError(f"cache_size={cache_size} is smaller than the prefill length {t}")
    mask = jnp.pad(make_attn_mask(full_mask, full_ar), ((0, 0), (0, 0), (0, cache_size - t)))
    kv = self.llm.init_cache(b, cache_size)
    last = jnp.max(jnp.where(full_mask, jnp.arange(t)[None], 0), axis=1)
    slot_mask = jnp.pad(full_mask, ((0, 0), (0, cache_size - t)))
    logits, kv = self.llm(x, positions, mask, kv, 0, logits_at=last[:, None],
                          key_positions=jnp.cumsum(slot_mask, axis=1) - 1)
    cache = dict(kv, mask=slot_mask, end=jnp.asarray(t, jnp.int32),
                 pos=jnp.sum(full_mask, axis=1).astype(jnp.int32))
    return logits[:, 0], cache

  def extend(self, cache, tokens, input_mask=None, *, logits_at=None):
    """Appends `tokens` [B,T] (answer tokens: causal among themselves, seeing every real cached slot).

    Returns (logits [B,T,V] or at `logits_at`, new cache). Tile a prefilled cache along batch to score several
    suffixes against one shared prefix.
    """
    _check("tokens", tokens, 2)
    b, t = tokens.shape
    if input_mask is None:
      input_mask = jnp.ones((b, t), bool)
    s = cache["mask"].shape[1]
    end = cache["end"]
    slot_mask = jax.lax.dynamic_update_slice_in_dim(cache["mask"], input_mask.astype(bool), end, axis=1)
    q_slot = end + jnp.arange(t)
    mask = slot_mask[:, None, :] & (jnp.arange(s)[None, None, :] <= q_slot[None, :, None])
    positions = cache["pos"][:, None] + jnp.cumsum(input_mask, axis=1) - 1
    at = jnp.broadcast_to(jnp.arange(t), (b, t)) if logits_at is None else logits_at
    logits, kv = self.llm(self.embed_text(tokens), positions, mask, dict(k=cache["k"], v=cache["v"]), end,
                          logits_at=at, key_positions=jnp.cumsum(slot_mask, axis=1) - 1)
    new = dict(kv, mask=slot_mask, end=end + t, pos=cache["pos"] + jnp.sum(input_mask, axis=1).astype(jnp.int32))
    return logits, new


  def query(self, cache, tokens, input_mask=None, *, logits_at):
    """Runs Q independent continuations of one prefilled prefix side by side, in one pass over Q*T tokens.

    tokens [B,Q,T] (right-padded, `input_mask` [B,Q,T]); each continuation is causal within itself, sees every real
    cached slot and nothing of the other continuations, and is positioned right after the prefix, so query q gives
    the same logits as `extend(cache, tokens[:, q])` would. The cache needs Q*T free slots after `end` (prefill
    with cache_size = prefix + Q*T); it is not returned (scoring only reads logits). logits_at [B,Q,J] indexes T.
    Sharing one prefix this way is what lets several questions about the same frames cost little more than one:
    the image tokens and the shared text go through the LLM once, with no copy of the cache per question.
    """
    if tokens.ndim != 3:
      raise ValueError(f"tokens: expected [batch, queries, length], got shape {tokens.shape}")
    b, q, t = tokens.shape
    if input_mask is None:
      input_mask = jnp.ones((b, q, t), bool)
    s, end = cache["mask"].shape[1], cache["end"]
    if s < q * t:
      raise ValueError(f"cache has {s} slots; {q} queries of {t} tokens need {q * t} after the prefix")
    real = input_mask.astype(bool).reshape(b, q * t)
    qid, tid = jnp.repeat(jnp.arange(q), t), jnp.tile(jnp.arange(t), q)
    own = (qid[:, None] == qid[None, :]) & (tid[None, :] <= tid[:, None])  # [QT, QT] causal within a query
    new = own[None] & real[:, None, :]
    prefix = cache["mask"] & (jnp.arange(s)[None] < end)  # real cached slots
    mask = jax.lax.dynamic_update_slice(jnp.broadcast_to(prefix[:, None, :], (b, q * t, s)), new, (0, 0, end))
    positions = (cache["pos"][:, None, None] + jnp.cumsum(input_mask, axis=2) - 1).reshape(b, q * t)
    key_positions = jax.lax.dynamic_update_slice(jnp.cumsum(cache["mask"], axis=1) - 1, positions, (0, end))
    at = (logits_at + (jnp.arange(q) * t)[None, :, None]).reshape(b, -1)
    logits, _ = self.llm(self.embed_text(tokens.reshape(b, q * t)), positions, mask,
                         dict(k=cache["k"], v=cache["v"]), end, logits_at=at, key_positions=key_positions)
    return logits.reshape(b, q, logits_at.shape[-1], -1)


# ---- checkpoints ----------------------------------------------------------------------------------------------
def init_shapes(model: Model, image_size: int, num_images: int = 1, text_len: int = 8):
  """Abstract (ShapeDtypeStruct) params via jax.eval_shape: no memory used, works for the 3B configs."""
  images = jax.ShapeDtypeStruct((1, num_images, image_size, image_size, 3), jnp.float32)
  text = jax.ShapeDtypeStruct((1, text_len), jnp.int32)
  boxed = jax.eval_shape(lambda i, t: model.init(jax.random.PRNGKey(0), i, t, t), images, text)
  return boxed["params"]


def init(model: Model, rng, image_size: int, num_images: int = 1):
  """Random params (plain arrays) for a model at an image resolution."""
  images = jnp.zeros((1, num_images, image_size, image_size, 3), jnp.float32)
  text = jnp.zeros((1, 4), jnp.int32)
  return nn.meta.unbox(jax.jit(model.init)(rng, images, text, text)["params"])


def load(path: str, model: Optional[Model] = None, image_size: Optional[int] = None, dtype=None) -> dict:
  """Reads a big_vision PaliGemma `.npz` (keys `params/img/...`, `params/llm/...`) into a param tree.

  bf16 stored as void `V2` is reinterpreted; `dtype` casts every array (None keeps stored dtypes). With `model`
  and `image_size`, the position embedding is resampled to the model's token grid and padded vocabulary rows
  (e.g. 256128-row Gemma embedders) are trimmed to `vocab_size`. Without them the tree is returned as stored.
  """
  params = checkpoint.load_npz(path, dtype=dtype)
  if set(params) != {"img", "llm"}:
    raise ValueError(f"{path}: expected top-level keys img and llm under params/, got {sorted(params)}")
  if model is not None:
    if image_size is None:
      raise ValueError("load: give image_size together with model")
    ref = nn.meta.unbox(init_shapes(model, image_size))
    n_tok = ref["img"]["pos_embedding"].shape[1]
    params["img"]["pos_embedding"] = vit.resample_posemb(params["img"]["pos_embedding"], n_tok)
    vocab = model.llm_config.get("vocab_size", 257_152)
    emb = params["llm"]["embedder"]["input_embedding"]
    if emb.shape[0] < vocab:
      raise ValueError(f"{path}: embedder has {emb.shape[0]} rows, model expects vocab_size={vocab}")
    params["llm"]["embedder"]["input_embedding"] = emb[:vocab]
    checkpoint.check_tree(params, ref, what=path)
  return params


def save(path: str, params: dict, dtype=None) -> None:
  """Writes params as a big_vision `.npz` (bfloat16 as void `V2`), atomically."""
  checkpoint.save_npz(path, nn.meta.unbox(params), dtype=dtype)
