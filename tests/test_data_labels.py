"""Each label rule of the paper, on synthetic trajectories whose frame t is filled with the value t."""
import os

import numpy as np
import pytest

from data_pipelines import labels, prompts
from data_pipelines.record import Trajectory
from lrm_jax.utils import config_args


def traj(T=21, success=True, instruction="open the drawer", stage=None, timestamps=None):
  frames = np.broadcast_to(np.arange(T, dtype=np.uint8)[:, None, None, None], (T, 4, 4, 3)).copy()
  return Trajectory(frames=frames, instruction=instruction, source="s", success=success, episode_id="e",
                    stage=stage, timestamps=timestamps)


def frame_id(img):
  return int(img[0, 0, 0])


def test_prompts_and_answers_are_single_words():
  assert prompts.PROGRESS_ANSWERS == ("0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0")
  for answers in prompts.ANSWERS.values():
    assert all(" " not in a and len(a) <= 3 for a in answers)
  assert prompts.progress_answer(0.37) == "0.4" and prompts.answer_value("contrastive", "B") == 1.0
  assert "open the drawer" in prompts.prompt("completion", "open  the\ndrawer")
  assert prompts.prompt("progress", "x") == prompts.context("x") + "\n" + prompts.question("progress")
  with pytest.raises(ValueError, match="prompt kind"):
    prompts.question("reward")
  with pytest.raises(ValueError):
    prompts.answer_value("completion", "maybe")


def test_progress_eleven_keyframes_at_normalised_time():
  ex = labels.progress_examples(traj(T=21), np.random.default_rng(0))
  assert [e.answer for e in ex] == list(prompts.PROGRESS_ANSWERS)
  assert [frame_id(e.images[1]) for e in ex] == list(range(0, 21, 2))
  assert [e.target for e in ex] == pytest.approx([i / 10 for i in range(11)])
  assert all(e.prompt == prompts.prompt("progress", "open the drawer") for e in ex)


def test_progress_uses_timestamps_when_uneven():
  ts = np.array([0.0, 0.1, 0.2, 0.3, 10.0])  # a long gap before the last frame
  ex = labels.progress_examples(traj(T=5, timestamps=ts), np.random.default_rng(0))
  assert frame_id(ex[1].images[1]) == 3 and frame_id(ex[5].images[1]) == 3 and frame_id(ex[10].images[1]) == 4


def test_progress_only_from_successful_and_unknown_counts_as_success():
  rng = np.random.default_rng(0)
  assert labels.progress_examples(traj(success=False), rng) == []
  assert len(labels.progress_examples(traj(success=None), rng)) == 11
  assert labels.progress_examples(traj(success=None), rng, labels.LabelConfig(unknown_success=False)) == []


def test_context_frame_is_a_random_earlier_frame_or_the_anchor():
  rng = np.random.default_rng(3)
  ex = [e for _ in range(20) for e in labels.progress_examples(traj(T=41), rng)]
  lags = [frame_id(e.images[1]) - frame_id(e.images[0]) for e in ex]
  assert min(lags) == 0 and max(lags) <= 10 and len(set(lags)) > 5  # uniform in [0, 0.25 * 40]
  assert all(len(e.images) == prompts.NUM_IMAGES for e in ex)
  anchored = labels.progress_examples(traj(T=41), rng, labels.LabelConfig(progress_with_anchor=True))
  assert {frame_id(e.images[0]) for e in anchored} == {0}
  done = labels.completion_examples(traj(T=41), rng, [], labels.LabelConfig(context_max_delta=0.0))
  assert [(frame_id(e.images[0]), frame_id(e.images[1])) for e in done if e.answer == "yes"] == [(40, 40)]


