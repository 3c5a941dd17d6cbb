"""Would averaging several trained reward models help? An offline seed ensemble read from their open-loop exports.

  python bench/seed_ensemble.py W_0,W_1[,W_2...] [W_0,W_3 ...] [--versus=V_0,V_1[,V_2...]]

Each argument is a group of `reward_model` workdirs that scored the same held-out episodes (same eval config and
seed). The ensemble scores a frame with the mean of the members' expected progress and P(yes), and answers the
contrastive question by their majority (`W/eval/openloop/{progress,completion,comparison}`, the paper's layout; the
export holds the answer, not P(B), so the direction is nan for an even number of members). It prints each member's
held-out VOC, completion AUC and balanced direction accuracy (the metrics of `metrics.json`, read through
bench/paired_voc.py's scorers, which check them against it) and the ensemble's, then the ensemble's VOC minus the
members' mean VOC with a 95% paired bootstrap over the successful episodes (the members' mean is what one model of
this recipe scores in expectation; the best member is picked after the fact). With `--versus`, it also prints each
group's ensemble VOC minus the `--versus` group's ensemble VOC, paired over the same episodes: two recipes compared
as ensembles of their seeds (the members are fixed, so the interval is over episodes, not over seeds).

Why: a single seed's held-out numbers swing as much as the levers tried (bench/RESULTS.md, "A contrastive warm-up").
If the members' errors were independent, averaging them would beat the members; if it lands at their mean, the
swing is shared by the episodes, and an ensemble (k forward passes per reward) buys nothing.
"""
import sys

import numpy as np

import paired_voc  # bench/ is on the path when run as a script
from lrm_jax.eval import metrics


def same_episodes(workdirs: list[str], runs: list[list[dict]], mode: str):
  if any([t["oracle_steps"] for t in r] != [t["oracle_steps"] for t in runs[0]] for r in runs[1:]):
    raise SystemExit(f"{','.join(workdirs)}: different held-out episodes in the {mode} exports; expected the same "
                     "eval config and seed")


def mean_scores(runs: list[list[dict]], i: int) -> np.ndarray:
  """Episode i's per-frame scores averaged over the members (progress and completion exports both hold them as
  `completion_scores`, the paper's layout)."""
  return np.mean([[s["vlm_completion_score"] for s in r[i]["completion_scores"]] for r in runs], 0)


def progress_terms(workdirs: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """Per successful episode: (the ensemble's VOC term: the order of the members' mean progress, the members' mean
  of their own terms). Reads the progress exports once."""
  runs = [paired_voc.load(w, "progress") for w in workdirs]
  same_episodes(workdirs, runs, "progress")
  ok = [i for i, t in enumerate(runs[0]) if t["summary"]["success_once"]]
  ens = np.array([metrics.voc([mean_scores(runs, i)]) for i in ok])
  members = np.mean([[paired_voc.per_episode_order(r[i]) for i in ok] for r in runs], axis=0)
  return ens, members


def versus_terms(workdirs: list[str], versus: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """Per successful episode: (this group's ensemble VOC term, the `versus` group's), after checking that both groups
  scored the same episodes."""
  same_episodes([workdirs[0], versus[0]], [paired_voc.load(w, "progress") for w in (workdirs[0], versus[0])],
                "progress")
  return progress_terms(workdirs)[0], progress_terms(versus)[0]


def voc_gain(ens: np.ndarray, members: np.ndarray, resamples: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
  """Ensemble VOC minus the members' mean VOC (or another ensemble's: any per-episode terms paired with `ens`):
  (difference, 2.5%, 97.5%) over a bootstrap of the episodes."""
  d = ens - members
  rng = np.random.default_rng(seed)
  boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(resamples)]
  lo, hi = np.percentile(boot, [2.5, 97.5])
  return float(d.mean()), float(lo), float(hi)


def ensemble(workdirs: list[str]) -> tuple[float, float]:
  """(completion AUC, balanced direction) of the members' mean scores (the VOC comes from `progress_terms`)."""
  scores = {m: [paired_voc.load(w, m) for w in workdirs] for m in ("completion", "comparison")}
  for m, runs in scores.items():
    same_episodes(workdirs, runs, m)
  n = len(scores["completion"][0])
  final = np.array([mean_scores(scores["completion"], i)[-1] for i in range(n)])
  _, success = paired_voc.final_completion(scores["completion"][0])
  pairs = [paired_voc.direction_pairs(w, r) for w, r in zip(workdirs, scores["comparison"])]
  # The comparison export holds the answer's sign (+1 / -1), not P(B): the ensemble's answer is the majority vote,
  # defined for an odd number of members (an even split is no answer).
  pred = np.concatenate([np.sign(np.sum([p[i][0] for p in pairs], axis=0)) for i in range(n)])
  oracle = np.concatenate([d for _, d in pairs[0]])
  direction = metrics.direction_balanced_accuracy(pred, oracle) if len(workdirs) % 2 else float("nan")
  return metrics.roc_auc(final, success), direction


def groups(args: list[str]) -> tuple[list[list[str]], list[str]]:
  """(the groups of workdirs, the `--versus` group or [])."""
  versus = [a.split("=", 1)[1] for a in args if a.startswith("--versus=")]
  out = [a.split(",") for a in args if not a.startswith("--versus=")]
  for g in out + [v.split(",") for v in versus]:
    if len(g) < 2:
      raise SystemExit(f"{','.join(g)}: one workdir; expected a comma-separated group of two or more")
  if len(versus) > 1:
    raise SystemExit(f"--versus given {len(versus)} times; expected one group to compare against")
  if not out:
    raise SystemExit("no group of workdirs besides --versus; expected at least one comma-separated group")
  return out, versus[0].split(",") if versus else []


def main():
  if len(sys.argv) < 2:
    raise SystemExit(__doc__)
  all_groups, versus = groups(sys.argv[1:])
  for workdirs in all_groups:
    print(f"{len(workdirs)} members:")
    for w in workdirs:
      one = [paired_voc.Scorer(w, m) for m in ("progress", "completion_auc", "direction")]
      print(f"  VOC {one[0].score(np.arange(one[0].n)):.3f}  AUC {one[1].score(np.arange(one[1].n)):.3f}  "
            f"direction {one[2].score(np.arange(one[2].n)):.3f}  ({w})")
    ens, members = progress_terms(workdirs)
    auc, direction = ensemble(workdirs)
    print(f"  ensemble: VOC {ens.mean():.3f}  AUC {auc:.3f}  direction {direction:.3f}")
    d, lo, hi = voc_gain(ens, members)
    verdict = paired_voc.verdict(lo, hi)
    verdict = {"A better": "ensemble better", "B better": "ensemble worse"}.get(verdict, verdict)
    print(f"  ensemble - members' mean VOC: {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (95% paired bootstrap over episodes) -> "
          f"{verdict}")
    if versus:
      a, b = versus_terms(workdirs, versus)
      d, lo, hi = voc_gain(a, b)
      print(f"  ensemble VOC - the --versus ensemble's ({b.mean():.3f}): {d:+.3f} [{lo:+.3f}, {hi:+.3f}], higher on "
            f"{int((a > b).sum())}/{len(a)} episodes (95% paired bootstrap over episodes; members fixed) -> "
            f"{paired_voc.verdict(lo, hi)}")


if __name__ == "__main__":
  main()
