"""Reward-quality metrics against scipy and brute force, hand cases, bad inputs, and the plots' PNG output."""
import os
import warnings

import numpy as np
import pytest
import scipy.stats

from lrm_jax.eval import metrics as M
from lrm_jax.eval import plots


def _brute_auc(scores, labels):
  pos, neg = scores[labels == 1], scores[labels == 0]
  d = pos[:, None] - neg[None, :]
  return ((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size


# --- Correlations against scipy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy_with_ties(seed):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 6, 40).astype(float)  # many ties
  y = x + rng.normal(0, 2, 40).round()
  assert M.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
  assert M.kendall_tau(x, y) == pytest.approx(scipy.stats.kendalltau(x, y, variant="b").statistic, abs=1e-12)


def test_pearson_per_traj_is_mean_of_scipy_pearsonr():
  rng = np.random.default_rng(3)
  preds = [rng.normal(size=n) for n in (5, 9, 30)]
  targets = [p + rng.normal(size=len(p)) for p in preds]
  want = np.mean([scipy.stats.pearsonr(p, t).statistic for p, t in zip(preds, targets)])
  assert M.pearson_per_traj(preds, targets) == pytest.approx(want, abs=1e-12)


def test_pearson_per_traj_constant_cases():
  # Constant target skipped, constant prediction counts 0, 1-frame trajectory skipped.
  preds = [np.array([0.0, 1, 2]), np.array([1.0, 2, 3]), np.array([5.0, 5, 5]), np.array([1.0])]
  targets = [np.array([0.0, 1, 2]), np.array([4.0, 4, 4]), np.array([0.0, 1, 2]), np.array([2.0])]
  assert M.pearson_per_traj(preds, targets) == pytest.approx(0.5)
  assert np.isnan(M.pearson_per_traj([np.array([1.0])], [np.array([1.0])]))


def test_constant_input_gives_nan_without_warnings():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert np.isnan(M.spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(M.kendall_tau([1, 2, 3], [2, 2, 2]))
    assert np.isnan(M.spearman([1], [2]))
    assert M.voc([np.ones(5)]) == 0.0


def test_voc_hand_cases():
  assert M.voc([np.linspace(0, 1, 10)]) == pytest.approx(1.0)
  assert M.voc([np.linspace(1, 0, 10)]) == pytest.approx(-1.0)
  assert M.voc([np.full(7, 0.3)]) == 0.0
  # Mean over trajectories; the 1-frame one is skipped.
  assert M.voc([np.arange(4.0), np.arange(4.0)[::-1], np.zeros(3), np.array([0.5])]) == pytest.approx(0.0)
  assert M.voc([np.arange(3.0), np.array([3.0, 1, 2, 4])]) == pytest.approx(
      (1 + scipy.stats.spearmanr([3, 1, 2, 4], [0, 1, 2, 3]).statistic) / 2)
  assert np.isnan(M.voc([np.array([1.0]), np.array([])]))


# --- Progress errors --------------------------------------------------------------------------------------------


def test_progress_errors():
  out = M.progress_errors([0.0, 0.5, 1.0, 0.2], [0.2, 0.5, 0.6, 0.0])
  assert out["mae"] == pytest.approx((0.2 + 0 + 0.4 + 0.2) / 4)
  assert out["rmse"] == pytest.approx(np.sqrt((0.04 + 0 + 0.16 + 0.04) / 4))
  assert out["acc_at_tol"] == pytest.approx(0.75)
  assert M.progress_errors([0.8], [0.6])["acc_at_tol"] == 1.0  # |0.8 - 0.6| is 0.2000000000000001 in float
  assert M.progress_errors([0.0], [0.5], tol=0.5)["acc_at_tol"] == 1.0


# --- AUC / pairwise accuracy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_roc_auc_matches_brute_force_with_ties(seed):
  rng = np.random.default_rng(seed)
  scores = rng.integers(0, 5, 60).astype(float)
  labels = (rng.random(60) < 0.4).astype(int)
  want = _brute_auc(scores, labels)
  assert M.roc_auc(scores, labels) == pytest.approx(want, abs=1e-12)
  assert M.pairwise_accuracy(scores, labels) == pytest.approx(want, abs=1e-12)
  # The curve's trapezoid area equals the rank AUC, ties included.
  fpr, tpr, thr = M.roc_curve(scores, labels)
  assert np.trapezoid(tpr, fpr) == pytest.approx(want, abs=1e-12)
  assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.isinf(thr[0])
  assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)


def test_roc_auc_hand_cases():
  y = np.array([0, 0, 1, 1])
  assert M.roc_auc([0.1, 0.2, 0.8, 0.9], y) == 1.0
  assert M.roc_auc([0.9, 0.8, 0.2, 0.1], y) == 0.0
  assert M.roc_auc([0.5, 0.5, 0.5, 0.5], y) == 0.5
  assert M.roc_auc([0.1, 0.5, 0.5, 0.9], y) == pytest.approx(0.875)  # one tie among 4 pairs
  assert M.roc_auc([0.1, 0.2, 0.3], [True, False, True]) == 0.5
  assert np.isnan(M.roc_auc([0.1, 0.2], [1, 1]))
  fpr, tpr, _ = M.roc_curve([0.1, 0.2], [1, 1])
  assert np.all(np.isnan(fpr)) and np.allclose(tpr, [0, 0.5, 1])


def test_roc_curve_points():
  fpr, tpr, thr = M.roc_curve([0.9, 0.8, 0.8, 0.1], [1, 0, 1, 0])
  np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.1])
  np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
  np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])


