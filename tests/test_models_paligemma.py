"""PaliGemma model: released-config shapes, big_vision .npz round trip, prefix-LM mask, KV-cache decoding."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from lrm_jax.models import checkpoint, decode, paligemma

IMG = 16  # tiny images: 2x2 patches of 8 px


def _ref_shapes(width, depth, mlp, kv_heads, post_norms):
  """Expected names and shapes, typed in from shared/reference/paligemma_params.md."""
  enc = "img/Transformer/encoderblock/"
  att = enc + "MultiHeadDotProductAttention_0/"
  s = {
      "img/embedding/kernel": (14, 14, 3, 1152), "img/embedding/bias": (1152,),
      "img/pos_embedding": (1, 256, 1152),
      enc + "LayerNorm_0/scale": (27, 1152), enc + "LayerNorm_0/bias": (27, 1152),
      enc + "LayerNorm_1/scale": (27, 1152), enc + "LayerNorm_1/bias": (27, 1152),
      att + "out/kernel": (27, 16, 72, 1152), att + "out/bias": (27, 1152),
      enc + "MlpBlock_0/Dense_0/kernel": (27, 1152, 4304), enc + "MlpBlock_0/Dense_0/bias": (27, 4304),
      enc + "MlpBlock_0/Dense_1/kernel": (27, 4304, 1152), enc + "MlpBlock_0/Dense_1/bias": (27, 1152),
      "img/Transformer/encoder_norm/scale": (1152,), "img/Transformer/encoder_norm/bias": (1152,),
      "img/head/kernel": (1152, width), "img/head/bias": (width,),
      "llm/embedder/input_embedding": (257152, width),
      "llm/layers/attn/q_einsum/w": (depth, 8, width, 256),
      "llm/layers/attn/kv_einsum/w": (depth, 2, kv_heads, width, 256),
      "llm/layers/attn/attn_vec_einsum/w": (depth, 8, 256, width),
      "llm/layers/mlp/gating_einsum": (depth, 2, width, mlp),
      "llm/layers/mlp/linear": (depth, mlp, width),
      "llm/layers/pre_attention_norm/scale": (depth, width), "llm/layers/pre_ffw_norm/scale": (depth, width),
      "llm/final_norm/scale": (width,),
  }
  for n in ("query", "key", "value"):
    s[att + f"{n}/kernel"] = (27, 1152, 16, 72)
    s[att + f"{n}/bias"] = (27, 16, 72)
  if post_norms:
    s["llm/layers/post_attention_norm/scale"] = (depth, width)
    s["llm/layers/post_ffw_norm/scale"] = (depth, width)
  return s


@pytest.mark.parametrize("variant,want", [
    ("paligemma_3b", _ref_shapes(2048, 18, 16384, 1, False)),
    ("paligemma2_3b", _ref_shapes(2304, 26, 9216, 4, True)),
])
def test_released_config_shapes(variant, want):
  model = paligemma.Model(**paligemma.get_config(variant))
  got = {k: tuple(v.shape) for k, v in checkpoint.flatten(nn.meta.unbox(paligemma.init_shapes(model, 224))).items()}
  assert got == want


def test_posemb_grows_with_resolution():
  model = paligemma.Model(**paligemma.get_config("paligemma_3b"))
  for size, n in ((448, 1024), (896, 4096)):
    assert nn.meta.unbox(paligemma.init_shapes(model, size))["img"]["pos_embedding"].shape == (1, n, 1152)


@pytest.fixture(scope="session")
def tiny():
  model = paligemma.Model(**paligemma.get_config("tiny"))
  params = paligemma.init(model, jax.random.PRNGKey(0), IMG, num_images=2)
  return model, params


@pytest.fixture(scope="session")
def forward(tiny):
  model, _ = tiny
  return jax.jit(lambda p, *a, **k: model.apply({"params": p}, *a, **k))


def _inputs(batch=2, n_img=2, seed=1):
  rng = np.random.default_rng(seed)
  images = rng.uniform(-1, 1, (batch, n_img, IMG, IMG, 3)).astype(np.float32)
  text = rng.integers(1, 256, (batch, 7)).astype(np.int32)
  ar = np.array([[0, 0, 0, 0, 1, 1, 1]] * batch, np.int32)
  return images, text, ar


def test_npz_roundtrip_bit_identical(tiny, forward, tmp_path):
  _, params = tiny
  # Store one tensor as bfloat16 so the file has a void V2 array, like released .bf16.npz files.
  params = jax.tree.map(np.asarray, params)
  params["llm"]["final_norm"]["scale"] = params["llm"]["final_norm"]["scale"].astype(ml_dtypes.bfloat16)
  path = tmp_path / "ckpt.npz"
  paligemma.save(str(path), params)
  with np.load(path) as z:
    assert z["params/llm/final_norm/scale"].dtype == np.dtype("V2")
    assert z["params/llm/embedder/input_embedding"].dtype == np.float32
  model = paligemma.Model(**paligemma.get_config("tiny"))
  loaded = paligemma.load(str(path), model, image_size=IMG)
  assert loaded["llm"]["final_norm"]["scale"].dtype == ml_dtypes.bfloat16
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
  images, text, ar = _inputs()
  assert np.isfinite(np.asarray(forward(loaded, images, text, ar))).all()
  path2 = tmp_path / "again.npz"
  paligemma.save(str(path2), loaded)
  again = checkpoint.load_npz(str(path2))
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(again)):
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_load_resamples_posemb_and_trims_vocab(tiny, tmp_path):
  _, params = tiny
  params = jax.tree.map(np.asarray, params)
  params["llm"]["embedder"]["input_embedding"] = np.pad(params["llm"]["embedder"]["input_embedding"],
                                                        ((0, 128), (0, 0)))  # padded rows, as some Gemma files
  path = tmp_path / "padded.npz"
  checkpoint.save_npz(str(path), params, dtype=np.float16)  # like paligemma-3b-pt-224.f16.npz
  model = paligemma.Model(**paligemma.get_config("tiny"))
  loaded = paligemma.load(str(path), model, image_size=2 * IMG)  # 4x4 patches instead of 2x2
  assert loaded["img"]["pos_embedding"].shape == (1, 16, 32)
  assert loaded["llm"]["embedder"]["input_embedding"].shape == (256, 32)
  assert loaded["llm"]["embedder"]["input_embedding"].dtype == np.float16


def test_load_rejects_bad_files(tmp_path):
  bad = tmp_path / "bad.npz"
  np.savez(bad, **{"weights/x": np.zeros(3)})
  with pytest.raises(ValueError, match="params/"):
    paligemma.load(str(bad))
  with pytest.raises(FileNotFoundError):
    paligemma.load(str(tmp_path / "missing.npz"))


def test_prefix_lm_mask():
  input_mask = jnp.array([[1, 1, 1, 1, 1, 0]])
  mask_ar = jnp.array([[0, 0, 0, 1, 1, 1]])
  m = np.asarray(paligemma.make_attn_mask(input_mask, mask_ar))[0]
  assert m[:3, :3].all()  # prefix tokens see each other (both ways)
  assert not m[:3, 3:].any()  # prefix does not see the answer
  assert m[3, :4].all() and not m[3, 4:].any()  # answer token 0 sees prefix + itself only
  assert m[4, :5].all() and not m[4, 5:].any()  # answer token 1 does not see later answer tokens
  assert not m[:, 5].any() and not m[5].any()  # padding is invisible and sees nothing


def test_answer_logits_ignore_later_answer_tokens(tiny, forward):
  """Changing a later answer token must not change earlier logits; changing the prompt changes everything."""
  _, params = tiny
  images, text, ar = _inputs()
  base = np.asarray(forward(params, images, text, ar))
  later = text.copy()
  later[:, 6] = (later[:, 6] + 1) % 256
  out = np.asarray(forward(params, images, later, ar))
  np.testing.assert_allclose(out[:, :6], base[:, :6], atol=1e-6)
  prompt = text.copy()
  prompt[:, 3] = (prompt[:, 3] + 1) % 256
  out = np.asarray(forward(params, images, prompt, ar))
  assert np.abs(out[:, 0] - base[:, 0]).max() > 1e-4  # bidirectional prefix: token 0 sees token 3


def test_image_embeds_and_logits_at_match_full_call(tiny, forward):
  model, params = tiny
  images, text, ar = _inputs()
  base = np.asarray(forward(params, images, text, ar))
  emb = model.apply({"params": params}, images, method=paligemma.Model.embed_image)
  assert emb.shape == (2, 2 * 4, 32)
  out = forward(params, None, text, ar, image_embeds=emb, logits_at=jnp.array([[3, 5], [6, 4]]))
  np.testing.assert_allclose(out, base[[[0], [1]], [[3, 5], [6, 4]]], atol=1e-5)
  # The two images are distinct tokens: swapping them changes the answer logits.
  swapped = np.asarray(forward(params, images[:, ::-1], text, ar))
  assert np.abs(swapped - base).max() > 1e-4


@pytest.mark.parametrize("variant", ["tiny", "tiny2_window"])
def test_kv_cache_greedy_equals_no_cache(tiny, variant):
  if variant == "tiny":
    model, params = tiny
  else:  # Gemma 2 with a 3-token sliding window on even layers: cached key positions must line up too
    model = paligemma.Model(**paligemma.get_config("tiny2", llm=dict(sliding_window=3)))
    params = paligemma.init(model, jax.random.PRNGKey(5), IMG, num_images=2)
  images, text, _ = _inputs(seed=3)
  input_mask = np.array([[1] * 7, [1] * 5 + [0] * 2], bool)  # second prompt is right-padded
  first, _ = decode.greedy_no_cache(model, params, images, text, input_mask, max_new_tokens=6, eos_id=-1)
  eos = int(np.asarray(first)[0, 3])  # an eos the model actually emits
  kw = dict(max_new_tokens=6, eos_id=eos)
  t_ref, l_ref = decode.greedy_no_cache(model, params, images, text, input_mask, **kw)
  t_kv, l_kv = decode.greedy(model, params, images, text, input_mask, **kw)
  np.testing.assert_array_equal(t_kv, t_ref)
  np.testing.assert_allclose(l_kv, l_ref, atol=1e-4, rtol=1e-4)
  assert (np.asarray(t_kv)[0, 4:] == 0).all()  # after eos: padding


def test_prefill_shared_prefix_then_several_suffixes(tiny, forward):
  """Scoring pattern: prefill [images, prompt] once, tile the cache, extend with different answers."""
  model, params = tiny
  images, text, ar = _inputs(batch=1)
  prompt, suffixes = text[:, :4], np.array([[7, 9, 11], [8, 10, 12]], np.int32)
  p = {"params": params}
  _, cache = model.apply(p, images, prompt, np.zeros_like(prompt), cache_size=8 + 4 + 3,
                         method=paligemma.Model.prefill)
  tiled = jax.tree.map(lambda x: jnp.repeat(x, 2, axis=1) if x.ndim == 5 else
                       (jnp.repeat(x, 2, axis=0) if x.ndim >= 1 else x), cache)
  logits, _ = model.apply(p, tiled, suffixes, method=paligemma.Model.extend)
  for i in range(2):
    full = forward(params, images, np.concatenate([prompt, suffixes[i:i + 1]], 1), ar[:, :7])
    np.testing.assert_allclose(logits[i], full[0, 4:], atol=1e-4, rtol=1e-4)


def test_bad_input_messages(tiny, forward):
  _, params = tiny
  with pytest.raises(ValueError, match="images"):
    forward(params, np.zeros((2, 3, 3)), np.zeros((2, 3), np.int32), np.zeros((2, 3), np.int32))
  with pytest.raises(ValueError, match="variant"):
    paligemma.get_config("huge")


def test_orbax_round_trip(tiny, tmp_path):
  _, params = tiny
  state = dict(params=params, step=np.int32(7))
  checkpoint.save_orbax(str(tmp_path / "ckpt"), state)
  back = checkpoint.restore_orbax(str(tmp_path / "ckpt"), jax.tree.map(np.asarray, state))
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_microbatched_forward_matches(tiny):
  from lrm_jax.models import batching
  model, params = tiny
  images, text, ar = _inputs(batch=4)
  fwd = lambda p, i, t, a: model.apply({"params": p}, i, t, a)
  np.testing.assert_allclose(jax.jit(batching.microbatched(fwd, 2))(params, images, text, ar),
                             fwd(params, images, text, ar), atol=1e-5)


def test_config_file_builds_model():
  from configs.models import paligemma as model_config
  cfg = model_config.get_config("variant=paligemma2_3b,res=448,remat")
  model = paligemma.from_config(cfg.model)
  shapes = nn.meta.unbox(paligemma.init_shapes(model, cfg.image_size))
  assert shapes["img"]["pos_embedding"].shape == (1, 1024, 1152)
  assert model.llm_config["remat"] and model.llm_config["scan_unroll"] == 1
  with pytest.raises(ValueError, match="unknown config arg"):
    model_config.get_config("size=3")


def test_sliding_window_limits_local_layers():
  """One local layer with window 2: a text token only influences logits at positions less than 2 away."""
  model = paligemma.Model(**paligemma.get_config("tiny2", llm=dict(depth=1, sliding_window=2)))
  params = paligemma.init(model, jax.random.PRNGKey(3), IMG)
  images, text, ar = _inputs(batch=1, n_img=1)
  ar = np.zeros_like(ar)  # all prefix: bidirectional, so only the window limits attention
  base = np.asarray(model.apply({"params": params}, images, text, ar))
  changed = text.copy()
  changed[:, 3] = (changed[:, 3] + 1) % 256
  out = np.asarray(model.apply({"params": params}, images, changed, ar))
  diff = np.abs(out - base).max(axis=-1)[0]
  assert (diff[[2, 3, 4]] > 1e-5).all() and (diff[[0, 1, 5, 6]] < 1e-6).all(), diff
