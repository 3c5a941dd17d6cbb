"""Is run A's held-out VOC (or completion AUC) better than run B's? A paired test over the same episodes.

  python bench/paired_voc.py W_A W_B [--mode=progress|completion|completion_auc|direction] [--resamples=10000]

W_A and W_B are workdirs of two `reward_model` runs that scored the same held-out episodes (same eval config and
seed: W/eval/heldout.npz identical). Each run's bootstrap interval in `metrics.json` resamples episodes on its own,
so two runs' intervals can overlap while one model is better on most of the very same episodes. This reads both
runs' open-loop exports (`W/eval/openloop/<mode>/vlm_scores.json`, the paper's layout), checks that they hold the
same episodes, and over the successful ones (`success_once`, as the paper's script counts them) prints each run's
VOC, the mean per-episode difference with a 95% paired bootstrap interval, and a Wilcoxon signed-rank p-value.
A difference (either way) is reported only when the interval excludes 0 *and* p < 0.05.

--mode=completion_auc: the completion ROC-AUC of `metrics.json` (the final scored frame's P(yes) against the
episode's success, all episodes), each run's AUC and the difference with a 95% paired bootstrap interval (the same
episode draws for both runs). An AUC has no per-episode term, so there is no signed-rank test: a gain is reported
when the interval excludes 0. The episode's success is read as its last oracle step's `success`; the script checks
that this reproduces each run's `metrics.json` AUC.

--mode=direction: the balanced direction accuracy of `metrics.json` (the contrastive answer between consecutive
reward queries against the oracle's change; `W/eval/openloop/comparison`), with a paired bootstrap over episodes
(each draw pools the drawn episodes' pairs, as the metric does). The oracle's change at the query frames is read
from the evaluation episodes (`W/eval/heldout.npz`); the script checks that this reproduces each run's
`metrics.json`.
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


def load(workdir: str, mode: str) -> list[dict]:
  path = os.path.join(workdir, "eval", "openloop", mode, "vlm_scores.json")
  if not os.path.exists(path):
    raise SystemExit(f"{path}: no open-loop export; expected the workdir of a finished reward_model run")
  with open(path) as f:
    return json.load(f)["trajectories"]


def per_episode_order(traj: dict) -> float:
  """The episode's own VOC term (Spearman of its scores against frame order; a constant scores 0)."""
  return metrics.voc([[s["vlm_completion_score"] for s in traj["completion_scores"]]])


