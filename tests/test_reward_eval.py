"""Held-out reward evaluation: query schedule, and metrics that reward a perfect scorer and punish a reversed one."""
import os

import numpy as np
import pytest

from lrm_jax.eval import reward_eval


def _episodes():
  """Frames carry their own oracle progress in pixel [0,0,0] (x 200), so a score function can read it back."""
  eps = []
  for i, (n, success) in enumerate([(23, True), (31, True), (17, False), (25, False)]):
    oracle = np.linspace(0, 1 if success else 0.5, n) ** (1 + i % 2)
    if not success:
      oracle[n // 2:] = oracle[n // 2]  # failed: stalls halfway
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = np.round(oracle * 200).astype(np.uint8)
    eps.append(dict(images=images, oracle=oracle, success=success, task="two_on_plate", noise="clean",
                    instruction="put both cubes on the plate"))
  return eps


def _oracle_fn(sign):
  def fn(a, b, instructions):
    pa, pb = a[:, 0, 0, 0] / 200.0, b[:, 0, 0, 0] / 200.0
    return dict(progress=sign * pb, completion=sign * (pb > 0.95), contrastive=np.sign(sign * (pb - pa)))
  return fn


def test_query_indices_every_k_and_the_last_frame():
  assert list(reward_eval.query_indices(23, 10)) == [0, 10, 20, 22]
  assert list(reward_eval.query_indices(21, 10)) == [0, 10, 20]


def test_scored_episodes_follow_the_interval_hold_schedule():
  scored = reward_eval.score_episodes(_oracle_fn(1), _episodes(), interval=5, batch_size=7)
  assert [list(s["t"][:3]) for s in scored] == [[0, 5, 10]] * 4
  for s, ep in zip(scored, _episodes()):
    np.testing.assert_allclose(s["progress"], np.round(ep["oracle"][s["t"]] * 200) / 200)


def test_metrics_of_a_perfect_and_a_reversed_scorer():
  good = reward_eval.reward_metrics(reward_eval.score_episodes(_oracle_fn(1), _episodes(), 5, 8), bootstrap=50)
  bad = reward_eval.reward_metrics(reward_eval.score_episodes(_oracle_fn(-1), _episodes(), 5, 8), bootstrap=50)
  assert good["voc"] == pytest.approx(1.0) and bad["voc"] == pytest.approx(-1.0)
  assert good["completion_auc"] == 1.0 and bad["completion_auc"] == 0.0
  assert good["direction_accuracy"] == 1.0 and bad["direction_accuracy"] == 0.0
  assert good["kendall_tau"] > 0.9 and good["progress_recall"] == 1.0
  assert good["voc_ci"][0] <= 1.0 <= good["voc_ci"][1] + 1e-9
  assert good["signals"]["direction"] == "contrastive"


def test_a_constant_later_is_closer_answer_scores_the_base_rate_and_one_half_balanced():
  eps = _episodes()
  undone = eps[3]["oracle"].copy()
  undone[-8:] = np.linspace(undone[-9], 0.0, 8)  # the failed episode undoes its progress at the end
  eps[3] = dict(eps[3], oracle=undone)
  eps[3]["images"][:, 0, 0, 0] = np.round(undone * 200).astype(np.uint8)
  later = lambda a, b, instructions: dict(progress=b[:, 0, 0, 0] / 200.0, completion=b[:, 0, 0, 0] / 200.0,
                                          contrastive=np.ones(len(a)))
  m = reward_eval.reward_metrics(reward_eval.score_episodes(later, eps, 5, 8), bootstrap=50)
  assert 0.5 < m["direction_oracle_up_share"] < 1.0
  assert m["direction_accuracy"] == pytest.approx(m["direction_oracle_up_share"])
  assert m["direction_balanced_accuracy"] == pytest.approx(0.5)
  good = reward_eval.reward_metrics(reward_eval.score_episodes(_oracle_fn(1), eps, 5, 8), bootstrap=50)
  assert good["direction_balanced_accuracy"] == 1.0 and good["direction_balanced_accuracy_ci"][1] == 1.0


def test_constant_answers_are_flagged():
  """The demo's old model said ~0.57 progress and "B" everywhere; the metrics must say so, not only score it."""
  def flat(a, b, instructions):
    n = len(a)
    return dict(progress=np.full(n, 0.57), completion=np.full(n, 0.2) + 0.001 * b[:, 0, 0, 0] / 200.0,
                contrastive=np.full(n, -0.3))
  m = reward_eval.reward_metrics(reward_eval.score_episodes(flat, _episodes(), 5, 8), bootstrap=20)
  assert m["constant_answers"] == ["progress", "completion", "direction"]
  assert m["direction_positive_share"] == 0.0 and m["answer_std"]["progress"] == pytest.approx(0.0)
  good = reward_eval.reward_metrics(reward_eval.score_episodes(_oracle_fn(1), _episodes(), 5, 8), bootstrap=20)
  assert good["constant_answers"] == [] and 0.02 < good["direction_positive_share"] < 0.98
  # A similarity-only baseline is not judged on an absolute spread (its units are its own).
  sim = reward_eval.reward_metrics(reward_eval.score_episodes(
      lambda a, b, t: dict(similarity=0.001 * b[:, 0, 0, 0] / 200.0), _episodes(), 5, 8), bootstrap=20)
  assert sim["constant_answers"] == []


def test_similarity_only_models_are_judged_on_their_score():
  def sim(a, b, instructions):
    return dict(similarity=b[:, 0, 0, 0] / 200.0)
  m = reward_eval.reward_metrics(reward_eval.score_episodes(sim, _episodes(), 5, 8), bootstrap=20)
  assert m["signals"] == {"progress": "similarity", "completion": "similarity", "direction": "delta similarity"}
  assert m["voc"] == pytest.approx(1.0) and "progress_mae" not in m
  with pytest.raises(ValueError, match="scored"):
    reward_eval.reward_metrics([])


def test_pixel_change_baseline_scores_change_from_the_first_frame():
  scored = reward_eval.score_pixel_change(_episodes(), interval=5)
  for s, ep in zip(scored, _episodes()):
    expected = np.round(ep["oracle"][s["t"]] * 200) / 255.0 / (4 * 4 * 3)  # one channel of one pixel moves
    np.testing.assert_allclose(s["similarity"], expected, atol=1e-6)
  m = reward_eval.reward_metrics(scored, bootstrap=20)
  assert m["signals"]["progress"] == "similarity" and m["voc"] > 0.9  # here pixel change *is* the oracle


def test_openloop_export_writes_the_papers_score_file_layout(tmp_path):
  import json
  from lrm_jax.eval import openloop_export
  eps = _episodes()
  scored = reward_eval.score_episodes(_oracle_fn(1), eps, interval=5, batch_size=8)
  paths = openloop_export.export(scored, eps, str(tmp_path))
  assert sorted(os.path.relpath(p, tmp_path) for p in paths) == [
      "comparison/vlm_scores.json", "completion/vlm_scores.json", "progress/vlm_scores.json"]
  files = {p.split(os.sep)[-2]: json.load(open(p)) for p in paths}
  for mode, f in files.items():
    assert f["mode"] == mode and len(f["trajectories"]) == len(eps)
  for traj, s, ep in zip(files["progress"]["trajectories"], scored, eps):
    assert len(traj["oracle_steps"]) == len(ep["images"]) - 1  # one per env step
    assert traj["oracle_steps"][-1]["cumulative_reward"] == pytest.approx(ep["oracle"][-1] - ep["oracle"][0])
    assert traj["summary"]["success_once"] == ep["success"]
    assert [c["vlm_completion_score"] for c in traj["completion_scores"]] == pytest.approx(list(s["progress"]))
  comp = files["comparison"]["trajectories"][0]["comparison_scores"]
  assert len(comp) == len(scored[0]["t"]) - 1 and {c["vlm_comparison_score"] for c in comp} <= {-1, 0, 1}
  # What the paper's script computes from the file: ROC-AUC of the last completion score vs success.
  last = np.array([t["completion_scores"][-1]["vlm_completion_score"] for t in files["completion"]["trajectories"]])
  success = np.array([t["summary"]["success_once"] for t in files["completion"]["trajectories"]])
  assert reward_eval.M.roc_auc(last, success) == reward_eval.reward_metrics(scored, bootstrap=10)["completion_auc"]
