"""Zero-shot reward quality on held-out episodes: score every K-th frame as the RL loop would, then the metrics.

Scoring mirrors RL-time interval-hold: frames t = 0, K, 2K, ... (and the last frame) are scored with the previous
scored frame as context (image A; frame 0 for t = 0). A score function maps (images_a, images_b, instructions) to
any of `progress`, `completion`, `contrastive`, `similarity`; a model without a signal is judged on the closest
one it has (documented per metric in `reward_metrics`), so baselines sit in the same table.
"""
from typing import Callable, Sequence

import numpy as np

from lrm_jax.eval import metrics as M

ScoreFn = Callable[[np.ndarray, np.ndarray, Sequence[str]], dict]


def query_indices(num_frames: int, interval: int) -> np.ndarray:
  idx = np.arange(0, num_frames, interval)
  return idx if idx[-1] == num_frames - 1 else np.append(idx, num_frames - 1)


def score_episodes(score_fn: ScoreFn, episodes: Sequence[dict], interval: int, batch_size: int) -> list[dict]:
  """Per episode: t (scored frames), the score function's signals there, oracle progress, success, task."""
  items = []  # (episode index, t, context t)
  for e, ep in enumerate(episodes):
    idx = query_indices(len(ep["images"]), interval)
    items += [(e, int(t), int(c)) for t, c in zip(idx, np.concatenate([[0], idx[:-1]]))]
  outs = []
  for s in range(0, len(items), batch_size):
    chunk = items[s:s + batch_size]
    pad = chunk + [chunk[-1]] * (batch_size - len(chunk))  # fixed shapes: one compilation
    a = np.stack([episodes[e]["images"][c] for e, _, c in pad])
    b = np.stack([episodes[e]["images"][t] for e, t, _ in pad])
    out = score_fn(a, b, [episodes[e]["instruction"] for e, _, _ in pad])
    outs.append({k: np.asarray(v)[:len(chunk)] for k, v in out.items() if np.ndim(v) == 1})
  flat = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
  scored, pos = [], 0
  for e, ep in enumerate(episodes):
    idx = query_indices(len(ep["images"]), interval)
    n = len(idx)
    oracle = np.asarray(ep["oracle"], np.float64)
    scored.append(dict(t=idx, num_frames=len(ep["images"]), oracle=oracle[idx], success=bool(ep["success"]),
                       task=ep["task"], mode=ep.get("noise", ""),
                       **{k: v[pos:pos + n].astype(np.float64) for k, v in flat.items()}))
    pos += n
  return scored


def score_pixel_change(episodes: Sequence[dict], interval: int) -> list[dict]:
  """The model-free baseline: mean absolute pixel change of each scored frame from the episode's first frame, a
  progress-like score (`similarity`: judged as VLM-RM's is). Episodes: as `score_episodes`. Something moved is not
  the same as the task progressed; a reward model has to beat this to be worth its compute."""
  scored = []
  for ep in episodes:
    idx = query_indices(len(ep["images"]), interval)
    frames = np.asarray(ep["images"], np.float32)
    change = np.abs(frames[idx] - frames[0]).mean(axis=(1, 2, 3)) / 255.0
    scored.append(dict(t=idx, num_frames=len(frames), oracle=np.asarray(ep["oracle"], np.float64)[idx],
                       success=bool(ep["success"]), task=ep["task"], mode=ep.get("noise", ""),
                       similarity=change.astype(np.float64)))
  return scored


def _progress_key(s):
  return "progress" if "progress" in s else "similarity"


def _completion_key(s):
  return "completion" if "completion" in s else _progress_key(s)


def _deltas(s):
  """Predicted and oracle change between consecutive scored frames. Contrastive if the model has it (it compares
  exactly those two frames), else the change of its progress-like score."""
  if "contrastive" in s:
    pred = s["contrastive"][1:]
  else:
    pred = np.diff(s[_progress_key(s)])
  return pred, np.diff(s["oracle"])


CONSTANT_STD = 0.02  # a score that moves less than this over every scored frame says the same thing everywhere


def answer_checks(scored: list[dict], pk: str, ck: str, pred_d: np.ndarray) -> dict:
  """Is any answer constant? `answer_std`: spread of the progress and completion scores over all scored frames;
  `direction_positive_share`: how often the direction signal says "moved forward". `constant_answers` lists the
  signals that do not vary (std < CONSTANT_STD, or one direction in over 98% of pairs): a model that always says
  "B" scores the direction accuracy of the majority class, and a flat progress line has no VOC to speak of."""
  # Only answers on the model's own scales (probabilities, expectations in [0, 1] or [-1, 1]): a similarity or a
  # pixel-change score has its own units, where an absolute spread says nothing.
  std = {k: float(np.std(np.concatenate([s[k] for s in scored]))) for k in dict.fromkeys((pk, ck))
         if k in ("progress", "completion")}
  share = float(np.mean(pred_d > 0)) if pred_d.size else float("nan")
  constant = [k for k, v in std.items() if v < CONSTANT_STD]
  if "contrastive" in scored[0] and pred_d.size and not 0.02 <= share <= 0.98:
    constant.append("direction")
  return dict(answer_std=std, direction_positive_share=share, constant_answers=constant)


