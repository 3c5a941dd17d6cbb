"""Reward-model (PaliGemma-style VLM) config: `--config=configs/models/paligemma.py:variant=paligemma_3b,res=224`.

Sweepable args: variant (tiny, tiny2, paligemma_3b, paligemma2_3b), res (image size), images (frames per
example), ckpt (big_vision .npz; empty = random init), tokenizer (SentencePiece .model; empty = the shipped small
one), dtype (compute dtype), remat, unroll (layer-scan unroll factor; 0 = fully unrolled; 1, the default, measured
fastest on CPU, see bench/RESULTS.md).
Build the model with `lrm_jax.models.paligemma.from_config(config.model)`.
"""
import ml_collections

from lrm_jax.utils.config_args import parse_arg


def get_config(arg=None):
  a = parse_arg(arg, variant="tiny", res=16, images=2, ckpt="", tokenizer="", dtype="float32", remat=False,
                unroll=1)
  c = ml_collections.ConfigDict()
  c.model = dict(variant=a.variant, dtype=a.dtype, remat=a.remat, scan_unroll=a.unroll)
  c.image_size = a.res
  c.num_images = a.images
  c.ckpt = a.ckpt
  c.tokenizer = a.tokenizer
  return c
