"""Gemma 1 / Gemma 2 decoder in Flax linen, parameter names as in big_vision / gemma checkpoints.

Axis letters in einsums: B batch, T query length, S key length, D width, N query heads, K kv heads, G query heads
per kv head, H head dim, F mlp dim, V vocab, L layers, C the stacked k/v (or gate/up) pair.

Layers are one `nn.scan` over `Block`, so every layer weight has a leading depth axis, exactly as released
checkpoints store them. `scan_unroll=depth` makes XLA see straight-line code without changing the parameter tree.
The KV cache is an explicit pytree (not a mutable collection) so callers can tile, slice and reuse it freely.
"""
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_NEG_INF = -2.3819763e38  # big finite negative: fully-masked rows (padding) give uniform, not NaN, probabilities.

# Known sizes. Tiny ones exist for CPU tests and benchmarks. vocab 257152 = 256000 text + 1024 loc + 128 seg.
VARIANTS = {
    "gemma_2b": dict(width=2048, depth=18, mlp_dim=16384, num_heads=8, num_kv_heads=1, head_dim=256),
    "gemma2_2b": dict(width=2304, depth=26, mlp_dim=9216, num_heads=8, num_kv_heads=4, head_dim=256,
                      post_norms=True, attn_logits_softcap=50.0, final_logits_softcap=30.0, sliding_window=4096),
    "gemma_tiny": dict(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=16),
    "gemma2_tiny": dict(width=32, depth=2, mlp_dim=64, num_heads=4, num_kv_heads=2, head_dim=8,
                        post_norms=True, attn_logits_softcap=50.0, final_logits_softcap=30.0),
}


def get_config(variant: str = "gemma_tiny", **overrides) -> dict:
  """Keyword arguments for `Model`: a known variant's sizes, then `overrides` (e.g. vocab_size, depth)."""
  if variant not in VARIANTS:
    raise ValueError(f"Gemma variant {variant!r}: expected one of {sorted(VARIANTS)}")
  cfg = dict(VARIANTS[variant])
  unknown = set(overrides) - set(Model.__dataclass_fields__)
  if unknown:
    raise ValueError(f"Gemma config: unknown keys {sorted(unknown)}")
  cfg.update(overrides)
  return cfg


def _param(module, name, init, shape, names, dtype=jnp.float32):
  """A parameter annotated with logical axis names (used by sharding.py's `logical` strategy)."""
  return module.param(name, nn.with_logical_partitioning(init, names), shape, dtype)


