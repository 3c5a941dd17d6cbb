"""Where does a reward model's completion answer go wrong? Final P(yes) per held-out task and outcome.

  python bench/completion_by_outcome.py W [W2 ...] [--eval_set=in_distribution|other_look]

The evaluation's completion ROC-AUC pools the episodes of all held-out tasks. It can be low for two different
reasons, which call for different levers: the model ranks a task's failures above its successes (it does not read
the goal), or it ranks within each task well but answers "yes" more readily for one task than another (its per-task
offsets mix the ranking). At RL time a reward only ranks rollouts of one task, so the second matters less. For each
workdir of a finished `reward_model` run this reads its held-out episodes (`W/eval/heldout.npz`: task, success,
failure mode) and its open-loop completion export (`W/eval/openloop/completion/vlm_scores.json`, the final scored
frame's P(yes), as the AUC of `metrics.json` uses it), and prints, per task, the mean final P(yes) of the successes
and of each failure mode and the task's own AUC; then the pooled AUC (checked against `metrics.json`), the mean of the
per-task AUCs, and the AUC of an anchored readout (final P(yes) minus the episode's first scored frame's).
`--eval_set=NAME` reads another evaluation set of the run instead (`W/eval_NAME/`, its episodes in `episodes.npz`).
"""
import argparse
import collections

import numpy as np

import paired_voc  # bench/: the open-loop export reader
from lrm_jax.eval import metrics


def outcomes(workdir: str, eval_set: str = "") -> list[dict]:
  """Per episode of the evaluation set: task, outcome ("success" or the failure mode), final and first P(yes)."""
  meta = paired_voc.episode_meta(workdir, eval_set)
  trajs = paired_voc.load(workdir, "completion", eval_set)
  paired_voc.check_same_episodes(workdir, eval_set, len(trajs), len(meta))
  rows = []
  for m, t in zip(meta, trajs):
    success = bool(t["oracle_steps"][-1]["success"])
    scores = [s["vlm_completion_score"] for s in t["completion_scores"]]
    rows.append(dict(task=m["task"], outcome="success" if success else m["noise"], success=success,
                     final=float(scores[-1]), first=float(scores[0])))
  return rows


def _auc(rows: list[dict], key=lambda r: r["final"]) -> float:
  return metrics.roc_auc(np.array([key(r) for r in rows]), np.array([r["success"] for r in rows]))


def summary(rows: list[dict]) -> dict:
  """Per task: mean final P(yes) per outcome and the task's AUC; overall: pooled, mean per-task and anchored AUC."""
  tasks = collections.defaultdict(list)
  for r in rows:
    tasks[r["task"]].append(r)
  per_task = {}
  for task, rs in sorted(tasks.items()):
    by = collections.defaultdict(list)
    for r in rs:
      by[r["outcome"]].append(r["final"])
    per_task[task] = dict(auc=_auc(rs), outcomes={o: (float(np.mean(v)), len(v)) for o, v in sorted(by.items())})
  within = [t["auc"] for t in per_task.values() if np.isfinite(t["auc"])]
  return dict(per_task=per_task, pooled_auc=_auc(rows), within_task_auc=float(np.mean(within)) if within else np.nan,
              anchored_auc=_auc(rows, key=lambda r: r["final"] - r["first"]))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdirs", nargs="+")
  p.add_argument("--eval_set", default="", help="an extra evaluation set (in_distribution, other_look); default: "
                 "the held-out tasks")
  args = p.parse_args()
  for w in args.workdirs:
    s = summary(outcomes(w, args.eval_set))
    reported = paired_voc.reported(w, "completion_auc", args.eval_set)
    if abs(s["pooled_auc"] - reported) > 1e-6:
      raise SystemExit(f"{w}: pooled AUC {s['pooled_auc']:.4f} from the export, {reported:.4f} in metrics.json; "
                       "expected equal")
    print(f"{w}: completion AUC pooled {s['pooled_auc']:.3f}, mean within task {s['within_task_auc']:.3f}, "
          f"anchored (final - first) {s['anchored_auc']:.3f}")
    for task, t in s["per_task"].items():
      parts = "  ".join(f"{o} {m:.2f} (n={n})" for o, (m, n) in t["outcomes"].items())
      print(f"  {task}: AUC {t['auc']:.3f}; mean final P(yes): {parts}")


if __name__ == "__main__":
  main()