def final_completion(trajs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
  """(final scored frame's P(yes), success at the episode's end) per episode."""
  return (np.array([t["completion_scores"][-1]["vlm_completion_score"] for t in trajs]),
          np.array([t["oracle_steps"][-1]["success"] for t in trajs]))


def paired_auc(args):
  ta, tb = load(args.a, "completion"), load(args.b, "completion")
  if [t["oracle_steps"] for t in ta] != [t["oracle_steps"] for t in tb]:
    raise SystemExit(f"{args.a} and {args.b}: different held-out episodes; expected the same eval config and seed")
  (sa, labels), (sb, _) = final_completion(ta), final_completion(tb)
  auc_a, auc_b = metrics.roc_auc(sa, labels), metrics.roc_auc(sb, labels)
  for workdir, auc in ((args.a, auc_a), (args.b, auc_b)):
    with open(os.path.join(workdir, "eval", "metrics.json")) as f:
      reported = json.load(f)["models"]["lrm"]["completion_auc"]
    if abs(reported - auc) > 1e-6:
      raise SystemExit(f"{workdir}: AUC {auc:.4f} from the export, {reported:.4f} in metrics.json; expected equal "
                       "(the export's success labels differ from the evaluation's)")
  rng = np.random.default_rng(0)
  diffs = []
  while len(diffs) < args.resamples:
    idx = rng.integers(0, len(labels), len(labels))
    if 0 < labels[idx].sum() < len(idx):  # an AUC needs both classes
      diffs.append(metrics.roc_auc(sa[idx], labels[idx]) - metrics.roc_auc(sb[idx], labels[idx]))
  lo, hi = np.percentile(diffs, [2.5, 97.5])
  print(f"{len(labels)} episodes ({int(labels.sum())} successful): completion AUC A {auc_a:.3f}, B {auc_b:.3f}")
  print(f"A - B: {auc_a - auc_b:+.3f} [{lo:+.3f}, {hi:+.3f}] (95% paired bootstrap) -> "
        f"{verdict(lo, hi)}")


def direction_pairs(workdir: str) -> list[tuple[np.ndarray, np.ndarray]]:
  """Per episode: (the contrastive score of each consecutive query pair, the oracle's change over it)."""
  with open(os.path.join(workdir, "eval", "metrics.json")) as f:
    interval = int(json.load(f)["interval"])
  episodes = np.load(os.path.join(workdir, "eval", "heldout.npz"))  # the evaluation's own oracle progress
  out = []
  for i, t in enumerate(load(workdir, "comparison")):
    oracle = episodes[f"{i}/oracle"].astype(np.float64)
    idx = reward_eval.query_indices(len(oracle), interval)  # the frames the evaluation scored
    pred = np.array([s["vlm_comparison_score"] for s in t["comparison_scores"]])[-(len(idx) - 1):]
    out.append((pred, np.diff(oracle[idx])))
  return out


def paired_direction(args):
  ea, eb = direction_pairs(args.a), direction_pairs(args.b)
  if [len(p) for p, _ in ea] != [len(p) for p, _ in eb]:
    raise SystemExit(f"{args.a} and {args.b}: different held-out episodes; expected the same eval config and seed")
  acc = lambda eps, ix: metrics.direction_balanced_accuracy(*(np.concatenate([eps[i][k] for i in ix]) for k in (0, 1)))
  full = np.arange(len(ea))
  for workdir, eps in ((args.a, ea), (args.b, eb)):
    with open(os.path.join(workdir, "eval", "metrics.json")) as f:
      reported = json.load(f)["models"]["lrm"]["direction_balanced_accuracy"]
    if abs(reported - acc(eps, full)) > 1e-6:
      raise SystemExit(f"{workdir}: balanced direction {acc(eps, full):.4f} from the export, {reported:.4f} in "
                       "metrics.json; expected equal")
  rng = np.random.default_rng(0)
  diffs = [acc(ea, ix) - acc(eb, ix) for ix in (rng.integers(0, len(ea), len(ea)) for _ in range(args.resamples))]
  lo, hi = np.percentile(diffs, [2.5, 97.5])
  print(f"{len(ea)} episodes: balanced direction accuracy A {acc(ea, full):.3f}, B {acc(eb, full):.3f}")
  print(f"A - B: {acc(ea, full) - acc(eb, full):+.3f} [{lo:+.3f}, {hi:+.3f}] (95% paired bootstrap) -> "
        f"{verdict(lo, hi)}")


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("a")
  p.add_argument("b")
  p.add_argument("--mode", default="progress", choices=["progress", "completion", "completion_auc", "direction"])
  p.add_argument("--resamples", type=int, default=10000)
  args = p.parse_args()
  if args.mode == "completion_auc":
    return paired_auc(args)
  if args.mode == "direction":
    return paired_direction(args)
  ta, tb = load(args.a, args.mode), load(args.b, args.mode)
  if [t["oracle_steps"] for t in ta] != [t["oracle_steps"] for t in tb]:
    raise SystemExit(f"{args.a} and {args.b}: different held-out episodes; expected the same eval config and seed")
  ok = [t["summary"]["success_once"] for t in ta]
  ra = np.array([per_episode_order(t) for t, s in zip(ta, ok) if s])
  rb = np.array([per_episode_order(t) for t, s in zip(tb, ok) if s])
  d = ra - rb
  rng = np.random.default_rng(0)
  boot = d[rng.integers(0, len(d), (args.resamples, len(d)))].mean(axis=1)
  lo, hi = np.percentile(boot, [2.5, 97.5])
  pval = float(scipy.stats.wilcoxon(ra, rb).pvalue) if np.any(d) else 1.0
  print(f"{len(d)} successful episodes: VOC A {ra.mean():.3f}, B {rb.mean():.3f}")
  print(f"A - B: {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] (95% paired bootstrap); A higher on {(d > 0).sum()}/{len(d)}; "
        f"Wilcoxon p = {pval:.3f} -> {verdict(lo, hi, pval < 0.05)}")


if __name__ == "__main__":
  main()
