"""Is run A's held-out VOC (or completion AUC, or direction) better than run B's? A paired test over the same episodes.

  python bench/paired_voc.py W_A W_B [--mode=progress|completion|completion_auc|completion_auc_within|direction]
                             [--resamples=10000]
  python bench/paired_voc.py W_A0,W_A1,W_A2 W_B0,W_B1,W_B2 [--mode=...]     # several seeds per arm
  python bench/paired_voc.py W_A W_B --eval_set=in_distribution              # another evaluation set of the runs

W_A and W_B are workdirs of two `reward_model` runs that scored the same held-out episodes (same eval config and
seed: W/eval/heldout.npz identical). Each run's bootstrap interval in `metrics.json` resamples episodes on its own,
so two runs' intervals can overlap while one model is better on most of the very same episodes. This reads both
runs' open-loop exports (`W/eval/openloop/<mode>/vlm_scores.json`, the paper's layout), checks that they hold the
same episodes, and prints each run's metric, the difference with a 95% paired bootstrap interval (the same episode
draws for both runs) and, for the VOC modes, a Wilcoxon signed-rank p-value over the episodes.
A difference (either way) is reported only when the interval excludes 0 (*and* p < 0.05 where there is a p).

Modes:
- progress / completion: VOC over the successful episodes (`success_once`, as the paper's script counts them); each
  episode has its own term (Spearman of its scores against frame order; a constant scores 0).
- completion_auc: the completion ROC-AUC of `metrics.json` (the final scored frame's P(yes) against the episode's
  success, all episodes). Draws without both classes are redrawn. The success is read as the last oracle step's
  `success`; the script checks that this reproduces each run's `metrics.json` AUC.
- completion_auc_within: the same AUC computed within each task, then averaged over the tasks (the ranking a reward
  gives at RL time, where it only compares rollouts of one task; `bench/completion_by_outcome.py` prints it per task).
  Its bootstrap resamples the episodes within each task; a task whose draw lacks one class sits that draw out.
- direction: the balanced direction accuracy of `metrics.json` (the contrastive answer between consecutive reward
  queries against the oracle's change; `W/eval/openloop/comparison`); each draw pools the drawn episodes' pairs, as
  the metric does. The oracle's change at the query frames is read from `W/eval/heldout.npz`; checked against
  `metrics.json`.

`--eval_set=NAME` compares the runs on another evaluation set (`W/eval_NAME/`: its export, its episodes in
`episodes.npz`, its metrics under `other_sets` of `W/eval/metrics.json`) instead of the held-out tasks.

Several seeds: comma-separated workdirs, the i-th of A paired with the i-th of B (e.g. a lever and its control
trained with the same `--config.seed`). A single seed's swing can be as large as the lever (bench/RESULTS.md, "A
contrastive warm-up"), so the pooled difference is the mean over the seed pairs, and its bootstrap resamples the seed
pairs as well as the episodes (two levels): its interval carries the seed-to-seed spread, not only the episodes'.
The signed-rank test takes each episode's term averaged over the seeds. Each seed pair is printed too, and how many
of them A wins: with 2-4 seeds the seed level of the bootstrap has few distinct draws and understates the spread
between seeds, so read a pooled "A better" together with those per-seed signs.
"""
import argparse
import json
import os

import numpy as np
import scipy.stats

from lrm_jax.eval import metrics
from lrm_jax.eval import reward_eval


def verdict(lo: float, hi: float, significant: bool = True) -> str:
  """Either direction counts: an interval above 0 says A is better, one below 0 that B is."""
  if significant and lo > 0:
    return "A better"
  if significant and hi < 0:
    return "B better"
  return "no measured difference"


def eval_dir(workdir: str, eval_set: str = "") -> tuple[str, str]:
  """(the evaluation folder, its episodes file): the held-out set's, or the named extra set's."""
  if not eval_set:
    return os.path.join(workdir, "eval"), "heldout.npz"
  return os.path.join(workdir, f"eval_{eval_set}"), "episodes.npz"


def load(workdir: str, mode: str, eval_set: str = "") -> list[dict]:
  """The trajectories of a run's open-loop export for `mode`, from its held-out evaluation or the named extra set."""
  path = os.path.join(eval_dir(workdir, eval_set)[0], "openloop", mode, "vlm_scores.json")
  if not os.path.exists(path):
    raise SystemExit(f"{path}: no open-loop export; expected the workdir of a finished reward_model run")
  with open(path) as f:
    return json.load(f)["trajectories"]


