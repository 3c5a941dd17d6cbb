"""Reward-quality metrics for a reward model on held-out episodes (VOC, progress error, AUC, direction accuracy).

Pure numpy/scipy so they run anywhere and can be checked against scipy. Conventions, stated once:
* Empty input, mismatched lengths, non-1-D or non-finite arrays raise a one-line ValueError naming the argument.
* A correlation that is undefined because an input is constant is handled explicitly (no scipy warnings); each
  function's docstring says whether it returns nan, counts 0, or skips the trajectory.
* A metric with nothing to average over (one class for AUC, no valid trajectory or pair) returns nan.
"""
from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats


def _vec(x, name: str) -> np.ndarray:
  """x as a non-empty, finite, 1-D float array."""
  a = np.asarray(x, dtype=np.float64)
  if a.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
  if a.size == 0:
    raise ValueError(f"{name} is empty")
  if not np.all(np.isfinite(a)):
    raise ValueError(f"{name} has non-finite values")
  return a


def _pair(a, b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
  a, b = _vec(a, name_a), _vec(b, name_b)
  if len(a) != len(b):
    raise ValueError(f"{name_a} and {name_b} differ in length: {len(a)} vs {len(b)}")
  return a, b


def _labels(labels, name: str, n: int) -> np.ndarray:
  """0/1 or bool labels of length n, as a bool array."""
  y = _vec(labels, name)
  if len(y) != n:
    raise ValueError(f"{name} has length {len(y)}, expected {n}")
  if not np.all((y == 0) | (y == 1)):
    raise ValueError(f"{name} must be 0/1 or bool")
  return y.astype(bool)


def _trajs(trajs, name: str) -> list[np.ndarray]:
  """A non-empty list of 1-D float arrays (individual trajectories may be empty)."""
  if len(trajs) == 0:
    raise ValueError(f"{name} is empty")
  out = []
  for i, t in enumerate(trajs):
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
      raise ValueError(f"{name}[{i}] must be 1-D, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
      raise ValueError(f"{name}[{i}] has non-finite values")
    out.append(t)
  return out


def _constant(a: np.ndarray) -> bool:
  return bool(np.all(a == a[0]))


def _mean_or_nan(values: list[float]) -> float:
  return float(np.mean(values)) if values else float("nan")


# --- Rank and linear correlations -------------------------------------------------------------------------------


def spearman(pred, target) -> float:
  """Spearman rank correlation (Pearson correlation of average ranks, as scipy.stats.spearmanr).

  nan when either input is constant or has fewer than 2 items (undefined).
  """
  pred, target = _pair(pred, target, "pred", "target")
  if len(pred) < 2 or _constant(pred) or _constant(target):
    return float("nan")
  return float(scipy.stats.spearmanr(pred, target).statistic)


def kendall_tau(pred, target) -> float:
  """Kendall's tau-b (tie-corrected; scipy.stats.kendalltau). nan when either input is constant or has < 2 items."""
  pred, target = _pair(pred, target, "pred", "target")
  if len(pred) < 2 or _constant(pred) or _constant(target):
    return float("nan")
  return float(scipy.stats.kendalltau(pred, target, variant="b").statistic)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
  x, y = x - x.mean(), y - y.mean()
  return float(np.clip(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)), -1.0, 1.0))


def pearson_per_traj(preds: Sequence, targets: Sequence) -> float:
  """Mean over trajectories of the Pearson correlation between predictions and targets (e.g. cumulative oracle reward).

  A trajectory with < 2 frames or a constant target is skipped (correlation undefined). A constant prediction against
  a varying target counts as 0 (the model carries no signal there). nan if every trajectory is skipped.
  """
  preds, targets = _trajs(preds, "preds"), _trajs(targets, "targets")
  if len(preds) != len(targets):
    raise ValueError(f"preds and targets differ in length: {len(preds)} vs {len(targets)}")
  rs = []
  for i, (p, t) in enumerate(zip(preds, targets)):
    if len(p) != len(t):
      raise ValueError(f"preds[{i}] and targets[{i}] differ in length: {len(p)} vs {len(t)}")
    if len(p) < 2 or _constant(t):
      continue
    rs.append(0.0 if _constant(p) else _pearson(p, t))
  return _mean_or_nan(rs)