def test_episode_pairwise_accuracy():
  # Successful episodes score 0.9, 0.4; failed 0.5, 0.1: 3 of 4 pairs ordered.
  assert M.episode_pairwise_accuracy([0.9, 0.5, 0.4, 0.1], [True, False, True, False]) == 0.75
  assert np.isnan(M.episode_pairwise_accuracy([0.9, 0.5], [True, True]))


# --- Contrastive ------------------------------------------------------------------------------------------------


def test_direction_accuracy_and_progress_recall():
  pred = np.array([0.3, -0.1, 0.0, 0.2, -0.5, 0.4])
  oracle = np.array([0.1, -0.2, 0.5, -0.1, 0.0, 1e-9])  # last two are not "real" changes
  assert M.direction_accuracy(pred, oracle) == pytest.approx(2 / 4)  # pred 0 counts wrong
  assert M.progress_recall(pred, oracle) == pytest.approx(1 / 2)
  assert np.isnan(M.direction_accuracy([1.0], [0.0]))
  assert np.isnan(M.progress_recall([1.0, 1.0], [-1.0, 0.0]))


def test_direction_balanced_accuracy_gives_a_constant_answer_one_half():
  oracle = np.array([0.1, 0.2, 0.3, 0.4, -0.1, 0.0])  # 4 up, 1 down, 1 no change
  always_later = np.ones(6)
  assert M.direction_accuracy(always_later, oracle) == pytest.approx(4 / 5)  # the base rate
  assert M.direction_balanced_accuracy(always_later, oracle) == pytest.approx(0.5)
  assert M.direction_balanced_accuracy(np.array([1, 1, -1, 1, -1, 5.0]), oracle) == pytest.approx((3 / 4 + 1) / 2)
  assert np.isnan(M.direction_balanced_accuracy([1.0, 1.0], [0.5, 0.2]))  # no down pair


def test_monotonicity():
  assert M.monotonicity([np.array([0.0, 0.1, 0.1, 0.5])]) == 1.0
  assert M.monotonicity([np.array([0.0, 0.2, 0.1, 0.3, 0.2])]) == 0.5
  assert M.monotonicity([np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([3.0])]) == 0.5
  assert np.isnan(M.monotonicity([np.array([3.0])]))


# --- Intervals --------------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_and_narrows():
  rng = np.random.default_rng(0)

  def ci(k):
    scores = rng.normal(size=k)
    labels = (scores + rng.normal(size=k) > 0).astype(int)
    est = M.roc_auc(scores, labels)
    lo, hi = M.bootstrap_ci(M.roc_auc, scores, labels, n=300, seed=1)
    assert lo <= est <= hi
    return hi - lo

  assert ci(400) < 0.6 * ci(40)


def test_bootstrap_ci_resamples_trajectory_lists():
  trajs = [np.arange(5.0), np.arange(5.0)[::-1], np.arange(4.0), np.array([1.0, 0, 2, 3])]
  lo, hi = M.bootstrap_ci(M.voc, trajs, n=200)
  assert -1 <= lo <= M.voc(trajs) <= hi <= 1
  assert M.bootstrap_ci(M.voc, trajs, n=200) == (lo, hi)  # seeded


def test_mean_ci():
  m, lo, hi = M.mean_ci([1, 1, 0, 0])
  assert m == 0.5 and (lo + hi) / 2 == pytest.approx(0.5)
  assert (lo, hi) == pytest.approx((0.1500, 0.8500), abs=1e-3)  # Wilson 2/4 at 95%
  m, lo, hi = M.mean_ci([1, 1, 1])
  assert m == 1.0 and 0 < lo < 1 and hi == pytest.approx(1.0)  # Wilson never leaves [0, 1]
  x = np.array([1.0, 2.0, 3.0, 4.0])
  m, lo, hi = M.mean_ci(x)
  assert m == 2.5 and hi - m == pytest.approx(1.959964 * x.std(ddof=1) / 2, rel=1e-5)