def episode_meta(workdir: str, eval_set: str = "") -> list[dict]:
  """The evaluation episodes' meta (task, noise, ...) from the set's episodes file."""
  npz = os.path.join(*eval_dir(workdir, eval_set))
  if not os.path.exists(npz):
    raise SystemExit(f"{npz}: no evaluation episodes; expected the workdir of a finished reward_model run")
  with np.load(npz) as z:
    return json.loads(str(z["meta"]))


def check_same_episodes(workdir: str, eval_set: str, n_export: int, n_meta: int):
  folder, episodes = eval_dir(workdir, eval_set)
  if n_export != n_meta:
    raise SystemExit(f"{folder}: {n_export} episodes in the completion export, {n_meta} in {episodes}; expected the "
                     "same episodes")


def within_task_auc(scores: np.ndarray, labels: np.ndarray, tasks: np.ndarray) -> float:
  """The mean over tasks of each task's own ROC-AUC (tasks without both classes are left out; NaN if none has)."""
  aucs = [metrics.roc_auc(scores[tasks == t], labels[tasks == t]) for t in np.unique(tasks)
          if 0 < labels[tasks == t].sum() < (tasks == t).sum()]
  return float(np.mean(aucs)) if aucs else float("nan")


def reported(workdir: str, key: str, eval_set: str = "") -> float:
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:  # every set's metrics are in the held-out set's file
    m = json.load(f)
  return (m["other_sets"][eval_set] if eval_set else m)["models"]["lrm"][key]


def per_episode_order(traj: dict) -> float:
  """The episode's own VOC term (Spearman of its scores against frame order; a constant scores 0)."""
  return metrics.voc([[s["vlm_completion_score"] for s in traj["completion_scores"]]])


