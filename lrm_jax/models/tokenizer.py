"""SentencePiece tokenizer and the PaliGemma prompt format.

Ids follow Gemma's convention (pad 0, eos 1, bos 2, unk 3) so the shipped small model and Gemma's real
`tokenizer.model` are interchangeable. PaliGemma format: [bos] prefix "\\n" | suffix [eos]; the prefix (with the
"\\n") is attended bidirectionally and carries no loss; the suffix is causal and is the only part with loss.
"""
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import sentencepiece as spm

DEFAULT_MODEL = os.path.join(os.path.dirname(__file__), "assets", "lrm_tokenizer.model")
SEP = "\n"


class Tokenizer:
  def __init__(self, model_path: Optional[str] = None):
    path = model_path or DEFAULT_MODEL
    if not os.path.exists(path):
      raise FileNotFoundError(f"tokenizer model {path!r} does not exist (expected a SentencePiece .model file)")
    self.path = path
    self.sp = spm.SentencePieceProcessor(model_file=path)
    self.pad_id, self.eos_id, self.bos_id = self.sp.pad_id(), self.sp.eos_id(), self.sp.bos_id()
    if min(self.eos_id, self.bos_id) < 0:
      raise ValueError(f"{path}: tokenizer has no bos/eos ids (bos={self.bos_id}, eos={self.eos_id})")
    self.pad_id = max(self.pad_id, 0)

  @property
  def vocab_size(self) -> int:
    return self.sp.get_piece_size()

  def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list:
    ids = self.sp.encode(text)
    return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

  def decode(self, ids: Iterable[int]) -> str:
    """Stops at the first eos; pad ids are dropped."""
    out = []
    for i in (int(i) for i in ids):
      if i == self.eos_id:
        break
      if i != self.pad_id:
        out.append(i)
    return self.sp.decode(out)

  def format(self, prefix: str, suffix: Optional[str] = None, question: Optional[str] = None) -> dict:
    """One example -> dict(tokens, mask_ar, mask_loss) int32 arrays (no padding).

    suffix=None gives a prompt for generation or scoring (prefix only, no eos). `question` goes between the prefix
    and the suffix: causal like the suffix but without loss (the reward prompts' layout, see prompts.py).
    """
    pre = [self.bos_id] + self.encode(prefix) + self.encode(SEP)
    que = [] if question is None else self.encode(question)
    suf = [] if suffix is None else self.encode(suffix) + [self.eos_id]
    tokens = np.array(pre + que + suf, np.int32)
    ar = np.array([0] * len(pre) + [1] * (len(que) + len(suf)), np.int32)
    loss = np.array([0] * (len(pre) + len(que)) + [1] * len(suf), np.int32)
    return dict(tokens=tokens, mask_ar=ar, mask_loss=loss)

  def batch(self, prefixes: Sequence[str], suffixes: Optional[Sequence[Optional[str]]] = None,
            max_len: Optional[int] = None, questions: Optional[Sequence[Optional[str]]] = None) -> dict:
    """Right-padded batch: tokens, mask_ar, mask_loss, input_mask, all [B, max_len]. Too-long examples raise."""
    suffixes = suffixes if suffixes is not None else [None] * len(prefixes)
    questions = questions if questions is not None else [None] * len(prefixes)
    if len(suffixes) != len(prefixes) or len(questions) != len(prefixes):
      raise ValueError(f"suffixes/questions: expected {len(prefixes)} entries, got {len(suffixes)}/{len(questions)}")
    exs = [self.format(p, s, q) for p, s, q in zip(prefixes, suffixes, questions)]
    longest = max(len(e["tokens"]) for e in exs)
    max_len = max_len or longest
    if longest > max_len:
      raise ValueError(f"max_len={max_len} is shorter than the longest example ({longest} tokens)")
    out = {k: np.zeros((len(exs), max_len), np.int32) for k in ("tokens", "mask_ar", "mask_loss", "input_mask")}
    out["tokens"][:] = self.pad_id
    for i, e in enumerate(exs):
      n = len(e["tokens"])
      for k in ("tokens", "mask_ar", "mask_loss"):
        out[k][i, :n] = e[k]
      out["input_mask"][i, :n] = 1
      out["mask_ar"][i, n:] = 1  # padding after the answer: causal (never seen anyway)
    return out


def load(path: Optional[str] = None) -> Tokenizer:
  """The shipped small tokenizer, or Gemma's / PaliGemma's real `tokenizer.model` when `path` is given."""
  return Tokenizer(path)


def train_sentencepiece(texts: Sequence[str], out_prefix: str, vocab_size: int = 1000) -> str:
  """Trains a BPE SentencePiece model on `texts` deterministically; returns the `.model` path.

  Same input -> byte-identical model: one thread, no sampling or shuffling of sentences. Byte fallback means any
  text encodes; digits are split and no dummy "▁" prefix is added, like Gemma's; "\\n" is a piece of its own.
  """
  texts = [t for t in texts if t.strip()]
  if not texts:
    raise ValueError("train_sentencepiece: texts is empty")
  os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(texts), model_prefix=out_prefix, vocab_size=vocab_size, model_type="bpe",
      pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=[SEP], byte_fallback=True,
      split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
      add_dummy_prefix=False,
      character_coverage=1.0, hard_vocab_limit=False, num_threads=1, shuffle_input_sentence=False,
      input_sentence_size=0, minloglevel=2)
  # The trainer records its output path in the model; blank it so the file depends on the texts alone.
  from sentencepiece import sentencepiece_model_pb2
  proto = sentencepiece_model_pb2.ModelProto()
  with open(out_prefix + ".model", "rb") as f:
    proto.ParseFromString(f.read())
  proto.trainer_spec.model_prefix = ""
  tmp = out_prefix + ".model.tmp"
  with open(tmp, "wb") as f:
    f.write(proto.SerializeToString())
  os.replace(tmp, out_prefix + ".model")
  return out_prefix + ".model"
