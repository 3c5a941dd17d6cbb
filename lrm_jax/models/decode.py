"""Greedy decoding for free-text answers: with a KV cache (prefill once, extend one token a step) and without
(re-running the whole sequence every step; slow, kept as the reference the cached path is tested against).

Both return (tokens [B, max_new_tokens] int32, logits [B, max_new_tokens, V]); after an example emits `eos_id` its
later tokens are `pad_id`. Prefix text may be right-padded (`input_mask`); padding never gets a position.
"""
import functools

import jax
import jax.numpy as jnp

from lrm_jax.models import paligemma


def _pick(logits, done, eos_id, pad_id):
  tok = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  tok = jnp.where(done, pad_id, tok)
  return tok, done | (tok == eos_id)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "eos_id", "pad_id"))
def greedy(model: paligemma.Model, params, images, prefix, input_mask, *, max_new_tokens: int, eos_id: int,
           pad_id: int = 0, image_embeds=None, question=None):
  """Cached greedy decoding: one prefill of [images, prefix], then one `extend` per new token.

  question: optional [B, Tq] tokens appended causally after the prefix before decoding (the reward prompts' layout;
  no padding inside it).
  """
  b, t = prefix.shape
  p = {"params": params}
  if image_embeds is None:
    image_embeds = model.apply(p, images, method=paligemma.Model.embed_image)
  tq = 0 if question is None else question.shape[1]
  cache_size = image_embeds.shape[1] + t + tq + max_new_tokens
  logits, cache = model.apply(p, None, prefix, jnp.zeros_like(prefix), input_mask, image_embeds=image_embeds,
                              cache_size=cache_size, method=paligemma.Model.prefill)
  if question is not None:
    logits, cache = model.apply(p, cache, question, logits_at=jnp.full((b, 1), tq - 1),
                                method=paligemma.Model.extend)
    logits = logits[:, 0]
  tok, done = _pick(logits, jnp.zeros((b,), bool), eos_id, pad_id)

  def step(carry, _):
    tok, done, cache = carry
    logits, cache = model.apply(p, cache, tok[:, None], method=paligemma.Model.extend)
    nxt, done2 = _pick(logits[:, 0], done, eos_id, pad_id)
    return (nxt, done2, cache), (tok, logits[:, 0])

  _, (toks, step_logits) = jax.lax.scan(step, (tok, done, cache), None, length=max_new_tokens)
  # step_logits[i] are the logits *after* token i; the logits that chose token 0 come from prefill.
  all_logits = jnp.concatenate([logits[None], step_logits[:-1]], axis=0)
  return toks.T, jnp.swapaxes(all_logits, 0, 1)


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "eos_id", "pad_id"))
def greedy_no_cache(model: paligemma.Model, params, images, prefix, input_mask, *, max_new_tokens: int,
                    eos_id: int, pad_id: int = 0):
  """Reference decoding: every step runs the full prefix-LM forward over [images, prefix, generated so far]."""
  b, t = prefix.shape
  p = {"params": params}
  text = jnp.concatenate([prefix, jnp.full((b, max_new_tokens), pad_id, jnp.int32)], axis=1)
  mask = jnp.concatenate([input_mask.astype(bool), jnp.zeros((b, max_new_tokens), bool)], axis=1)
  ar = jnp.concatenate([jnp.zeros((b, t), jnp.int32), jnp.ones((b, max_new_tokens), jnp.int32)], axis=1)
  done = jnp.zeros((b,), bool)
  last = jnp.max(jnp.where(mask, jnp.arange(t + max_new_tokens)[None], 0), axis=1)
  toks, all_logits = [], []
  for i in range(max_new_tokens):
    at = jnp.where(i == 0, last, t + i - 1)[:, None]
    logits = model.apply(p, images, text, ar, mask, logits_at=at)[:, 0]
    tok, done = _pick(logits, done, eos_id, pad_id)
    text = text.at[:, t + i].set(tok)
    mask = mask.at[:, t + i].set(True)
    toks.append(tok)
    all_logits.append(logits)
  return jnp.stack(toks, 1), jnp.stack(all_logits, 1)
