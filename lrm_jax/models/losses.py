"""Answer-only language-model loss for PaliGemma-format batches (see tokenizer.format)."""
import jax
import jax.numpy as jnp


def answer_nll(text_logits, tokens, mask_loss):
  """Mean next-token negative log-likelihood over the answer (mask_loss = 1) tokens.

  text_logits [B, T, V] from `paligemma.Model.__call__`: position t predicts token t+1.
  """
  logp = jax.nn.log_softmax(text_logits[:, :-1].astype(jnp.float32), axis=-1)
  tgt = tokens[:, 1:]
  nll = -jnp.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0]
  w = mask_loss[:, 1:].astype(jnp.float32)
  return jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
