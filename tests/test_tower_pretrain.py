"""Image-tower pretraining on segmented frames and scene state: it learns where coloured objects are, and bad input
is refused."""
import os

import jax
import ml_collections
import numpy as np
import pytest

from lrm_jax.envs import base
from lrm_jax.models import paligemma
from lrm_jax.train import tower_pretrain
from lrm_jax.utils import config_args

SIZE, CLASSES = 16, 4


_RED = [base.SCENE_STATE.index(f"cube_red_{a}") for a in "xy"]


def _frames(n, seed=0):
  """Grey frames with a red and a green 4x4 square at random spots; seg: 0 grey, 2 red, 3 green (1 unused);
  scene state: the red square's position in `cube_red_x/y` (other fields masked out)."""
  rng = np.random.default_rng(seed)
  frames = np.full((n, SIZE, SIZE, 3), 128, np.uint8)
  seg = np.zeros((n, SIZE, SIZE), np.uint8)
  scene = np.zeros((n, len(base.SCENE_STATE)), np.float32)
  mask = np.zeros_like(scene)
  mask[:, _RED] = 1.0
  for i in range(n):
    for cls, rgb in ((2, (220, 30, 30)), (3, (30, 200, 40))):
      y, x = rng.integers(0, SIZE - 4, 2)
      frames[i, y:y + 4, x:x + 4] = rgb
      seg[i, y:y + 4, x:x + 4] = cls
      if cls == 2:
        scene[i, _RED] = (x / SIZE * 4 - 2, y / SIZE * 4 - 2)
  return tower_pretrain.Frames(frames, seg, scene, mask)


@pytest.fixture(scope="module")
def model_and_params():
  model = paligemma.from_config(dict(variant="tiny", img=dict(variant="mu/4", width=32, depth=1, mlp_dim=64,
                                                                  num_heads=2),
                                     llm=dict(variant="gemma_tiny", width=32, depth=1, mlp_dim=64, num_heads=2,
                                              num_kv_heads=1, head_dim=16, vocab_size=64)))
  return model, paligemma.init(model, jax.random.PRNGKey(0), SIZE, num_images=2)


def test_pretraining_learns_object_pixels_and_positions(model_and_params):
  model, params = model_and_params
  data, other = _frames(200), _frames(60, seed=1)
  config = ml_collections.ConfigDict(dict(steps=300, batch_size=16, lr=3e-3, seed=0))
  new, losses, metrics = tower_pretrain.pretrain(model, params, data, config, CLASSES, progress=False,
                                                 eval_sets={"other": other})
  assert losses[-20:].mean() < 0.3 * losses[:20].mean()
  for name in ("val", "other"):  # object pixels (red / green) of frames it did not train on; chance is far below
    assert metrics[name]["object_pixel_accuracy"] > 0.8, metrics
  # The red square's position: well below the error of always answering the mean position.
  guess = np.broadcast_to(data.scene.mean(0), other.scene.shape)
  baseline = tower_pretrain.state_errors(guess, other.scene, other.scene_mask)["position_cm"]
  assert metrics["other"]["position_cm"] < 0.4 * baseline, (metrics["other"], baseline)
  assert set(new) == set(params) and new["llm"] is params["llm"]  # only the image tower changes
  for trained, initial in zip(jax.tree.leaves(new["img"]), jax.tree.leaves(params["img"])):
    assert not np.allclose(trained, initial)


