"""Mixture elements (raw text + uint8 frames) -> model batches (tokens and masks), on the host.

The mixture yields prompt parts as text (data_pipelines stays model-free); tokenising here keeps the tokenizer a
training-layer choice (the shipped one or Gemma's real `tokenizer.model`). Layout per example, as in prompts.py:
images [A, B] | bos "Task: <instruction>" "\\n" (prefix, bidirectional) | question (causal, no loss) | answer eos
(causal, loss).
"""
import numpy as np

from data_pipelines import prompts

KIND_IDS = {k: i for i, k in enumerate(prompts.KINDS)}


def _text(x) -> str:
  return x.decode() if isinstance(x, bytes) else str(x)


def to_model_batch(elements: dict, tokenizer, max_len: int) -> dict:
  """A batched numpy mixture element -> dict(images uint8 [B,2,S,S,3], tokens, mask_ar, mask_loss, input_mask
  int32 [B,max_len], kind int32 [B], target float32 [B])."""
  kinds = [_text(k) for k in elements["kind"]]
  text = tokenizer.batch([prompts.context(_text(i)) for i in elements["instruction"]],
                         [_text(a) for a in elements["answer"]], max_len=max_len,
                         questions=[prompts.question(k) for k in kinds])
  return dict(images=np.asarray(elements["images"], np.uint8), **text,
              kind=np.array([KIND_IDS[k] for k in kinds], np.int32),
              target=np.asarray(elements["target"], np.float32))


def longest_example(tokenizer, instructions) -> int:
  """Tokens in the longest example any of `instructions` makes: each question with its longest answer."""
  longest_context = max(instructions, key=lambda i: len(tokenizer.encode(prompts.context(i))))
  return max(len(tokenizer.format(prompts.context(longest_context), a, prompts.question(k))["tokens"])
             for k in prompts.KINDS for a in prompts.ANSWERS[k])


def batches(dataset, tokenizer, max_len: int):
  """Iterator of model batches from a batched tf.data mixture."""
  for elements in dataset.as_numpy_iterator():
    yield to_model_batch(elements, tokenizer, max_len)
