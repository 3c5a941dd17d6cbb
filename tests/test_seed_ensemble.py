"""bench/seed_ensemble.py: is the members' mean progress a better-ordered reward than one member's?

Synthetic progress exports (tests/fixtures_bench.py): members share the frame order and differ in their noise, so
averaging them must raise the per-episode order (VOC) above the members' mean; identical members must change
nothing."""
import json
import os

import pytest

from tests.fixtures_bench import load_bench, progress_export

seed_ensemble = load_bench("seed_ensemble")


def test_members_with_independent_noise_give_a_measured_gain_over_their_mean(tmp_path):
  members = [progress_export(tmp_path, f"m{s}", 1.0, seed=s, noise=0.4) for s in range(4)]
  d, lo, hi = seed_ensemble.voc_gain(*seed_ensemble.progress_terms(members), resamples=500)
  assert lo > 0 and lo <= d <= hi


def test_identical_members_are_no_gain(tmp_path):
  w = progress_export(tmp_path, "same", 1.0, seed=0)
  assert seed_ensemble.voc_gain(*seed_ensemble.progress_terms([w, w]), resamples=200) == pytest.approx((0.0, 0.0, 0.0))


def other_episodes(workdir: str) -> str:
  """The workdir, its progress export now over a different first episode (another oracle reward)."""
  path = os.path.join(workdir, "eval", "openloop", "progress", "vlm_scores.json")
  with open(path) as f:
    d = json.load(f)
  d["trajectories"][0]["oracle_steps"][0]["oracle_reward"] = 1.0
  with open(path, "w") as f:
    json.dump(d, f)
  return workdir


def test_members_that_scored_different_episodes_are_a_one_line_error(tmp_path):
  a = progress_export(tmp_path, "a", 1.0, seed=0)
  b = other_episodes(progress_export(tmp_path, "b", 1.0, seed=1))
  with pytest.raises(SystemExit, match="different held-out episodes"):
    seed_ensemble.progress_terms([a, b])


def test_versus_pairs_two_ensembles_and_finds_the_better_ordered_one(tmp_path):
  sharp = [progress_export(tmp_path, f"sharp{s}", 1.0, seed=s, noise=0.3) for s in range(3)]
  blurred = [progress_export(tmp_path, f"blurred{s}", 0.2, seed=10 + s, noise=0.3) for s in range(3)]
  a, b = seed_ensemble.versus_terms(sharp, blurred)
  d, lo, hi = seed_ensemble.voc_gain(a, b, resamples=500)
  assert lo > 0 and a.mean() > b.mean()
  d, lo, hi = seed_ensemble.voc_gain(b, a, resamples=500)  # and the other way round, the interval is below 0
  assert hi < 0


def test_versus_groups_over_other_episodes_are_a_one_line_error(tmp_path):
  a = [progress_export(tmp_path, f"a{s}", 1.0, seed=s) for s in range(2)]
  b = [other_episodes(progress_export(tmp_path, f"b{s}", 1.0, seed=s)) for s in range(2)]
  with pytest.raises(SystemExit, match="different held-out episodes"):
    seed_ensemble.versus_terms(a, b)


def test_a_versus_group_of_one_is_a_one_line_error():
  with pytest.raises(SystemExit, match="x: one workdir; expected a comma-separated group"):
    seed_ensemble.groups(["a,b", "--versus=x"])


def test_two_versus_groups_or_none_to_compare_are_one_line_errors():
  with pytest.raises(SystemExit, match="--versus given 2 times"):
    seed_ensemble.groups(["a,b", "--versus=c,d", "--versus=e,f"])
  with pytest.raises(SystemExit, match="no group of workdirs besides --versus"):
    seed_ensemble.groups(["--versus=c,d"])
