"""Released reward models: export -> load through the public paligemma.load, manifest checks, size limit."""
import os

import jax
import numpy as np
import pytest

from lrm_jax.models import paligemma
from lrm_jax.models import release
from lrm_jax.models import tokenizer as tokenizer_lib

MODEL = dict(variant="tiny", img=dict(variant="mu/8", width=16, depth=1, mlp_dim=32, num_heads=2),
             llm=dict(variant="gemma_tiny", width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8,
                      vocab_size=tokenizer_lib.load().vocab_size))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("release") / "lrm_test")
  model = paligemma.from_config(MODEL)
  params = paligemma.init(model, jax.random.PRNGKey(0), 16, num_images=2)
  manifest = release.export(out, params, tokenizer_lib.DEFAULT_MODEL,
                            dict(model=MODEL, image_size=16, seed=0, training_tasks=["push_cube"]))
  return out, params, manifest


def test_export_then_load_gives_the_params_in_bf16_precision(exported):
  out, params, manifest = exported
  assert sorted(os.listdir(out)) == sorted([release.PARAMS, release.TOKENIZER, release.MANIFEST])
  model, tok, loaded, m = release.load(out)
  assert m == manifest and m["files"][release.PARAMS] == os.path.getsize(os.path.join(out, release.PARAMS))
  assert tok.vocab_size == MODEL["llm"]["vocab_size"]
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    assert a.dtype == np.float32 and a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-2)  # bf16 keeps ~3 significant digits
  # The public big_vision loader reads the same file (bf16 stays bf16 without a dtype).
  raw = paligemma.load(os.path.join(out, release.PARAMS), model, 16)
  assert jax.tree.leaves(raw)[0].dtype.name == "bfloat16"


def test_a_folder_without_a_manifest_is_not_a_release(exported, tmp_path):
  out, params, _ = exported
  assert release.is_release(out) and not release.is_release(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="expected a released model folder"):
    release.load(str(tmp_path))
  with pytest.raises(ValueError, match="expected a 'image_size' entry"):
    release.export(str(tmp_path / "x"), params, tokenizer_lib.DEFAULT_MODEL, dict(model=MODEL))


def test_an_asset_over_10_mb_is_refused(monkeypatch, exported, tmp_path):
  _, params, _ = exported
  monkeypatch.setattr(release, "MAX_BYTES", 1000)
  with pytest.raises(ValueError, match="must be <= 1,000 bytes"):
    release.export(str(tmp_path / "big"), params, tokenizer_lib.DEFAULT_MODEL, dict(model=MODEL, image_size=16))
  assert not release.is_release(str(tmp_path / "big"))  # no manifest: never mistaken for a complete release


def test_serve_and_refine_load_a_release_at_its_own_image_size(exported):
  """`serve` (ckpt=<release>) and `refine` read the model and its frame size from the release, not the config."""
  from lrm_jax.jobs import reward_model, serve
  from lrm_jax.utils import config_args
  out, params, _ = exported
  config = config_args.load_file(f"configs/serve.py:ckpt={out}")
  assert config.reward_model.image_size != 16  # cpu_demo's 64 px: the release's 16 px must win
  model, tok, loaded, what = serve.load_model(config)
  assert what.startswith("released reward model") and reward_model.image_size_of(config.reward_model, out) == 16
  for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(params)):
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-2)
  assert not release.is_release("")  # "" (no ckpt) is not the current directory
