"""Scored episodes -> the paper's open-loop score files (`vlm_scores.json`), one per mode.

The paper's public metrics script (`eval/compute_openloop_metrics.py` of the authors' repository; format in
shared/reference/authors_server_api.md) reads one JSON file per mode: `{"mode": "progress" | "completion" |
"comparison", "trajectories": [...]}`. Writing the same layout lets users put lrm_jax's scores through the paper's
own script. A trajectory here:
- `oracle_steps`: one per env step (an episode of T + 1 frames has T steps). `oracle_reward` is the change of the
  suite's privileged oracle progress over that step (so `cumulative_reward` is the oracle progress gained since the
  first frame), `success` whether the task is done after it.
- `completion_scores`: one per reward query (every K-th frame, as `reward_eval.score_episodes` scores them):
  `vlm_completion_score` = expected progress in "progress" mode, P(yes) in "completion" mode.
- `comparison_scores`: one per query: `vlm_comparison_score` = the sign of P(B) - P(A) (+1 / -1 / 0), comparing the
  query's frame (B) with the previous query's (A).
- `summary`: `success_once`, `total_oracle_reward`.
Note: the paper's script aligns comparison scores with oracle steps by index, as its RL loop scored every step;
with K > 1 use lrm_jax's own `metrics.json` (which compares each query with the oracle change over the same frames)
for direction accuracy, and the paper's script for its AUC and correlations.
"""
import json
import os
from typing import Sequence

import numpy as np

MODES = {"progress": "progress", "completion": "completion", "comparison": "contrastive"}  # file mode -> signal


def trajectory(scored: dict, episode: dict, mode: str) -> dict:
  oracle = np.asarray(episode["oracle"], np.float64)
  steps = np.diff(oracle)
  done = oracle[1:] >= 1.0 - 1e-6  # the oracle is 1 exactly when the last stage is reached
  out = dict(
      oracle_steps=[dict(oracle_reward=float(r), cumulative_reward=float(c), success=bool(d))
                    for r, c, d in zip(steps, np.cumsum(steps), done)],
      completion_scores=[], comparison_scores=[],
      summary=dict(success_once=bool(done.any() or episode["success"]), total_oracle_reward=float(steps.sum())))
  signal = MODES[mode]
  if signal not in scored:
    raise KeyError(f"scored episode has no '{signal}' signal for mode '{mode}'; it has {sorted(scored)}")
  values = np.asarray(scored[signal], np.float64)
  if mode == "comparison":
    out["comparison_scores"] = [dict(vlm_comparison_score=int(np.sign(v))) for v in values[1:]]
  else:
    out["completion_scores"] = [dict(vlm_completion_score=float(v)) for v in values]
  return out


def export(scored: Sequence[dict], episodes: Sequence[dict], out_dir: str,
           modes: Sequence[str] = tuple(MODES)) -> list[str]:
  """Writes `out_dir/<mode>/vlm_scores.json` for each mode the scores have (atomically); returns the paths.
  `scored[i]` must be `episodes[i]` scored (`reward_eval.score_episodes` keeps the order)."""
  if len(scored) != len(episodes):
    raise ValueError(f"open-loop export: {len(scored)} scored episodes for {len(episodes)} episodes; expected one each")
  paths = []
  for mode in modes:
    if not scored or MODES[mode] not in scored[0]:
      continue
    path = os.path.join(out_dir, mode, "vlm_scores.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
      json.dump(dict(mode=mode, trajectories=[trajectory(s, e, mode) for s, e in zip(scored, episodes)]), f)
    os.replace(path + ".tmp", path)
    paths.append(path)
  return paths