def reward_metrics(scored: list[dict], tol: float = 0.2, bootstrap: int = 300) -> dict:
  """Reward-quality metrics (definitions: shared/reference/lrm_paper.md).

  voc, monotonicity: successful episodes, progress(-like) score against frame order.
  kendall_tau, pearson_oracle: progress against the oracle's privileged progress, all episodes (pooled / per
    episode). progress_mae/rmse/acc: against t/T on successful episodes (the training label's definition).
  completion_auc, completion_pairwise: final-frame completion (or progress-like) score against episode success;
    progress_auc: the same with the progress score.
  direction_accuracy, progress_recall: sign of the contrastive (or progress-delta) prediction between consecutive
    scored frames against the oracle's change, over pairs where the oracle changed. Most such pairs go forward
    (`direction_oracle_up_share`, the accuracy of a constant "later is closer"), so direction_balanced_accuracy
    (mean of the up and down classes' accuracies; a constant scores 0.5) is reported beside it.
  `*_ci`: 95% bootstrap intervals over episodes.
  """
  if not scored:
    raise ValueError("scored: expected at least one scored episode")
  pk, ck = _progress_key(scored[0]), _completion_key(scored[0])
  succ = [s for s in scored if s["success"]]
  out = dict(episodes=len(scored), successful=len(succ), frames=int(sum(len(s["t"]) for s in scored)))
  if succ:
    out["voc"] = M.voc([s[pk] for s in succ])
    out["voc_ci"] = M.bootstrap_ci(M.voc, [s[pk] for s in succ], n=bootstrap)
    out["monotonicity"] = M.monotonicity([s[pk] for s in succ])
    if pk == "progress":
      err = M.progress_errors(np.concatenate([s[pk] for s in succ]),
                              np.concatenate([s["t"] / max(s["num_frames"] - 1, 1) for s in succ]), tol)
      out.update(progress_mae=err["mae"], progress_rmse=err["rmse"], progress_acc=err["acc_at_tol"])
  out["kendall_tau"] = M.kendall_tau(np.concatenate([s[pk] for s in scored]),
                                     np.concatenate([s["oracle"] for s in scored]))
  out["pearson_oracle"] = M.pearson_per_traj([s[pk] for s in scored], [s["oracle"] for s in scored])
  final = lambda key: np.array([s[key][-1] for s in scored])
  labels = np.array([s["success"] for s in scored])
  if 0 < labels.sum() < len(labels):
    out["completion_auc"] = M.roc_auc(final(ck), labels)
    out["completion_auc_ci"] = M.bootstrap_ci(M.roc_auc, final(ck), labels, n=bootstrap)
    out["completion_pairwise"] = M.episode_pairwise_accuracy(final(ck), labels)
    out["progress_auc"] = M.roc_auc(final(pk), labels)
  pred_d, oracle_d = (np.concatenate(x) for x in zip(*[_deltas(s) for s in scored]))
  out["direction_accuracy"] = M.direction_accuracy(pred_d, oracle_d)
  out["direction_balanced_accuracy"] = M.direction_balanced_accuracy(pred_d, oracle_d)
  out["direction_pairs"] = int(np.sum(np.abs(oracle_d) > 1e-6))
  # The base rate a constant "later is closer" answer reaches on direction_accuracy.
  out["direction_oracle_up_share"] = (float(np.mean(oracle_d[np.abs(oracle_d) > 1e-6] > 0))
                                      if out["direction_pairs"] else float("nan"))
  out["progress_recall"] = M.progress_recall(pred_d, oracle_d)
  per_ep = [_deltas(s) for s in scored]
  for key, fn in (("direction_accuracy", M.direction_accuracy),
                  ("direction_balanced_accuracy", M.direction_balanced_accuracy)):
    out[f"{key}_ci"] = M.bootstrap_ci(
        lambda eps, fn=fn: fn(*(np.concatenate(x) for x in zip(*eps))) if eps else float("nan"), per_ep, n=bootstrap)
  out["signals"] = {"progress": pk, "completion": ck,
                    "direction": "contrastive" if "contrastive" in scored[0] else f"delta {pk}"}
  out.update(answer_checks(scored, pk, ck, pred_d))
  return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def per_task(scored: list[dict], **kw) -> dict:
  return {task: reward_metrics([s for s in scored if s["task"] == task], **kw)
          for task in sorted({s["task"] for s in scored})}


def roc_inputs(scored: list[dict]) -> tuple[np.ndarray, np.ndarray]:
  ck = _completion_key(scored[0])
  return np.array([s[ck][-1] for s in scored]), np.array([s["success"] for s in scored])


def curves_for_plot(scored: list[dict], per_kind: int = 4) -> list[dict]:
  """A few successful and failed episodes: predicted progress(-like) score and oracle over time."""
  pk = _progress_key(scored[0])
  pick = [s for s in scored if s["success"]][:per_kind] + [s for s in scored if not s["success"]][:per_kind]
  return [dict(name=f"{s['task']} ({s['mode']})", pred=s[pk], oracle=s["oracle"], success=s["success"])
          for s in pick]