def final_completion(trajs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
  """(final scored frame's P(yes), success at the episode's end) per episode."""
  return (np.array([t["completion_scores"][-1]["vlm_completion_score"] for t in trajs]),
          np.array([t["oracle_steps"][-1]["success"] for t in trajs]))


class Scorer:
  """One run's metric over any draw of episode indices: `episodes` identifies the episodes (runs must agree),
  `n` is how many the draws index, `terms` (VOC modes) the per-episode terms, `labels` (AUC) the classes, `strata`
  (within-task AUC) the task of each episode, within which the draws resample."""

  def __init__(self, workdir: str, mode: str, eval_set: str = ""):
    self.workdir, self.eval_set, self.terms, self.labels, self.strata = workdir, eval_set, None, None, None
    export = {"completion_auc": "completion", "completion_auc_within": "completion", "direction": "comparison"}
    trajs = load(workdir, export.get(mode, mode), eval_set)
    self.episodes, self.n = [t["oracle_steps"] for t in trajs], len(trajs)
    if mode == "completion_auc":
      scores, self.labels = final_completion(trajs)
      self.score = lambda ix: metrics.roc_auc(scores[ix], self.labels[ix])
      self.check("completion_auc", "(the export's success labels differ from the evaluation's)")
    elif mode == "completion_auc_within":
      scores, self.labels = final_completion(trajs)
      meta = episode_meta(workdir, eval_set)
      check_same_episodes(workdir, eval_set, len(trajs), len(meta))
      self.strata = np.array([m["task"] for m in meta])
      self.score = lambda ix: within_task_auc(scores[ix], self.labels[ix], self.strata[ix])
    elif mode == "direction":
      pairs = direction_pairs(workdir, trajs, eval_set)
      self.score = lambda ix: metrics.direction_balanced_accuracy(
          *(np.concatenate([pairs[i][k] for i in ix]) for k in (0, 1)))
      self.check("direction_balanced_accuracy")
    else:
      self.terms = np.array([per_episode_order(t) for t in trajs if t["summary"]["success_once"]])
      self.score = lambda ix: float(self.terms[ix].mean())
      self.n = len(self.terms)  # draws index the successful episodes

  def check(self, key: str, why: str = ""):
    mine, theirs = self.score(np.arange(self.n)), reported(self.workdir, key, self.eval_set)
    if abs(mine - theirs) > 1e-6:
      raise SystemExit(f"{self.workdir}: {key} {mine:.4f} from the export, {theirs:.4f} in metrics.json; expected "
                       f"equal {why}".rstrip())


def direction_pairs(workdir: str, trajs: list[dict], eval_set: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
  """Per episode: (the contrastive score of each consecutive query pair, the oracle's change over it)."""
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:
    interval = int(json.load(f)["interval"])  # one query interval for every set
  folder, name = eval_dir(workdir, eval_set)
  episodes = np.load(os.path.join(folder, name))  # the evaluation's own oracle progress
  out = []
  for i, t in enumerate(trajs):
    oracle = episodes[f"{i}/oracle"].astype(np.float64)
    idx = reward_eval.query_indices(len(oracle), interval)  # the frames the evaluation scored
    pred = np.array([s["vlm_comparison_score"] for s in t["comparison_scores"]])[-(len(idx) - 1):]
    out.append((pred, np.diff(oracle[idx])))
  return out


def draw(rng, n: int, labels, strata=None):
  """Episode indices with replacement (within each stratum, when given); an AUC needs both classes in the draw (in
  at least one stratum)."""
  while True:
    if strata is None:
      ix = rng.integers(0, n, n)
      if labels is None or 0 < labels[ix].sum() < n:
        return ix
    else:
      groups = [np.flatnonzero(strata == t) for t in np.unique(strata)]
      ix = np.concatenate([rng.choice(g, len(g)) for g in groups])
      if any(0 < labels[d].sum() < len(d) for d in np.split(ix, np.cumsum([len(g) for g in groups])[:-1])):
        return ix


def compare(a: list[Scorer], b: list[Scorer], resamples: int, seed: int = 0) -> dict:
  """The mean over seed pairs of A - B, with a bootstrap over seed pairs (when there are several) and episodes."""
  for s in a[1:] + b:
    if s.episodes != a[0].episodes or (s.strata is not None and list(s.strata) != list(a[0].strata)):
      raise SystemExit(f"{a[0].workdir} and {s.workdir}: different evaluation episodes; expected the same eval "
                       "config and seed")
  full, k = np.arange(a[0].n), len(a)
  per_pair = [(sa.score(full), sb.score(full)) for sa, sb in zip(a, b)]
  rng = np.random.default_rng(seed)
  boot = []
  for _ in range(resamples):
    pairs = rng.integers(0, k, k) if k > 1 else [0]
    ix = draw(rng, a[0].n, a[0].labels, a[0].strata)
    boot.append(np.mean([a[j].score(ix) - b[j].score(ix) for j in pairs]))
  lo, hi = np.percentile(boot, [2.5, 97.5])
  out = dict(per_pair=per_pair, diff=float(np.mean([x - y for x, y in per_pair])), lo=lo, hi=hi, p=None)
  if a[0].terms is not None:  # a per-episode term: the signed-rank test on the seed-averaged terms
    ta, tb = np.mean([s.terms for s in a], axis=0), np.mean([s.terms for s in b], axis=0)
    d = ta - tb
    out.update(p=float(scipy.stats.wilcoxon(ta, tb).pvalue) if np.any(d) else 1.0, higher=int((d > 0).sum()))
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("a", help="workdir of run A, or comma-separated workdirs (one per seed)")
  p.add_argument("b", help="workdir of run B, or comma-separated workdirs paired with A's")
  p.add_argument("--mode", default="progress",
                 choices=["progress", "completion", "completion_auc", "completion_auc_within", "direction"])
  p.add_argument("--resamples", type=int, default=10000)
  p.add_argument("--eval_set", default="", help="an extra evaluation set (in_distribution, other_look); default: "
                 "the held-out tasks")
  args = p.parse_args()
  wa, wb = args.a.split(","), args.b.split(",")
  if len(wa) != len(wb):
    raise SystemExit(f"{len(wa)} workdirs for A and {len(wb)} for B; expected one B per A (the same seeds)")
  a, b = ([Scorer(w, args.mode, args.eval_set) for w in ws] for ws in (wa, wb))
  r = compare(a, b, args.resamples)
  what = {"completion_auc": "completion AUC", "completion_auc_within": "completion AUC within each task",
          "direction": "balanced direction accuracy"}.get(args.mode, "VOC")
  print(f"{a[0].n} {'successful ' if a[0].terms is not None else ''}episodes, {len(a)} seed pair(s): {what}")
  for x, y, (va, vb) in zip(wa, wb, r["per_pair"]):
    print(f"  A {va:.3f} ({x})  B {vb:.3f} ({y})  A - B {va - vb:+.3f}")
  boot = "two-level paired bootstrap: seed pairs and episodes" if len(a) > 1 else "paired bootstrap"
  if len(a) > 1:
    print(f"  A ahead on {sum(x > y for x, y in r['per_pair'])}/{len(a)} seed pairs")
  line = f"A - B: {r['diff']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] (95% {boot})"
  if r["p"] is not None:
    line += f"; A higher on {r['higher']}/{a[0].n}; Wilcoxon p = {r['p']:.3f}"
  print(f"{line} -> {verdict(r['lo'], r['hi'], r['p'] is None or r['p'] < 0.05)}")


if __name__ == "__main__":
  main()