def rope_sin_cos(positions, head_dim, max_wavelength=10_000):
  """sin and cos of the rotary angles, [B, T, 1, H/2]; computed once per call, shared by every layer."""
  timescale = max_wavelength ** (2 * jnp.arange(head_dim // 2, dtype=jnp.float32) / head_dim)
  angle = positions[..., None, None].astype(jnp.float32) / timescale
  return jnp.sin(angle), jnp.cos(angle)


def apply_rope(x, sin_cos):
  """Rotary embedding on split halves. x [B, T, heads, H]; sin_cos from `rope_sin_cos`."""
  sin, cos = sin_cos
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


class RMSNorm(nn.Module):
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x):
    scale = _param(self, "scale", nn.initializers.zeros_init(), (x.shape[-1],), ("norm",))
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
    return (y * (1 + scale)).astype(x.dtype)  # Gemma scales by (1 + scale): zero-init is identity.


class Einsum(nn.Module):
  """One weight `w` used in an einsum; the module exists so the checkpoint path is `<name>/w`."""
  shape: tuple
  names: tuple

  @nn.compact
  def __call__(self, eqn=None, x=None):
    w = _param(self, "w", nn.initializers.lecun_normal(in_axis=-2, out_axis=-1), self.shape, self.names)
    return w if x is None else jnp.einsum(eqn, x, w.astype(x.dtype))


class Attention(nn.Module):
  num_heads: int
  num_kv_heads: int
  head_dim: int
  query_scale: float
  attn_logits_softcap: Optional[float] = None

  @nn.compact
  def __call__(self, x, sin_cos, mask, kv=None, write_index=None):
    """x [B,T,D]; sin_cos: rotary tables for the T positions; mask [B,T,S] (S = T without a cache, else the
    cache length); kv: this layer's (k, v) cache."""
    d = x.shape[-1]
    n, k_, h = self.num_heads, self.num_kv_heads, self.head_dim
    w_q = Einsum((n, d, h), ("q_heads", "embed", "head_dim"), name="q_einsum")()
    w_kv = Einsum((2, k_, d, h), (None, "kv_heads", "embed", "head_dim"), name="kv_einsum")()
    # q, k and v in one matmul against the stacked [N + 2K, D, H] weights (one larger GEMM beats three on CPU).
    w = jnp.concatenate([w_q, w_kv.reshape(2 * k_, d, h)], axis=0).astype(x.dtype)
    qkv = jnp.einsum("BTD,MDH->BTMH", x, w)
    q, k, v = qkv[:, :, :n], qkv[:, :, n:n + k_], qkv[:, :, n + k_:]
    q = apply_rope(q, sin_cos) * self.query_scale
    k = apply_rope(k, sin_cos)
    if kv is not None:  # Write this block's keys/values at `write_index` and attend over the whole cache.
      k = jax.lax.dynamic_update_slice_in_dim(kv[0], k.astype(kv[0].dtype), write_index, axis=1)
      v = jax.lax.dynamic_update_slice_in_dim(kv[1], v.astype(kv[1].dtype), write_index, axis=1)
      new_kv = (k, v)
    else:
      new_kv = None
    b, t = q.shape[:2]
    q = q.reshape(b, t, k_, n // k_, h)
    # Attention logits and softmax in float32 whatever the compute dtype.
    logits = jnp.einsum("BTKGH,BSKH->BKGTS", q, k.astype(q.dtype), preferred_element_type=jnp.float32)
    if self.attn_logits_softcap:
      logits = jnp.tanh(logits / self.attn_logits_softcap) * self.attn_logits_softcap
    logits = jnp.where(mask[:, None, None, :, :], logits, _NEG_INF)
    probs = jax.nn.softmax(logits, axis=-1).astype(x.dtype)
    enc = jnp.einsum("BKGTS,BSKH->BTKGH", probs, v.astype(x.dtype)).reshape(b, t, n, h)
    out = Einsum((n, h, d), ("q_heads", "head_dim", "embed"), name="attn_vec_einsum")("BTNH,NHD->BTD", enc)
    return out, new_kv


class FeedForward(nn.Module):
  """GeGLU: gelu_tanh(x W_gate) * (x W_up), then W_down. Gate and up are stacked in `gating_einsum`."""
  mlp_dim: int

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    init = nn.initializers.lecun_normal(in_axis=-2, out_axis=-1)
    w_gu = _param(self, "gating_einsum", init, (2, d, self.mlp_dim), (None, "embed", "mlp"))
    w_down = _param(self, "linear", init, (self.mlp_dim, d), ("mlp", "embed"))
    # One GEMM against [D, 2F] (gate | up side by side): the output stays in x's layout, so splitting it is a
    # free slice inside the GeGLU fusion, where "BTD,CDF->CBTF" costs a transposed copy of the activations.
    w = jnp.concatenate([w_gu[0], w_gu[1]], axis=-1).astype(x.dtype)
    gate, up = jnp.split(jnp.einsum("BTD,DF->BTF", x, w), 2, axis=-1)
    y = nn.gelu(gate, approximate=True) * up
    y = nn.with_logical_constraint(y, ("act_batch", "act_len", "act_mlp"))
    return jnp.einsum("BTF,FD->BTD", y, w_down.astype(x.dtype))


class Block(nn.Module):
  """One decoder layer; signature fits `nn.scan`: (x, kv) -> (x, new_kv), the rest broadcast."""
  num_heads: int
  num_kv_heads: int
  head_dim: int
  mlp_dim: int
  query_scale: float
  post_norms: bool = False
  attn_logits_softcap: Optional[float] = None

  @nn.compact
  def __call__(self, x, kv, is_local, sin_cos, mask, write_index):
    if isinstance(mask, tuple):  # (global, sliding-window) masks; Gemma 2 alternates local and global layers
      mask = jnp.where(is_local, mask[1], mask[0])
    y = RMSNorm(name="pre_attention_norm")(x)
    y, new_kv = Attention(self.num_heads, self.num_kv_heads, self.head_dim, self.query_scale,
                          self.attn_logits_softcap, name="attn")(y, sin_cos, mask, kv, write_index)
    if self.post_norms:
      y = RMSNorm(name="post_attention_norm")(y)
    x = x + y
    y = RMSNorm(name="pre_ffw_norm")(x)
    y = FeedForward(self.mlp_dim, name="mlp")(y)
    if self.post_norms:
      y = RMSNorm(name="post_ffw_norm")(y)
    x = nn.with_logical_constraint(x + y, ("act_batch", "act_len", "act_embed"))
    return x, new_kv


class Model(nn.Module):
  """Gemma decoder over already-embedded inputs (so image and text tokens can be mixed by the caller)."""
  vocab_size: int = 257_152
  width: int = 32
  depth: int = 2
  mlp_dim: int = 64
  num_heads: int = 2
  num_kv_heads: int = 1
  head_dim: int = 16
  post_norms: bool = False  # Gemma 2: RMSNorm after attention and after the MLP too.
  attn_logits_softcap: Optional[float] = None  # Gemma 2: 50.0
  final_logits_softcap: Optional[float] = None  # Gemma 2: 30.0
  query_pre_attn_norm: str = "rsqrt_head_dim"  # or "rsqrt_emb_per_head" (Gemma 2 27B)
  # Gemma 2: even layers (0, 2, ...) attend only to tokens less than this many positions away.
  sliding_window: Optional[int] = None
  scan_unroll: int = 1
  remat: bool = False
  dtype: Any = jnp.float32  # compute dtype; parameters stay as stored.

  def setup(self):
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
    if self.query_pre_attn_norm == "rsqrt_head_dim":
      qs = self.head_dim ** -0.5
    elif self.query_pre_attn_norm == "rsqrt_emb_per_head":
      qs = (self.width // self.num_heads) ** -0.5
    else:
      raise ValueError(f"query_pre_attn_norm={self.query_pre_attn_norm!r}: expected rsqrt_head_dim or "
                       "rsqrt_emb_per_head")
    self.embedder = Embedder(self.vocab_size, self.width)
    block = Block
    if self.remat:
      block = nn.remat(block, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable)
    self.layers = nn.scan(
        block, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.depth,
        in_axes=(0, 0, nn.broadcast, nn.broadcast, nn.broadcast), unroll=self.scan_unroll,
        metadata_params={nn.PARTITION_NAME: "layers"})(
            self.num_heads, self.num_kv_heads, self.head_dim, self.mlp_dim, qs, self.post_norms,
            self.attn_logits_softcap)
    self.final_norm = RMSNorm()

  def embed_tokens(self, tokens):
    """Text token embeddings, scaled by sqrt(width) (image tokens are not)."""
    return self.embedder.encode(tokens).astype(self.dtype)

  def __call__(self, x, positions, mask, kv_cache=None, write_index=None, logits_at=None, key_positions=None):
    """x [B,T,D] embedded inputs, positions [B,T], mask [B,T,S] bool (True = may attend).

    kv_cache: None, or dict(k=[L,B,S,K,H], v=...) written at `write_index` (then S is the cache length).
    logits_at: optional [B,J] indices into T; logits only there (skips the vocab matmul elsewhere).
    key_positions: [B,S] position of every key slot (needed with a cache and a sliding window; default positions).
    Returns (logits [B,T or J,V] float32, new kv_cache or None).
    """
    x = x.astype(self.dtype)
    kv = None if kv_cache is None else (kv_cache["k"], kv_cache["v"])
    if self.sliding_window:
      kp = positions if key_positions is None else key_positions
      near = jnp.abs(positions[:, :, None] - kp[:, None, :]) < self.sliding_window
      mask = (mask, mask & near)
    is_local = jnp.arange(self.depth) % 2 == 0
    x, new_kv = self.layers(x, kv, is_local, rope_sin_cos(positions, self.head_dim), mask, write_index)
    x = self.final_norm(x)
    if logits_at is not None:
      x = jnp.take_along_axis(x, logits_at[..., None], axis=1)
    logits = self.embedder.decode(x)
    if self.final_logits_softcap:
      logits = jnp.tanh(logits / self.final_logits_softcap) * self.final_logits_softcap
    new_cache = None if new_kv is None else dict(k=new_kv[0], v=new_kv[1])
    return logits, new_cache

  def init_cache(self, batch_size, cache_size, dtype=None):
    """Zeros for the per-layer keys and values (a plain function of the config, no parameters needed)."""
    shape = (self.depth, batch_size, cache_size, self.num_kv_heads, self.head_dim)
    dtype = dtype or self.dtype
    return dict(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype))


class Embedder(nn.Module):
  vocab_size: int
  width: int

  def setup(self):
    # Scaled so that embedding * sqrt(width) has unit-size entries (released checkpoints override this anyway).
    self.input_embedding = _param(self, "input_embedding", nn.initializers.normal(stddev=self.width ** -0.5),
                                  (self.vocab_size, self.width), ("vocab", "embed"))

  def encode(self, tokens):
    return self.input_embedding[tokens] * np.sqrt(self.width).astype(np.float32)

  def decode(self, x):
    # Tied output projection; float32 logits.
    return jnp.einsum("BTD,VD->BTV", x, self.input_embedding.astype(x.dtype),
                      preferred_element_type=jnp.float32)
