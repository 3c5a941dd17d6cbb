"""Tokenizer: shipped model, PaliGemma prefix/suffix format and loss mask, reproducible training."""
import numpy as np
import pytest

from lrm_jax.models import build_tokenizer, tokenizer


@pytest.fixture(scope="module")
def tok():
  return tokenizer.load()


def test_special_ids_match_gemma(tok):
  assert (tok.pad_id, tok.eos_id, tok.bos_id) == (0, 1, 2)


def test_round_trip_and_answer_words(tok):
  for text in ["Task: put the red cube on the plate. Is the task complete? Answer yes or no.",
               "an unseen zebra ∆ 123"]:  # byte fallback: any text encodes
    assert tok.decode(tok.encode(text)) == text
  for word in ["yes", "no", "A", "B", "\n"] + [str(d) for d in range(10)]:
    assert len(tok.encode(word)) == 1, word
  assert tok.decode(tok.encode("0.7", add_eos=True) + [5, 6]) == "0.7"  # decode stops at eos


def test_paligemma_format_and_loss_mask(tok):
  ex = tok.format("Task: open the drawer. Is the task complete? Answer yes or no.", "yes")
  n_suffix = len(tok.encode("yes")) + 1
  assert ex["tokens"][0] == tok.bos_id and ex["tokens"][-1] == tok.eos_id
  assert ex["tokens"][-n_suffix - 1] == tok.encode("\n")[0]  # "\n" ends the prefix
  np.testing.assert_array_equal(ex["mask_loss"], [0] * (len(ex["tokens"]) - n_suffix) + [1] * n_suffix)
  np.testing.assert_array_equal(ex["mask_ar"], ex["mask_loss"])
  b = tok.batch(["pick up the mug", "open the drawer"], ["0.3", None], max_len=16)
  assert b["tokens"].shape == (2, 16)
  assert b["mask_loss"][1].sum() == 0 and b["input_mask"][1].sum() == len(tok.format("open the drawer")["tokens"])
  with pytest.raises(ValueError, match="max_len"):
    tok.batch(["pick up the mug"], max_len=3)


def test_training_is_reproducible(tmp_path):
  lines = build_tokenizer.seed_corpus()[::5]
  a = tokenizer.train_sentencepiece(lines, str(tmp_path / "a" / "tok"), vocab_size=400)
  b = tokenizer.train_sentencepiece(lines, str(tmp_path / "b" / "other"), vocab_size=400)
  assert open(a, "rb").read() == open(b, "rb").read()


def test_shipped_model_is_reproducible(tmp_path):
  """The shipped model rebuilds byte-identically from the corpus stored next to it (build_tokenizer writes both)."""
  with open(tokenizer.DEFAULT_MODEL.replace(".model", ".corpus.txt")) as f:
    lines = f.read().splitlines()
  path = build_tokenizer.build(lines, str(tmp_path / "seed"))
  assert open(path, "rb").read() == open(tokenizer.DEFAULT_MODEL, "rb").read()


def test_missing_model_file():
  with pytest.raises(FileNotFoundError, match="tokenizer model"):
    tokenizer.load("/nonexistent/tokenizer.model")
