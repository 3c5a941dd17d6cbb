"""VLM-RM-style baseline reward: cosine similarity between the frame's and the instruction's embeddings.

VLM-RM (Rocamonde et al., 2023) scores a frame by CLIP's image-text cosine similarity. A PaliGemma model has no
contrastive embedding space, so the closest equivalent from the *same* VLM is used: the mean of the projected image
tokens (what the LLM receives) against the mean of the instruction's token embeddings. Same interface as the
scorer's signals, so it can be evaluated and used as an RL reward side by side with the LRM signals.
"""
import jax.numpy as jnp

from lrm_jax.models import paligemma


def similarity(scorer, params, images, prefix_tokens, prefix_mask, image_embeds=None):
  """Cosine similarity [B] of frames [B, H, W, 3] (or their encodings) with their tokenised instructions."""
  if image_embeds is None:
    image_embeds = scorer.embed(params, images)
  b = image_embeds.shape[0]
  prefix_tokens = jnp.broadcast_to(jnp.asarray(prefix_tokens), (b, jnp.shape(prefix_tokens)[-1]))
  prefix_mask = jnp.broadcast_to(jnp.asarray(prefix_mask), prefix_tokens.shape)
  text = scorer.model.apply({"params": params}, prefix_tokens, method=paligemma.Model.embed_text)
  m = prefix_mask.astype(jnp.float32)[..., None]
  t = jnp.sum(text * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), 1.0)
  v = jnp.mean(image_embeds, axis=-2)
  return jnp.sum(v * t, -1) / (jnp.linalg.norm(v, axis=-1) * jnp.linalg.norm(t, axis=-1) + 1e-6)
