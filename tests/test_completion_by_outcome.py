"""bench/completion_by_outcome.py: per-task offsets are told apart from a failure to rank within a task."""
import pytest

from tests.fixtures_bench import completion_export as _workdir
from tests.fixtures_bench import load_bench

cbo = load_bench("completion_by_outcome")


def test_a_task_offset_lowers_the_pooled_auc_but_not_the_within_task_one(tmp_path):
  # Task "high" answers yes readily (0.7 / 0.8), task "low" rarely (0.1 / 0.2): within each task every success is
  # above every failure, but the high task's failures are above the low task's successes.
  tasks = ["high"] * 4 + ["low"] * 4
  successes = [True, True, False, False] * 2
  finals = [0.8, 0.8, 0.7, 0.7, 0.2, 0.2, 0.1, 0.1]
  modes = ["clean", "clean", "drop", "stall"] * 2
  s = cbo.summary(cbo.outcomes(_workdir(tmp_path, finals, tasks, successes, modes)))
  assert s["within_task_auc"] == 1.0
  assert s["pooled_auc"] == pytest.approx(0.75)  # 12 of 16 success-failure pairs ranked right
  assert s["per_task"]["high"]["outcomes"] == {"drop": (0.7, 1), "stall": (0.7, 1), "success": (0.8, 2)}
  # The first scored frame is 0.5 everywhere, so the anchored readout ranks as the final one does.
  assert s["anchored_auc"] == pytest.approx(s["pooled_auc"])


def test_failures_ranked_above_successes_show_within_the_task(tmp_path):
  tasks = ["only"] * 4
  successes = [True, True, False, False]
  modes = ["clean"] * 2 + ["drop"] * 2
  s = cbo.summary(cbo.outcomes(_workdir(tmp_path, [0.2, 0.3, 0.6, 0.7], tasks, successes, modes)))
  assert s["within_task_auc"] == 0.0 and s["pooled_auc"] == 0.0


def test_export_and_episodes_that_disagree_are_a_one_line_error(tmp_path):
  w = _workdir(tmp_path, [0.2, 0.7], ["t", "t"], [False, True], ["drop", "clean"], extra_meta=1)
  with pytest.raises(SystemExit, match="2 episodes in the completion export, 3 in heldout.npz"):
    cbo.outcomes(w)


def test_an_extra_evaluation_set_is_read_from_its_own_folder(tmp_path):
  w = _workdir(tmp_path, [0.9, 0.1], ["t", "t"], [True, False], ["clean", "wrong_object"],
               folder="eval_in_distribution", episodes="episodes.npz")
  rows = cbo.outcomes(w, "in_distribution")
  assert [r["outcome"] for r in rows] == ["success", "wrong_object"]
  with pytest.raises(SystemExit, match="heldout.npz: no evaluation episodes"):  # the held-out set is not there
    cbo.outcomes(w)