def test_completion_rules():
  rng = np.random.default_rng(0)
  ex = labels.completion_examples(traj(T=21), rng, ["close the door", "open the drawer"],
                                  labels.LabelConfig(completion_earlier_negatives=50))
  pos = [e for e in ex if e.answer == "yes"]
  assert len(pos) == 1 and frame_id(pos[0].images[1]) == 20 and pos[0].instruction == "open the drawer"
  earlier = [e for e in ex if e.answer == "no" and e.instruction == "open the drawer"]
  assert len(earlier) == 50 and max(frame_id(e.images[1]) for e in earlier) <= 16  # t/T <= 0.8
  mismatch = [e for e in ex if e.instruction != "open the drawer"]
  assert len(mismatch) == 1 and mismatch[0].answer == "no" and frame_id(mismatch[0].images[1]) == 20
  assert "close the door" in mismatch[0].prompt
  failed = labels.completion_examples(traj(success=False), rng, ["close the door"])
  assert [(e.answer, frame_id(e.images[1])) for e in failed] == [("no", 20)]


def test_contrastive_successful_pairs():
  rng = np.random.default_rng(1)
  cfg = labels.LabelConfig(contrastive_pairs=400, contrastive_rewound_pairs=0)
  ex = labels.contrastive_examples(traj(T=21), rng, cfg)
  answers = []
  for e in ex:
    a, b = (frame_id(i) for i in e.images)
    closer = a if e.answer == "A" else b
    assert closer == max(a, b) and e.target == 1  # the later frame is closer
    assert 1 <= abs(a - b) <= 10  # Δ within [0.05, 0.5] of the episode
    answers.append(e.answer)
  assert 0.4 < answers.count("A") / len(answers) < 0.6  # random A/B order
  assert len({abs(frame_id(e.images[0]) - frame_id(e.images[1])) for e in ex}) > 5  # random Δ


def test_contrastive_rewound_and_failed_later_frame_not_closer():
  rng = np.random.default_rng(2)
  cfg = labels.LabelConfig(contrastive_pairs=0, contrastive_rewound_pairs=100, contrastive_failed_pairs=100)
  for e in labels.contrastive_examples(traj(T=21), rng, cfg):
    a, b = (frame_id(i) for i in e.images)
    assert e.target == -1 and (a if e.answer == "A" else b) == max(a, b)  # real time decides "closer"
  failed = labels.contrastive_examples(traj(T=21, success=False), rng, cfg)
  assert len(failed) == 100
  for e in failed:
    a, b = (frame_id(i) for i in e.images)
    assert min(a, b) >= 10 and e.target == -1 and (a if e.answer == "A" else b) == min(a, b)


def test_failed_segments_respect_known_stage():
  stage = np.array([0] * 15 + [1] * 6)  # progress in the tail: those segments are not "no progress"
  rng = np.random.default_rng(3)
  cfg = labels.LabelConfig(contrastive_pairs=0, contrastive_failed_pairs=50)
  for e in labels.contrastive_examples(traj(T=21, success=False, stage=stage), rng, cfg):
    i, j = sorted(e.frame_indices)
    assert stage[j] <= stage[i]


def test_failed_pairs_regress_only_keep_segments_where_the_stage_fell():
  cfg = labels.LabelConfig(contrastive_pairs=0, contrastive_rewound_pairs=0, contrastive_failed_pairs=50,
                           contrastive_failed_regress_only=True)
  flat = np.array([0] * 10 + [1] * 11)  # a stall: no late segment goes back
  assert labels.contrastive_examples(traj(T=21, success=False, stage=flat), np.random.default_rng(4), cfg) == []
  fell = np.array([0] * 10 + [2] * 5 + [1] * 6)  # a drop at frame 15
  pairs = labels.contrastive_examples(traj(T=21, success=False, stage=fell), np.random.default_rng(4), cfg)
  assert pairs
  for e in pairs:
    i, j = sorted(e.frame_indices)
    a, b = (frame_id(x) for x in e.images)
    assert fell[j] < fell[i] and (a if e.answer == "A" else b) == i  # the frame before the fall is closer
  # Without a known stage the option changes nothing: every late segment of a failed episode still counts.
  assert len(labels.contrastive_examples(traj(T=21, success=False), np.random.default_rng(4), cfg)) == 50


def test_make_examples_deterministic_given_rng():
  a = labels.make_examples(traj(), np.random.default_rng(5), ["x"])
  b = labels.make_examples(traj(), np.random.default_rng(5), ["x"])
  assert [(e.kind, e.answer, e.frame_indices) for e in a] == [(e.kind, e.answer, e.frame_indices) for e in b]
  assert {e.kind for e in a} == set(prompts.KINDS)