# --- Bad inputs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, name", [
    (lambda: M.spearman([], []), "pred"),
    (lambda: M.kendall_tau([1, 2], [1, 2, 3]), "pred and target"),
    (lambda: M.progress_errors([0.1], []), "target"),
    (lambda: M.roc_auc([], []), "scores"),
    (lambda: M.roc_auc([0.1, 0.2], [1]), "labels"),
    (lambda: M.roc_auc([0.1, 0.2], [1, 2]), "labels"),
    (lambda: M.roc_curve([0.1, np.nan], [0, 1]), "scores"),
    (lambda: M.episode_pairwise_accuracy([0.1, 0.2], [True]), "success"),
    (lambda: M.direction_accuracy([1.0], [1.0, 2.0]), "pred_delta and oracle_delta"),
    (lambda: M.progress_recall([], [1.0]), "pred_delta"),
    (lambda: M.voc([]), "values_per_traj"),
    (lambda: M.monotonicity([np.zeros((2, 2))]), r"values_per_traj\[0\]"),
    (lambda: M.pearson_per_traj([np.arange(3.0)], [np.arange(4.0)]), r"preds\[0\] and targets\[0\]"),
    (lambda: M.pearson_per_traj([np.arange(3.0)], []), "targets"),
    (lambda: M.bootstrap_ci(M.roc_auc, [0.1, 0.2], [1]), r"arrays\[1\]"),
    (lambda: M.bootstrap_ci(M.roc_auc, [], []), "arrays"),
    (lambda: M.mean_ci([]), "x"),
])
def test_bad_inputs_raise_one_line_value_error(call, name):
  with pytest.raises(ValueError, match=name) as e:
    call()
  assert "\n" not in str(e.value)


# --- Plots ------------------------------------------------------------------------------------------------------


def _check_png(path):
  assert os.path.getsize(path) > 1000
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert not [p for p in os.listdir(os.path.dirname(path)) if ".tmp" in p]


def test_plots_write_png(tmp_path):
  t = np.linspace(0, 1, 12)
  curves = [dict(name=f"ep{i}", pred=t * (0.5 + 0.1 * i), oracle=t, success=i % 2 == 0) for i in range(5)]
  curves.append(dict(name="no_oracle", pred=t[::-1], oracle=None, success=False))
  _check_png(plots.plot_progress_curves(str(tmp_path / "curves.png"), curves, "progress"))

  rng = np.random.default_rng(0)
  labels = rng.random(30) < 0.5
  roc = {"lrm": (labels + rng.normal(0, 0.5, 30), labels), "random": (rng.normal(size=30), labels),
         "one_class": (np.arange(3.0), np.ones(3))}
  _check_png(plots.plot_roc(str(tmp_path / "roc.png"), roc, "success ROC"))

  table = {"lrm": {"voc": 0.8, "auc": 0.9}, "untrained": {"voc": 0.1, "auc": float("nan")}, "vlm_rm": {"voc": -0.1}}
  ci = {"lrm": {"voc": (0.7, 0.9), "auc": (0.85, 0.95)}}
  _check_png(plots.plot_bars(str(tmp_path / "sub" / "bars.png"), table, ["voc", "auc"], "models", ci=ci))
  with pytest.raises(ValueError, match="curves"):
    plots.plot_progress_curves(str(tmp_path / "x.png"), [], "empty")


def test_plot_titles_stay_inside_the_figure(tmp_path, monkeypatch):
  """A sentence-long title (as the evaluation writes) wraps instead of running off the figure's edges."""
  figures, save = [], plots._save
  monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
  title = "Episode success from the final frame's completion score (held-out tasks), a title wider than its panel"
  labels = np.arange(10) % 2 == 0
  plots.plot_roc(str(tmp_path / "roc.png"), {"lrm": (labels + 0.1, labels)}, title)
  plots.plot_bars(str(tmp_path / "bars.png"), {"lrm": {"voc": 0.5}}, ["voc"], title)
  t = np.linspace(0, 1, 5)
  plots.plot_progress_curves(str(tmp_path / "curves.png"), [dict(name="a", pred=t, oracle=t, success=True)], title)
  plots.plot_success_curves(str(tmp_path / "rl.png"), dict(success_rate=0.2, ci_low=0.1, ci_high=0.3),
                            {"oracle": [dict(iteration=1, success_rate=0.4, ci_low=0.3, ci_high=0.5)]},
                            title=title + title)
  assert len(figures) == 4
  for fig in figures:
    renderer = fig.canvas.get_renderer()
    titles = [a.title for a in fig.axes] + ([fig._suptitle] if fig._suptitle else [])
    shown = [t for t in titles if t.get_text()]
    assert shown
    for text in shown:
      box = text.get_window_extent(renderer)
      assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, (text.get_text(), box)
