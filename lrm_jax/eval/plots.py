"""Figures for a reward-model evaluation: progress curves, ROC curves, and a grouped-bar comparison of models.

Each function draws on its own Agg Figure (no pyplot global state, so it is safe in any backend or thread) and
writes the PNG atomically: a reader never sees a half-written file. Titles wrap (matplotlib's `wrap=True`, placed
by constrained layout) to stay inside the figure: the evaluation's titles are sentences, wider than a ROC panel.
"""
import math
import os

import numpy as np
from matplotlib import ticker

from lrm_jax.eval import metrics as metrics_lib

_SUCCESS, _FAILED = "tab:green", "tab:red"


def _figure(w: float, h: float):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  # Constrained layout lays out wrapped titles after wrapping them (tight_layout measured them before, and a
  # three-line title ran off the top).
  fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def _save(fig, path: str) -> str:
  """Writes fig to path + ".tmp.png", then renames it over path."""
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp.png"
  try:
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def plot_progress_curves(path: str, curves: list[dict], title: str = "", ncols: int = 4) -> str:
  """A grid of small panels, one per trajectory: predicted progress (solid) and oracle progress (dashed) over time.

  Each curve is {name, pred, oracle, success}; oracle may be None. The panel title says success/failed in
  green/red. Pick the sample (e.g. a few of each outcome) before calling.
  """
  if not curves:
    raise ValueError("curves is empty")
  ncols = min(ncols, len(curves))
  nrows = math.ceil(len(curves) / ncols)
  fig = _figure(3.0 * ncols, 2.4 * nrows + 0.4)
  axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
  for i, (ax, c) in enumerate(zip(axes, curves)):
    pred = np.asarray(c["pred"], np.float64)
    ax.plot(np.arange(len(pred)), pred, color="tab:blue", lw=1.5, label="predicted")
    if c.get("oracle") is not None:
      oracle = np.asarray(c["oracle"], np.float64)
      ax.plot(np.arange(len(oracle)), oracle, color="k", ls="--", lw=1.0, label="oracle")
    ok = bool(c["success"])
    ax.set_title(f"{c['name']} ({'success' if ok else 'failed'})", fontsize=8, color=_SUCCESS if ok else _FAILED)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # query index: whole numbers
    ax.grid(alpha=0.3)
    if i == 0:
      ax.legend(fontsize=7, loc="upper left")
  for ax in axes[len(curves):]:
    ax.set_visible(False)
  for ax in axes[(nrows - 1) * ncols:]:
    ax.set_xlabel("step", fontsize=8)
  for ax in axes[::ncols]:
    ax.set_ylabel("progress", fontsize=8)
  fig.suptitle(title, wrap=True)
  return _save(fig, path)


def plot_roc(path: str, curves: dict, title: str = "") -> str:
  """ROC curves of several models on one axis, {name: (scores, labels)}; the legend gives each model's AUC."""
  if not curves:
    raise ValueError("curves is empty")
  fig = _figure(4.5, 4.5)
  ax = fig.subplots()
  ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="chance")
  for name, (scores, labels) in curves.items():
    fpr, tpr, _ = metrics_lib.roc_curve(scores, labels)
    ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC={metrics_lib.roc_auc(scores, labels):.3f})")
  ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate", ylabel="true positive rate")
  ax.set_title(title, wrap=True)
  ax.set_aspect("equal")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  return _save(fig, path)


def plot_bars(path: str, table: dict, metrics: list[str], title: str = "", ci: dict | None = None) -> str:
  """Grouped bars: one group per metric, one bar per model, value printed on each bar.

  table is {model: {metric: value}}; a missing or nan value leaves a gap marked "n/a". Optional ci is
  {model: {metric: (lo, hi)}} and draws error bars.
  """
  if not table:
    raise ValueError("table is empty")
  if not metrics:
    raise ValueError("metrics is empty")
  models = list(table)
  width = 0.8 / len(models)
  x = np.arange(len(metrics))
  fig = _figure(max(4.0, 1.1 * len(metrics) * max(1, len(models)) ** 0.5 + 1.5), 3.6)
  ax = fig.subplots()
  for j, model in enumerate(models):
    vals = np.array([table[model].get(m, np.nan) for m in metrics], np.float64)
    pos = x - 0.4 + width * (j + 0.5)
    err = None
    if ci and model in ci:
      bounds = np.array([ci[model].get(m, (np.nan, np.nan)) for m in metrics], np.float64)
      err = np.abs(np.stack([vals - bounds[:, 0], bounds[:, 1] - vals]))
    bars = ax.bar(pos, np.nan_to_num(vals), width, yerr=err, capsize=2, label=model)
    ax.bar_label(bars, labels=["n/a" if not np.isfinite(v) else f"{v:.2f}" for v in vals], fontsize=7, padding=1)
  ax.axhline(0, color="k", lw=0.6)
  ax.set_xticks(x, metrics, fontsize=8)
  ax.set_title(title, wrap=True)
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the axes: inside, it hid bar labels
  return _save(fig, path)


def plot_success_curves(path: str, base: dict, checkpoints: dict, train_reward: dict | None = None,
                        title: str = "") -> str:
  """RL learning curves: ground-truth success at evaluation checkpoints per reward, with interval bands.

  base is the starting policy's {success_rate, ci_low, ci_high} (iteration 0 of every curve); checkpoints is
  {reward: [{iteration, success_rate, ci_low, ci_high}, ...]}; optional train_reward {reward: per-iteration mean
  episode reward} is drawn in a second panel (each curve scaled to its own range: rewards differ in scale).
  """
  if not checkpoints:
    raise ValueError("checkpoints is empty")
  fig = _figure(10.0 if train_reward else 5.5, 3.8)
  axes = fig.subplots(1, 2 if train_reward else 1, squeeze=False).ravel()
  ax = axes[0]
  for name, points in checkpoints.items():
    it = np.array([0] + [p["iteration"] for p in points])
    rate = np.array([base["success_rate"]] + [p["success_rate"] for p in points])
    lo = np.array([base["ci_low"]] + [p["ci_low"] for p in points])
    hi = np.array([base["ci_high"]] + [p["ci_high"] for p in points])
    line, = ax.plot(it, rate, marker="o", lw=1.5, label=name)
    ax.fill_between(it, lo, hi, color=line.get_color(), alpha=0.15)
  ax.set(xlabel="PPO iteration", ylabel="success rate", ylim=(-0.02, 1.02), title="ground-truth success")
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # iterations are whole numbers
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  if train_reward:
    ax2 = axes[1]
    for name, values in train_reward.items():
      v = np.asarray(values, np.float64)
      span = np.nanmax(v) - np.nanmin(v) if np.isfinite(v).any() else 0.0
      ax2.plot(np.arange(1, len(v) + 1), (v - np.nanmin(v)) / span if span > 0 else v * 0, lw=1.2, label=name)
    ax2.set(xlabel="PPO iteration", ylabel="episode reward (min-max scaled)", title="training reward")
    ax2.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
  fig.suptitle(title, fontsize=10, wrap=True)
  return _save(fig, path)
