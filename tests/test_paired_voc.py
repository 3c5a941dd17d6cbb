"""bench/paired_voc.py: the paired test between two reward models' open-loop exports, one or several seeds per arm.

Synthetic exports in the paper's layout (W/eval/openloop/progress/vlm_scores.json): each episode's scores are a
mix of its frame order and noise, so the per-episode VOC term is known to be higher where the order weighs more."""
import json
import os

import numpy as np
import pytest

from tests.fixtures_bench import completion_export, load_bench, progress_export as export

paired_voc = load_bench("paired_voc")


def run(capsys, *argv) -> str:
  import sys
  old = sys.argv
  sys.argv = ["paired_voc.py", *argv, "--resamples=500"]
  try:
    paired_voc.main()
  finally:
    sys.argv = old
  return capsys.readouterr().out


def test_several_seeds_pool_the_per_seed_differences_and_find_a_clear_gain(tmp_path, capsys):
  good = [export(tmp_path, f"good{s}", 1.0, 10 + s) for s in range(3)]
  bad = [export(tmp_path, f"bad{s}", 0.0, 20 + s) for s in range(3)]
  a = [paired_voc.Scorer(w, "progress") for w in good]
  b = [paired_voc.Scorer(w, "progress") for w in bad]
  assert a[0].n == 16  # the successful episodes only
  r = paired_voc.compare(a, b, resamples=500)
  per_seed = [x - y for x, y in r["per_pair"]]
  assert r["diff"] == pytest.approx(np.mean(per_seed))
  assert r["lo"] <= r["diff"] <= r["hi"]
  out = run(capsys, ",".join(good), ",".join(bad))
  assert "3 seed pair(s)" in out and "A ahead on 3/3 seed pairs" in out
  assert out.strip().endswith("-> A better")
  out = run(capsys, ",".join(bad), ",".join(good))
  assert out.strip().endswith("-> B better")


def test_a_run_against_itself_is_no_difference(tmp_path, capsys):
  w = export(tmp_path, "same", 0.5, 0)
  out = run(capsys, w, w)
  assert "A - B: +0.000 [+0.000, +0.000]" in out and out.strip().endswith("-> no measured difference")


def test_unpaired_seed_lists_and_different_episodes_are_one_line_errors(tmp_path, capsys):
  a0, a1, b0 = (export(tmp_path, n, 1.0, i) for i, n in enumerate(("a0", "a1", "b0")))
  with pytest.raises(SystemExit, match="2 workdirs for A and 1 for B; expected one B per A"):
    run(capsys, f"{a0},{a1}", b0)
  other = os.path.join(str(tmp_path), "other", "eval", "openloop", "progress", "vlm_scores.json")
  os.makedirs(os.path.dirname(other))
  with open(os.path.join(a0, "eval", "openloop", "progress", "vlm_scores.json")) as f:
    d = json.load(f)
  d["trajectories"][0]["oracle_steps"][0]["oracle_reward"] = 1.0
  with open(other, "w") as f:
    json.dump(d, f)
  with pytest.raises(SystemExit, match="different evaluation episodes"):
    run(capsys, a0, os.path.join(str(tmp_path), "other"))


def test_an_extra_evaluation_set_is_compared_from_its_own_folder(tmp_path, capsys):
  """Two runs alike on the held-out tasks and apart in distribution: --eval_set reads eval_<set>/, not eval/."""
  a, b = export(tmp_path, "a", 0.5, 7), export(tmp_path, "b", 0.5, 7)
  export(tmp_path, "a", 1.0, 8, eval_set="in_distribution")
  export(tmp_path, "b", 0.0, 9, eval_set="in_distribution")
  assert run(capsys, a, b).strip().endswith("-> no measured difference")
  assert run(capsys, a, b, "--eval_set=in_distribution").strip().endswith("-> A better")
  with pytest.raises(SystemExit, match="eval_other_look.*no open-loop export"):
    run(capsys, a, b, "--eval_set=other_look")


def test_within_task_completion_ranks_each_task_on_its_own(tmp_path, capsys):
  """A ranks every task's successes above its failures, B every failure above the successes. Both answer "yes" far
  more readily for task "high" than for "low", which the pooled AUC would mix in; within each task they are 1 and 0."""
  tasks, successes = ["high"] * 8 + ["low"] * 8, [True, False] * 8
  modes = ["clean" if s else "drop" for s in successes]
  finals_a = [0.8 if s else 0.7 for s in successes[:8]] + [0.2 if s else 0.1 for s in successes[8:]]
  finals_b = [0.7 if s else 0.8 for s in successes[:8]] + [0.1 if s else 0.2 for s in successes[8:]]
  a = completion_export(tmp_path / "a", finals_a, tasks, successes, modes)
  b = completion_export(tmp_path / "b", finals_b, tasks, successes, modes)
  out = run(capsys, a, b, "--mode=completion_auc_within")
  assert "A 1.000" in out and "B 0.000" in out and out.strip().endswith("-> A better"), out
  assert run(capsys, a, a, "--mode=completion_auc_within").strip().endswith("-> no measured difference")
  # Its draws resample within each task: every draw keeps each task's episode count.
  strata, labels = np.array(tasks), np.array(successes)
  rng = np.random.default_rng(0)
  for _ in range(20):
    ix = paired_voc.draw(rng, len(tasks), labels, strata)
    assert (strata[ix][:8] == "high").all() and (strata[ix][8:] == "low").all()
  # Runs whose episodes are other tasks are not paired.
  c = completion_export(tmp_path / "c", finals_b, ["low"] * 8 + ["high"] * 8, successes, modes)
  with pytest.raises(SystemExit, match="different evaluation episodes"):
    run(capsys, a, c, "--mode=completion_auc_within")
