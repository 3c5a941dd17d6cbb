"""SigLIP ViT image encoder (no CLS token, no pooling head), parameter names as in big_vision checkpoints.

The layer stack is one `nn.scan` over a single `encoderblock`, so parameters carry a leading depth axis exactly as
released checkpoints store them; `scan_unroll` only changes how XLA lays the loop out, never the parameter tree.
"""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# name -> (width, depth, mlp_dim, num_heads). Tiny ones exist for CPU tests and benchmarks.
VARIANTS = {
    "mu": (32, 1, 64, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
}


def get_variant(variant: str) -> dict:
  """"So400m/14" -> dict(width=..., depth=..., mlp_dim=..., num_heads=..., patch_size=(14, 14))."""
  name, _, patch = variant.partition("/")
  if name not in VARIANTS or not patch.isdigit():
    raise ValueError(f"ViT variant {variant!r}: expected '<name>/<patch>' with name in {sorted(VARIANTS)}")
  width, depth, mlp_dim, heads = VARIANTS[name]
  p = int(patch)
  return dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, patch_size=(p, p))


def resample_posemb(posemb: np.ndarray, num_tokens: int) -> np.ndarray:
  """Bilinearly resizes a (1, n*n, D) learned position grid to (1, num_tokens, D) (both square grids)."""
  old = int(round(np.sqrt(posemb.shape[1])))
  new = int(round(np.sqrt(num_tokens)))
  if old * old != posemb.shape[1] or new * new != num_tokens:
    raise ValueError(f"pos_embedding: expected square token grids, got {posemb.shape[1]} -> {num_tokens}")
  if old == new:
    return posemb
  grid = jnp.asarray(posemb, jnp.float32).reshape(1, old, old, -1)
  grid = jax.image.resize(grid, (1, new, new, grid.shape[-1]), method="bilinear", antialias=False)
  return np.asarray(grid.reshape(1, new * new, -1)).astype(posemb.dtype)


class _Proj(nn.Module):
  """Holds one projection's kernel and bias under `<name>/{kernel,bias}` (checkpoint names); no compute."""
  kernel_shape: tuple
  bias_shape: tuple
  in_axis: tuple  # kernel axes that are fan-in (for the initializer)

  @nn.compact
  def __call__(self):
    out_axis = tuple(i for i in range(len(self.kernel_shape)) if i not in self.in_axis)
    init = nn.initializers.lecun_normal(in_axis=self.in_axis, out_axis=out_axis)
    return self.param("kernel", init, self.kernel_shape), self.param("bias", nn.initializers.zeros_init(),
                                                                     self.bias_shape)


class Attention(nn.Module):
  """Multi-head self-attention with big_vision's parameter names (query/key/value/out, kernel/bias).

  The three input projections run as one matmul against their concatenated kernels (one larger GEMM beats three
  small ones on CPU); logits and softmax in float32. Axis letters: B batch, T/S query/key tokens, D width, N heads,
  H head dim, M = 3N stacked q/k/v heads.
  """
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    n = self.num_heads
    h = d // n
    if n * h != d:
      raise ValueError(f"ViT width {d} is not divisible by num_heads={n}")
    ws, bs = zip(*[_Proj((d, n, h), (n, h), (0,), name=nm)() for nm in ("query", "key", "value")])
    w = jnp.concatenate(ws, axis=1).astype(self.dtype)  # [D, 3N, H]
    b = jnp.concatenate(bs, axis=0).astype(self.dtype)  # [3N, H]
    qkv = jnp.einsum("BTD,DMH->BTMH", x, w) + b
    q, k, v = jnp.split(qkv, 3, axis=2)
    logits = jnp.einsum("BTNH,BSNH->BNTS", q * (h ** -0.5), k, preferred_element_type=jnp.float32)
    probs = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    enc = jnp.einsum("BNTS,BSNH->BTNH", probs, v)
    wo, bo = _Proj((n, h, d), (d,), (0, 1), name="out")()
    return jnp.einsum("BTNH,NHD->BTD", enc, wo.astype(self.dtype)) + bo.astype(self.dtype)


class MlpBlock(nn.Module):
  mlp_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    x = nn.Dense(self.mlp_dim, dtype=self.dtype, name="Dense_0")(x)
    x = nn.gelu(x, approximate=True)  # SigLIP uses tanh-approximate GELU.
    return nn.Dense(d, dtype=self.dtype, name="Dense_1")(x)


class Encoder1DBlock(nn.Module):
  """Pre-LN transformer block. Signature fits `nn.scan`: (carry, _) -> (carry, None)."""
  mlp_dim: int
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, _):
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="LayerNorm_0")(x)
    y = Attention(self.num_heads, self.dtype, name="MultiHeadDotProductAttention_0")(y)
    x = x + y
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="LayerNorm_1")(x)
    x = x + MlpBlock(self.mlp_dim, self.dtype, name="MlpBlock_0")(y)
    x = nn.with_logical_constraint(x, ("act_batch", "act_len", "act_embed"))
    return x, None


class Encoder(nn.Module):
  depth: int
  mlp_dim: int
  num_heads: int
  scan_unroll: int = 1
  remat: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    block = Encoder1DBlock
    if self.remat:
      block = nn.remat(block, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable)
    stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True},
                    length=self.depth, unroll=self.scan_unroll,
                    metadata_params={nn.PARTITION_NAME: "layers"})
    x, _ = stack(self.mlp_dim, self.num_heads, self.dtype, name="encoderblock")(x, None)
    return nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="encoder_norm")(x)


class Model(nn.Module):
  """images [B, H, W, 3] in [-1, 1] -> tokens [B, (H/p)*(W/p), num_classes] (after the linear `head`)."""
  num_classes: Optional[int] = None  # LLM width; None keeps ViT width and has no head.
  width: int = 32
  depth: int = 1
  mlp_dim: int = 64
  num_heads: int = 2
  patch_size: Sequence[int] = (8, 8)
  scan_unroll: int = 1
  remat: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, image):
    if image.ndim != 4 or image.shape[-1] != 3:
      raise ValueError(f"image: expected [batch, height, width, 3], got shape {image.shape}")
    x = nn.Conv(self.width, tuple(self.patch_size), strides=tuple(self.patch_size), padding="VALID",
                dtype=self.dtype, name="embedding")(image.astype(self.dtype))
    b, h, w, d = x.shape
    x = x.reshape(b, h * w, d)
    posemb = self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(d)), (1, h * w, d),
                        jnp.float32)
    if posemb.shape[1] != h * w:
      raise ValueError(f"pos_embedding has {posemb.shape[1]} tokens but the image gives {h * w}; "
                       "resample it with vit.resample_posemb (paligemma.load does this)")
    x = x + posemb.astype(self.dtype)
    x = Encoder(self.depth, self.mlp_dim, self.num_heads, self.scan_unroll, self.remat, self.dtype,
                name="Transformer")(x)
    if self.num_classes:
      x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
    return x