def test_data_pipelines_import_nothing_downstream():
  # Data flows datagen -> data_pipelines -> models -> rewards -> rl; nothing imports back up that chain.
  import pathlib
  import re
  root = pathlib.Path(__file__).resolve().parents[1] / "data_pipelines"
  for path in root.glob("*.py"):
    for line in path.read_text().splitlines():
      m = re.match(r"\s*(?:from|import)\s+lrm_jax\.(\w+)", line)
      assert m is None or m.group(1) in ("envs", "utils"), f"{path.name}: {line.strip()}"


def test_label_config_validation():
  with pytest.raises(ValueError, match="kinds"):
    labels.LabelConfig(kinds=("progress", "reward"))
  with pytest.raises(ValueError, match="contrastive_min_delta"):
    labels.LabelConfig(contrastive_min_delta=0.6, contrastive_max_delta=0.5)
  assert labels.LabelConfig(kinds=["progress"]).kinds == ("progress",)


def test_progress_keyframes_draws_a_random_subset_each_time():
  rng = np.random.default_rng(0)
  cfg = labels.LabelConfig(progress_keyframes=3)
  draws = [labels.progress_examples(traj(T=41), rng, cfg) for _ in range(30)]
  assert {len(d) for d in draws} == {3}
  seen = {e.target for d in draws for e in d}
  assert len(seen) == 11  # every bin still comes up over epochs
  for d in draws:
    assert [e.target for e in d] == sorted({e.target for e in d})  # distinct keyframes, in time order
  with pytest.raises(ValueError, match="progress_keyframes"):
    labels.LabelConfig(progress_keyframes=0)