def voc(values_per_traj: Sequence) -> float:
  """Value-order correlation (GVL): mean over trajectories of Spearman(predicted values, frame index 0..T-1).

  +1 means the predictions rise strictly with time, -1 that they fall. A constant prediction counts as 0 (no order
  information). Trajectories with < 2 frames are skipped; nan if all are.
  """
  rs = []
  for v in _trajs(values_per_traj, "values_per_traj"):
    if len(v) < 2:
      continue
    rs.append(0.0 if _constant(v) else float(scipy.stats.spearmanr(v, np.arange(len(v))).statistic))
  return _mean_or_nan(rs)


# --- Progress regression ----------------------------------------------------------------------------------------


def progress_errors(pred, target, tol: float = 0.2) -> dict[str, float]:
  """Errors of predicted against true progress (e.g. t/T): {mae, rmse, acc_at_tol}.

  acc_at_tol is the fraction of items with |pred - target| <= tol (+1e-9, so a 0.2 grid step counts as within 0.2).
  """
  pred, target = _pair(pred, target, "pred", "target")
  err = np.abs(pred - target)
  return {"mae": float(err.mean()), "rmse": float(np.sqrt(np.mean(err**2))),
          "acc_at_tol": float(np.mean(err <= tol + 1e-9))}


# --- Classification: episode success / completion ---------------------------------------------------------------


