"""bench/colour_contrast.py: swaps name another object of the scene, and the contrast readout subtracts their mean."""
import numpy as np

from lrm_jax.envs import base
from tests.fixtures_bench import load_bench

cc = load_bench("colour_contrast")


def _mask(*present):
  return np.array([[1.0 if f in present else 0.0 for f in base.SCENE_STATE]] * 3)


def test_scene_colours_are_the_objects_the_scene_state_holds():
  ep = dict(scene_mask=_mask("cube_red_x", "cube_blue_x", "button_green_lit"))
  assert cc.scene_colours(ep) == {"red", "blue", "green"}
  assert cc.scene_colours(dict(images=None)) is None  # no scene state: the palette is used instead


def test_swaps_replace_one_named_colour_by_one_the_instruction_does_not_name():
  got = cc.swaps("put the red cube and the blue cube on the plate", {"red", "blue", "yellow"})
  assert got == ["put the yellow cube and the blue cube on the plate",
                 "put the red cube and the yellow cube on the plate"]
  assert cc.swaps("press red, then green, then blue", {"red", "green", "blue"}) == []  # every colour named
  assert cc.swaps("open the drawer", {"red"}) == []
  assert len(cc.swaps("pick up the red cube", None)) == len(cc.PALETTE) - 1


def test_contrast_is_the_answer_minus_the_mean_over_each_instructions_own_swaps():
  yes = {"a red": 0.9, "a blue": 0.3, "a green": 0.1, "b red": 0.6, "b blue": 0.2}

  def plain(a, b, instructions):
    return {"completion": np.array([yes[i] for i in instructions]), "progress": np.zeros(len(instructions))}

  fn = cc.contrast_score_fn(plain, {"a red": ["a blue", "a green"], "b red": ["b blue"]})
  out = fn(None, None, ["a red", "b red"])
  np.testing.assert_allclose(out["swapped_completion"], [0.2, 0.2])
  np.testing.assert_allclose(out["contrast"], [0.7, 0.4])
  np.testing.assert_allclose(out["completion"], [0.9, 0.6])
  np.testing.assert_allclose(out["swapped_progress"], [0.0, 0.0])  # every signal the model gives is swapped too
  other = cc.contrast_score_fn(plain, {"a red": ["a blue"], "b red": ["b blue"]}, {"a red": "b red", "b red": "a blue"})
  np.testing.assert_allclose(other(None, None, ["a red", "b red"])["other_completion"], [0.6, 0.3])