def test_the_frames_reach_the_compiled_steps_as_an_argument_not_as_a_constant(model_and_params, monkeypatch):
  """A closed-over array is embedded in the compiled program (and the compile cache): at the release's 97,000 frames
  that took the run past 24 GB. The training frames must be passed in, every chunk of steps."""
  model, params = model_and_params
  passed, real_jit = [], jax.jit

  def spy(fn, **kw):
    jitted = real_jit(fn, **kw)
    return lambda *args: (passed.append([np.shape(x) for x in jax.tree.leaves(args)]), jitted(*args))[1]

  monkeypatch.setattr(tower_pretrain.jax, "jit", spy)
  data = _frames(40)
  config = ml_collections.ConfigDict(dict(steps=4, batch_size=4, lr=1e-3, seed=0))
  tower_pretrain.pretrain(model, params, data, config, CLASSES, progress=False)
  train_frames = (len(data.frames) - len(data.frames) // 10, SIZE, SIZE, 3)
  assert any(train_frames in shapes for shapes in passed), passed


def test_class_weights_favour_rare_classes_and_keep_the_mean():
  seg = np.array([0] * 90 + [2] * 9 + [3] * 1, np.uint8)
  w = tower_pretrain.class_weights(seg, CLASSES)
  assert w[3] > w[2] > w[0] and w[1] == 0.0
  assert np.isclose((w[seg]).mean(), 1.0)


def test_grasp_flags_are_balanced_and_other_fields_are_not():
  n = len(base.SCENE_STATE)
  scene, mask = np.zeros((10, n), np.float32), np.ones((10, n), np.float32)
  g = [i for i, name in enumerate(base.SCENE_STATE) if name.endswith("_grasped")]
  scene[0, g[0]] = 1.0  # one held cube among 10 frames x len(g) flags
  mask[5:, g[1]] = 0.0  # absent fields do not count
  w = tower_pretrain.flag_weights(scene, mask, cap=1000.0)
  assert w[g[0]] == pytest.approx(10 * len(g) - 5 - 1)  # negatives / positives
  assert np.all(np.delete(w, g) == 1.0)
  assert tower_pretrain.flag_weights(scene, mask, cap=3.0)[g[0]] == 3.0
  assert np.all(tower_pretrain.flag_weights(np.zeros_like(scene), mask) == 1.0)  # nothing held: nothing to weigh


def test_lit_flags_are_balanced_only_when_asked_and_their_recall_is_reported():
  n = len(base.SCENE_STATE)
  scene, mask = np.zeros((10, n), np.float32), np.ones((10, n), np.float32)
  lit = [i for i, name in enumerate(base.SCENE_STATE) if name.endswith("_lit")]
  scene[:2, lit[0]] = 1.0  # two lit buttons among 10 frames x len(lit) flags
  assert np.all(tower_pretrain.flag_weights(scene, mask) == 1.0)  # the default balances grasp flags only
  w = tower_pretrain.flag_weights(scene, mask, cap=1000.0, groups=("grasped", "lit"))
  assert w[lit[0]] == pytest.approx((10 * len(lit) - 2) / 2)
  assert np.all(np.delete(w, lit) == 1.0)  # nothing grasped here
  with pytest.raises(ValueError, match="'closure' is not a flag group"):
    tower_pretrain.flag_weights(scene, mask, groups=("closure",))
  unlit_everywhere = np.zeros_like(scene)  # what an unweighted head learns
  errors = tower_pretrain.state_errors(unlit_everywhere, scene, mask)
  assert errors["lit_acc"] == pytest.approx(1 - 2 / (10 * len(lit))) and errors["lit_recall"] == 0.0


def test_lrm_tiny_lit_balance_adds_the_lit_flags_and_is_off_by_default():
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "reward_model",
                      "lrm_tiny.py")
  flags = lambda arg: tuple(config_args.load_file(f"{path}:{arg}").tower.get("balance_flags", ("grasped",)))
  assert flags("") == ("grasped",)  # the release's tower, as shipped
  assert flags("lit_balance=1") == ("grasped", "lit")


def test_bad_frames_and_labels_are_refused(model_and_params):
  model, params = model_and_params
  d = _frames(4)
  config = ml_collections.ConfigDict(dict(steps=1, batch_size=2, lr=1e-3, seed=0))
  with pytest.raises(ValueError, match="expected square frames"):
    tower_pretrain.pretrain(model, params, tower_pretrain.Frames(d.frames[:, :, :8], d.seg), config, CLASSES)
  with pytest.raises(ValueError, match="expected classes < 3"):
    tower_pretrain.pretrain(model, params, d, config, 3)
  with pytest.raises(ValueError, match="scene state"):
    tower_pretrain.pretrain(model, params, tower_pretrain.Frames(d.frames, d.seg, d.scene[:, :5], d.scene_mask),
                            config, CLASSES)
