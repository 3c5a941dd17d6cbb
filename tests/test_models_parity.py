"""Numerical parity with an independent implementation: Hugging Face `transformers` PaliGemma (PyTorch, CPU).

Our random tiny params are converted into the transformers layout; both models see the same two images per example
and a prompt + answer (prefix-LM mask built by transformers from token_type_ids). Needs torch and transformers from
requirements-dev.txt: skipped only when they are not installed, and marked `slow` so `.ci/run` runs it.
"""
import os

import jax
import numpy as np
import pytest

os.environ.setdefault("USE_TF", "0")  # keep transformers from importing TensorFlow (slow, unneeded)
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lrm_jax.models import hf_convert, paligemma  # noqa: E402

pytestmark = pytest.mark.slow
IMG = 16


def _hf_model(model, params, gemma2):
  cfg = transformers.PaliGemmaConfig(**hf_convert.hf_config_kwargs(model, IMG))
  cfg.text_config._attn_implementation = "eager"
  cfg.vision_config._attn_implementation = "eager"
  ref = transformers.PaliGemmaForConditionalGeneration(cfg).eval()
  sd = {k: torch.from_numpy(v.copy()) for k, v in hf_convert.to_hf_state_dict(jax.tree.map(np.asarray, params),
                                                                         gemma2).items()}
  missing, unexpected = ref.load_state_dict(sd, strict=False)
  assert not unexpected and not [m for m in missing if "lm_head" not in m], (missing, unexpected)
  return ref


@pytest.mark.parametrize("variant", ["tiny", "tiny2"])
def test_logits_match_transformers(variant):
  torch.manual_seed(0)
  model = paligemma.Model(**paligemma.get_config(variant, llm=dict(vocab_size=300)))
  params = paligemma.init(model, jax.random.PRNGKey(1), IMG, num_images=2)
  gemma2 = variant == "tiny2"
  ref = _hf_model(model, params, gemma2)

  rng = np.random.default_rng(0)
  b, n_img, p = 2, 2, (IMG // 8) ** 2
  images = rng.uniform(-1, 1, (b, n_img, IMG, IMG, 3)).astype(np.float32)
  text = rng.integers(1, 290, (b, 9)).astype(np.int32)
  ar = np.array([[0] * 5 + [1] * 4] * b, np.int32)  # 5 prompt tokens (incl. "\n"), 4 answer tokens

  ours = np.asarray(model.apply({"params": params}, images, text, ar))

  image_token = model.llm_config["vocab_size"] - 1
  ids = np.concatenate([np.full((b, n_img * p), image_token), text], 1)
  token_type = np.concatenate([np.zeros((b, n_img * p)), ar], 1)
  with torch.no_grad():
    out = ref(input_ids=torch.from_numpy(ids).long(),
              pixel_values=torch.from_numpy(images.reshape(b * n_img, IMG, IMG, 3).transpose(0, 3, 1, 2)),
              attention_mask=torch.ones(ids.shape, dtype=torch.long),
              token_type_ids=torch.from_numpy(token_type).long(),
              labels=torch.from_numpy(ids).long())  # labels switch transformers to its prefix-LM training mask
  theirs = out.logits.numpy()[:, n_img * p:]
  cap = model.llm_config.get("final_logits_softcap") or paligemma.gemma.get_config(
      model.llm_config["variant"]).get("final_logits_softcap")
  if cap:
    # transformers' PaliGemmaForConditionalGeneration applies its own lm_head and skips Gemma 2's final logit
    # soft-cap (Gemma2ForCausalLM applies it; big_vision's PaliGemma 2 does too), so cap its output here.
    theirs = np.tanh(theirs / cap) * cap
  diff = np.abs(ours - theirs).max()
  print(f"{variant}: max |logits diff| = {diff:.2e}, logit scale {np.abs(theirs).max():.2f}")
  assert diff <= 1e-4


def test_state_dict_round_trip():
  model = paligemma.Model(**paligemma.get_config("tiny2"))
  params = jax.tree.map(np.asarray, paligemma.init(model, jax.random.PRNGKey(2), IMG))
  sd = hf_convert.to_hf_state_dict(params, gemma2=True)
  back = hf_convert.from_hf_state_dict(sd, gemma2=True, num_heads=4, num_kv_heads=2, vit_heads=2)
  jax.tree.map(np.testing.assert_array_equal, back, jax.tree.map(lambda x: np.asarray(x, np.float32), params))