def test_with_a_known_stage_done_frames_are_never_not_done_examples():
  """A noisy expert that finishes at frame 10 of 41: frames 10.. show the task done, so no "no" and no forward pair
  whose earlier frame is one of them (the label noise seen in the learnability check, bench/RESULTS.md)."""
  stage = np.minimum(np.arange(41) // 5, 2)  # final stage 2 from frame 10 on
  t = traj(T=41, stage=stage)
  rng = np.random.default_rng(0)
  cfg = labels.LabelConfig(completion_earlier_negatives=30, completion_mismatch_negatives=0, contrastive_pairs=50,
                           contrastive_rewound_pairs=10, context_max_delta=0.0)
  neg = [e for e in labels.completion_examples(t, rng, [], cfg) if e.answer == prompts.NO]
  assert neg and max(frame_id(e.images[1]) for e in neg) < 10
  pairs = labels.contrastive_examples(t, rng, cfg)
  assert len(pairs) == 60 and all(min(e.frame_indices) < 10 for e in pairs)
  # Without a stage the old rule holds: any frame up to 80% of the episode.
  neg = [e for e in labels.completion_examples(traj(T=41), rng, [], cfg) if e.answer == prompts.NO]
  assert max(frame_id(e.images[1]) for e in neg) > 10


def test_completion_boundary_examples_need_a_known_stage():
  """Boundary examples: done frames before the last say "yes", frames just before the final stage "no", late frames
  of a failed episode that show no more than its end "no"; nothing of the kind without a stage."""
  cfg = labels.LabelConfig(completion_earlier_negatives=0, completion_mismatch_negatives=0,
                           completion_done_positives=40, completion_near_negatives=40, completion_near_window=0.15,
                           completion_failed_negatives=40, context_max_delta=0.0)
  rng = np.random.default_rng(0)
  stage = np.minimum(np.arange(41) // 10, 2)  # final stage 2 from frame 20 on
  ex = labels.completion_examples(traj(T=41, stage=stage), rng, [], cfg)
  yes = {frame_id(e.images[1]) for e in ex if e.answer == prompts.YES}
  no = {frame_id(e.images[1]) for e in ex if e.answer == prompts.NO}
  assert 40 in yes and yes <= set(range(20, 41)) and len(yes) > 10  # the last frame and done frames 20-39
  assert no and no <= set(range(14, 20)) and len(no) > 3  # within 0.15 * 40 = 6 frames before frame 20
  # A failed episode that reached stage 2 at frames 24-29 and fell back to stage 1: those frames are not negatives.
  failed_stage = np.array([0] * 10 + [1] * 14 + [2] * 6 + [1] * 11)
  ex = labels.completion_examples(traj(T=41, success=False, stage=failed_stage), rng, [], cfg)
  frames = [frame_id(e.images[1]) for e in ex]
  assert {e.answer for e in ex} == {prompts.NO} and frames[0] == 40 and len(frames) == 41
  assert set(frames) <= set(range(20, 24)) | set(range(30, 41)) and len(set(frames)) > 8
  # Without a stage, only the paper's rules: the final frame.
  assert [frame_id(e.images[1]) for e in labels.completion_examples(traj(T=41), rng, [], cfg)] == [40]
  assert len(labels.completion_examples(traj(T=41, success=False), rng, [], cfg)) == 1
  with pytest.raises(ValueError, match="completion_near_window"):
    labels.LabelConfig(completion_near_window=1.5)


def test_lrm_tiny_failed_endings_turn_on_the_failed_negatives_alone():
  """`lrm_tiny.py:failed_endings=N`: N late frames of each failed episode say "no", with none of the other boundary
  examples; off (0) by default, and `completion_boundary` still sets all three."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "reward_model",
                      "lrm_tiny.py")
  lab = lambda arg: labels.LabelConfig(**config_args.load_file(f"{path}:{arg}").data.mixture.labels)
  on = lab("failed_endings=3")
  assert (on.completion_failed_negatives, on.completion_near_negatives, on.completion_done_positives) == (3, 0, 0)
  off = lab("")
  assert (off.completion_failed_negatives, off.completion_near_negatives, off.completion_done_positives) == (0, 0, 0)
  both = lab("completion_boundary=1")
  assert (both.completion_failed_negatives, both.completion_near_negatives, both.completion_done_positives) == (1, 1, 1)
  failed_stage = np.array([0] * 10 + [1] * 31)
  ex = labels.completion_examples(traj(T=41, success=False, stage=failed_stage), np.random.default_rng(0), [], on)
  assert [e.answer for e in ex] == [prompts.NO] * 4 and all(frame_id(e.images[1]) >= 20 for e in ex)


def test_colour_swapped_negatives_change_only_a_colour_the_source_uses():
  """The successful final frame with one colour word swapped for another colour of the source's instructions says
  "no"; an instruction without a colour, or a source with no other colour, gives none."""
  pool = ["push the Green cube onto the mat", "press the blue button", "open the drawer"]
  rng = np.random.default_rng(0)
  swaps = {labels.colour_swapped("stack the red cube on the yellow cube", pool, rng) for _ in range(60)}
  assert swaps == {"stack the green cube on the yellow cube", "stack the blue cube on the yellow cube",
                   "stack the red cube on the green cube", "stack the red cube on the blue cube"}
  assert labels.colour_swapped("open the drawer", pool, rng) is None
  assert labels.colour_swapped("press the blue button", ["press the blue button"], rng) is None
  assert labels.colour_swapped("put the reddish cube away", pool, rng) is None  # whole words only

  cfg = labels.LabelConfig(completion_earlier_negatives=0, completion_mismatch_negatives=0,
                           completion_swap_negatives=3, context_max_delta=0.0)
  ex = labels.completion_examples(traj(T=21, instruction="press the red button"), rng, pool, cfg)
  assert [(e.answer, frame_id(e.images[1])) for e in ex] == [(prompts.YES, 20)] + [(prompts.NO, 20)] * 3
  expected = {prompts.prompt("completion", f"press the {c} button") for c in ("green", "blue")}
  assert {e.prompt for e in ex[1:]} <= expected
  assert len(labels.completion_examples(traj(T=21, success=False, instruction="press the red button"), rng, pool,
                                        cfg)) == 1  # a failed episode's final frame is a "no" already
  # Off by default: the same draws as before the option existed.
  base = labels.LabelConfig(context_max_delta=0.0)
  assert base.completion_swap_negatives == 0
  assert len(labels.completion_examples(traj(T=21, instruction="press the red button"), rng, pool, base)) == 3