def roc_auc(scores, labels) -> float:
  """Area under the ROC curve via the Mann-Whitney U statistic: P(score_pos > score_neg) + 0.5 P(tie).

  Uses average ranks, so ties count half. nan if labels hold only one class.
  """
  scores = _vec(scores, "scores")
  y = _labels(labels, "labels", len(scores))
  n_pos, n_neg = int(y.sum()), int((~y).sum())
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  ranks = scipy.stats.rankdata(scores)
  u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
  return float(u / (n_pos * n_neg))


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(fpr, tpr, thresholds) for the rule `score >= threshold`, thresholds descending from +inf (the (0, 0) point).

  One point per distinct score, so tied scores give a diagonal segment and the trapezoid area equals roc_auc.
  A rate whose class is absent (no positives for tpr, no negatives for fpr) is all nan.
  """
  scores = _vec(scores, "scores")
  y = _labels(labels, "labels", len(scores))
  order = np.argsort(-scores, kind="stable")
  s, yy = scores[order], y[order]
  last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
  tp = np.r_[0, np.cumsum(yy)[last]].astype(np.float64)
  fp = np.r_[0, np.cumsum(~yy)[last]].astype(np.float64)
  n_pos, n_neg = tp[-1], fp[-1]
  tpr = tp / n_pos if n_pos else np.full_like(tp, np.nan)
  fpr = fp / n_neg if n_neg else np.full_like(fp, np.nan)
  return fpr, tpr, np.r_[np.inf, s[last]]


def pairwise_accuracy(scores, labels) -> float:
  """Fraction of (positive, negative) pairs where the positive scores higher, ties counting half.

  This is exactly roc_auc (the Mann-Whitney identity); it is exposed under its own name because papers report it as
  a separate number. nan if labels hold only one class.
  """
  return roc_auc(scores, labels)


def episode_pairwise_accuracy(final_scores, success) -> float:
  """Over all (successful, failed) episode pairs, the fraction where the successful one's final score is higher.

  Ties count half; nan if every episode succeeded or every one failed.
  """
  final_scores = _vec(final_scores, "final_scores")
  return roc_auc(final_scores, _labels(success, "success", len(final_scores)))


# --- Contrastive: does the prediction move the right way? -------------------------------------------------------


def direction_accuracy(pred_delta, oracle_delta, eps: float = 1e-6) -> float:
  """Over pairs with |oracle_delta| > eps, the fraction with sign(pred_delta) == sign(oracle_delta).

  A prediction of exactly 0 counts as wrong. nan if no pair has |oracle_delta| > eps.
  """
  pred, oracle = _pair(pred_delta, oracle_delta, "pred_delta", "oracle_delta")
  keep = np.abs(oracle) > eps
  if not keep.any():
    return float("nan")
  return float(np.mean(np.sign(pred[keep]) == np.sign(oracle[keep])))


def direction_balanced_accuracy(pred_delta, oracle_delta, eps: float = 1e-6) -> float:
  """Mean of the per-class direction accuracies (oracle up, oracle down): a constant answer scores 0.5.

  `direction_accuracy` is dominated by forward pairs (most consecutive frames of an episode make progress, ~80% in
  LRM-Bench), so an answer that always says "the later frame is closer" reaches ~0.8 on it. nan unless both classes
  occur.
  """
  pred, oracle = _pair(pred_delta, oracle_delta, "pred_delta", "oracle_delta")
  up, down = oracle > eps, oracle < -eps
  if not (up.any() and down.any()):
    return float("nan")
  return float((np.mean(pred[up] > 0) + np.mean(pred[down] < 0)) / 2)


def progress_recall(pred_delta, oracle_delta, eps: float = 1e-6) -> float:
  """Among pairs with oracle_delta > eps (real progress), the fraction with pred_delta > 0. nan if there are none."""
  pred, oracle = _pair(pred_delta, oracle_delta, "pred_delta", "oracle_delta")
  keep = oracle > eps
  if not keep.any():
    return float("nan")
  return float(np.mean(pred[keep] > 0))


def monotonicity(values_per_traj: Sequence) -> float:
  """Mean over trajectories of the fraction of consecutive steps where the prediction does not decrease.

  Meant for successful episodes, where true progress never goes down. Trajectories with < 2 frames are skipped;
  nan if all are.
  """
  fr = [float(np.mean(np.diff(v) >= 0)) for v in _trajs(values_per_traj, "values_per_traj") if len(v) >= 2]
  return _mean_or_nan(fr)


# --- Confidence intervals ---------------------------------------------------------------------------------------


def _take(a, idx: np.ndarray):
  return a[idx] if isinstance(a, np.ndarray) else [a[i] for i in idx]


def bootstrap_ci(fn: Callable[..., float], *arrays, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
  """Percentile bootstrap (lo, hi) of fn(*arrays), resampling items with replacement.

  Items are rows of numpy arrays or elements of lists (e.g. one trajectory each); the same indices are drawn for
  every array, so paired inputs stay paired. Resamples where fn is nan (e.g. one class only for AUC) are dropped;
  (nan, nan) if all are.
  """
  if not arrays:
    raise ValueError("arrays is empty: pass at least one array to resample")
  if n < 1:
    raise ValueError(f"n must be >= 1, got {n}")
  arrays = [a if isinstance(a, np.ndarray) or isinstance(a, list) else np.asarray(a) for a in arrays]
  size = len(arrays[0])
  if size == 0:
    raise ValueError("arrays is empty: the first array has no items")
  for i, a in enumerate(arrays):
    if len(a) != size:
      raise ValueError(f"arrays[{i}] has {len(a)} items, arrays[0] has {size}")
  rng = np.random.default_rng(seed)
  stats = np.array([fn(*(_take(a, idx) for a in arrays)) for idx in rng.integers(0, size, (n, size))], np.float64)
  stats = stats[np.isfinite(stats)]
  if stats.size == 0:
    return float("nan"), float("nan")
  lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
  return float(lo), float(hi)


def mean_ci(x, alpha: float = 0.05) -> tuple[float, float, float]:
  """(mean, lo, hi) with a 1-alpha interval: Wilson score interval when x is all 0/1 (e.g. success flags), else
  the normal interval mean +- z * std(ddof=1) / sqrt(n) (lo = hi = nan for a single non-binary item)."""
  x = _vec(x, "x")
  m, k = float(x.mean()), len(x)
  z = float(scipy.stats.norm.ppf(1 - alpha / 2))
  if np.all((x == 0) | (x == 1)):
    centre = (m + z**2 / (2 * k)) / (1 + z**2 / k)
    half = z * np.sqrt(m * (1 - m) / k + z**2 / (4 * k**2)) / (1 + z**2 / k)
    return m, float(centre - half), float(centre + half)
  if k < 2:
    return m, float("nan"), float("nan")
  half = z * float(x.std(ddof=1)) / np.sqrt(k)
  return m, m - half, m + half
