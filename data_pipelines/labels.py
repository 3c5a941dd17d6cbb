"""Training labels from trajectories, following the paper's rules (see reference/lrm_paper.md).

Every example shows two frames (image A, image B; see prompts.py). Progress and completion are about image B, the
labelled frame; image A is a context frame a random lag earlier (up to `context_max_delta` of the episode, or
the same frame at the start), just as the RL-time scorer shows the frame of its previous query.
- progress: 11 keyframes per successful trajectory at normalised time 0.0, 0.1, ..., 1.0, labelled with that time
  (or a random `progress_keyframes` of them per epoch).
- completion: "yes" for the final frame of a successful episode; "no" for earlier frames of it (with a known stage:
  only frames before the final stage is reached), for the final frame of a failed episode, and for a successful
  final frame paired with another trajectory's instruction. Optional colour-swapped negatives: the successful final
  frame with one colour word of its own instruction replaced by another colour the source's instructions use ("put
  the red cube on the plate" -> "... blue cube ..."): the same task and scene, a goal that is not met. Optional
  boundary examples, only where the stage is known (without it, which frames already show the outcome is unknown):
  "yes" for frames at the final stage before the last, "no" for frames just before the final stage is reached, and
  "no" for late frames of a failed episode.
- contrastive: frame pairs (t-Δ, t), random Δ and random A/B order, from successful trajectories (later frame is
  closer; with a known stage the earlier frame is before the final stage); plus "rewound" pairs (the same clip
  played backwards: its later frame is the earlier real one) and segments of failed episodes, whose later frame is
  not closer to completion (optionally only segments where the stage fell: `contrastive_failed_regress_only`).
- success unknown (human video, most OXE sets) counts as a successful demonstration of its instruction
  (`LabelConfig.unknown_success`).
All randomness comes from the `rng` passed in, so the mixture is reproducible from its seed.
"""
import dataclasses
import functools
import re
from typing import Optional, Sequence

import numpy as np

from data_pipelines import prompts
from data_pipelines.record import Trajectory


@dataclasses.dataclass(frozen=True)
class LabelConfig:
  kinds: tuple = prompts.KINDS
  progress_with_anchor: bool = False  # context frame = the episode's first frame (the paper's code option)
  # Keyframes per successful episode and epoch (a random subset of the 11, redrawn every epoch; 11 = all): with all
  # 11, progress is ~2/3 of the examples and drowns the completion and contrastive questions of a small model.
  progress_keyframes: int = 11
  context_max_delta: float = 0.25  # context frame lag, as a fraction of the episode length (uniform in [0, this])
  completion_earlier_negatives: int = 1  # per successful episode
  completion_mismatch_negatives: int = 1  # per successful episode
  completion_negative_max_progress: float = 0.8  # earlier negatives come from t/T <= this (the end may look done)
  # Boundary examples (0 = off; only with a known stage). The rules above teach "early vs late" and "wrong
  # instruction": earlier negatives are mostly far from done, and a failed episode gives one negative. These ask
  # about the goal relation itself, on frames that look alike: done frames before the last ("yes"), frames within
  # `completion_near_window` of the episode before the final stage ("no"), and late frames of failed episodes ("no").
  completion_done_positives: int = 0  # per successful episode
  completion_near_negatives: int = 0  # per successful episode
  completion_near_window: float = 0.15
  completion_failed_negatives: int = 0  # per failed episode, besides its final frame
  # Colour-swapped instructions on the successful final frame ("no"), per successful episode (0 = off). A mismatched
  # instruction is nearly always another task, told apart by its verbs; this one differs from the episode's own only
  # in which object, so the answer depends on reading the goal relation for the named object.
  completion_swap_negatives: int = 0
  contrastive_pairs: int = 4  # forward pairs per successful episode
  contrastive_rewound_pairs: int = 1  # per successful episode
  contrastive_failed_pairs: int = 2  # per failed episode
  # Failed-episode pairs only where the stage fell (a drop, an undo, a push away: the earlier frame really is
  # closer), not where it stayed (a stall, a wrong object: both frames are as far from done, so "the earlier one is
  # closer" is noise that contradicts the forward pairs of frames that look alike). Off by default.
  contrastive_failed_regress_only: bool = False
  contrastive_min_delta: float = 0.05  # Δ as a fraction of the episode length
  contrastive_max_delta: float = 0.5
  failed_segment_start: float = 0.5  # failed segments start in the later part, where the failure shows
  unknown_success: bool = True

  def __post_init__(self):
    object.__setattr__(self, "kinds", tuple(self.kinds))
    unknown = [k for k in self.kinds if k not in prompts.KINDS]
    if unknown:
      raise ValueError(f"LabelConfig.kinds: expected a subset of {prompts.KINDS}, got {unknown}")
    if not 1 <= self.progress_keyframes <= len(prompts.PROGRESS_VALUES):
      raise ValueError(f"LabelConfig.progress_keyframes: expected 1..{len(prompts.PROGRESS_VALUES)}, got "
                       f"{self.progress_keyframes}")
    if not 0 < self.contrastive_min_delta <= self.contrastive_max_delta <= 1:
      raise ValueError("LabelConfig: expected 0 < contrastive_min_delta <= contrastive_max_delta <= 1, got "
                       f"{self.contrastive_min_delta}, {self.contrastive_max_delta}")
    for name in ("completion_negative_max_progress", "completion_near_window", "failed_segment_start",
                 "context_max_delta"):
      if not 0 <= getattr(self, name) <= 1:
        raise ValueError(f"LabelConfig.{name}: expected a fraction in [0, 1], got {getattr(self, name)}")


# Colour words a swapped negative may use; only those that other instructions of the same source contain are drawn,
# so a swap never introduces a word the source never uses (which would be a shortcut, not a goal).
COLOUR_WORDS = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "white", "black", "brown", "grey",
                "gray", "cyan")
_COLOUR_RE = re.compile(r"\b(" + "|".join(COLOUR_WORDS) + r")\b", re.IGNORECASE)


@functools.lru_cache(maxsize=16)
def _colours_in(pool: tuple) -> frozenset:
  """The colour words a pool of instructions uses (cached: the pool is the same for every episode of a source)."""
  return frozenset(w.lower() for s in pool for w in _COLOUR_RE.findall(s))


def colour_swapped(instruction: str, pool: Sequence[str], rng: np.random.Generator) -> Optional[str]:
  """`instruction` with one of its colour words replaced by a colour that `pool` uses and it does not; None when it
  names no colour or no other colour is available."""
  found = list(_COLOUR_RE.finditer(instruction))
  own = {m.group(0).lower() for m in found}
  used = sorted(_colours_in(tuple(pool)) - own)
  if not found or not used:
    return None
  m = found[int(rng.integers(len(found)))]
  return instruction[:m.start()] + used[int(rng.integers(len(used)))] + instruction[m.end():]


@dataclasses.dataclass
class LabelExample:
  kind: str
  prompt: str
  answer: str
  images: tuple  # 1 or 2 uint8 [H,W,3] arrays, in prompt order
  target: float  # numeric label: progress value; completion 1/0; contrastive +1 if the later frame is closer
  instruction: str
  source: str
  episode_id: str
  frame_indices: tuple


def is_successful(traj: Trajectory, cfg: LabelConfig) -> bool:
  return cfg.unknown_success if traj.success is None else bool(traj.success)


def _normalised_time(traj: Trajectory) -> np.ndarray:
  T = traj.num_frames
  if traj.timestamps is not None and T > 1 and traj.timestamps[-1] > traj.timestamps[0]:
    ts = np.asarray(traj.timestamps, np.float64)
    return (ts - ts[0]) / (ts[-1] - ts[0])
  return np.linspace(0.0, 1.0, T) if T > 1 else np.zeros(1)


def _example(kind, traj, instruction, answer, target, idx) -> LabelExample:
  return LabelExample(kind=kind, prompt=prompts.prompt(kind, instruction), answer=answer,
                      images=tuple(traj.frames[i] for i in idx), target=float(target), instruction=instruction,
                      source=traj.source, episode_id=traj.episode_id, frame_indices=tuple(int(i) for i in idx))


def _first_done(traj: Trajectory) -> int:
  """Index of the first frame that already shows the outcome of a successful trajectory: with a known stage, the
  first frame at the final stage (scripted and noisy experts often finish early and the episode runs on, so frames
  well before the end can be done); else the last frame. Frames before it are safe "not done yet" examples."""
  last = traj.num_frames - 1
  if traj.stage is None:
    return last
  stage = np.asarray(traj.stage)
  return int(np.argmax(stage == stage[-1]))


def _with_context(traj: Trajectory, rng: np.random.Generator, i: int, cfg: LabelConfig) -> tuple:
  """(context frame, frame i): the context is the first frame with `progress_with_anchor`, else a random earlier
  frame at most `context_max_delta` of the episode before i (i itself when that is 0)."""
  if cfg.progress_with_anchor:
    return (0, i)
  span = int(round(cfg.context_max_delta * (traj.num_frames - 1)))
  return (max(0, i - int(rng.integers(0, span + 1))), i)


def progress_examples(traj: Trajectory, rng: np.random.Generator,
                      cfg: LabelConfig = LabelConfig()) -> list[LabelExample]:
  if not is_successful(traj, cfg) or traj.num_frames < 2:
    return []
  tau = _normalised_time(traj)
  out = []
  keys = range(len(prompts.PROGRESS_VALUES))
  if cfg.progress_keyframes < len(keys):
    keys = sorted(rng.choice(len(keys), cfg.progress_keyframes, replace=False))
  for k in keys:
    value = prompts.PROGRESS_VALUES[k]
    i = int(np.argmin(np.abs(tau - value)))  # keyframe nearest to normalised time k/10
    out.append(_example(prompts.PROGRESS, traj, traj.instruction, prompts.PROGRESS_ANSWERS[k], value,
                        _with_context(traj, rng, i, cfg)))
  return out


def completion_examples(traj: Trajectory, rng: np.random.Generator, other_instructions: Sequence[str] = (),
                        cfg: LabelConfig = LabelConfig()) -> list[LabelExample]:
  last = traj.num_frames - 1
  ctx = lambda i: _with_context(traj, rng, i, cfg)
  tau = _normalised_time(traj)

  def answer(yes, frame):
    """One example on `frame`, or on a random one of an array of frames."""
    i = frame if isinstance(frame, int) else int(rng.choice(frame))
    return [_example(prompts.COMPLETION, traj, traj.instruction, prompts.YES if yes else prompts.NO, int(yes), ctx(i))]

  if not is_successful(traj, cfg):
    out = answer(False, last)
    if traj.stage is not None:  # late frames that show no more than the failed end does (not an undone success)
      stage = np.asarray(traj.stage)
      late = np.flatnonzero((tau >= cfg.failed_segment_start) & (stage <= stage[-1]))[:-1]
      for _ in range(cfg.completion_failed_negatives if late.size else 0):
        out += answer(False, late)
    return out
  out = answer(True, last)
  done = _first_done(traj)
  earlier = np.flatnonzero(tau[:done] <= cfg.completion_negative_max_progress)
  for _ in range(cfg.completion_earlier_negatives if earlier.size else 0):
    out += answer(False, earlier)
  if traj.stage is not None:
    done_frames = np.arange(done, last)
    for _ in range(cfg.completion_done_positives if done_frames.size else 0):
      out += answer(True, done_frames)
    near = np.flatnonzero(tau[:done] >= tau[done] - cfg.completion_near_window)
    for _ in range(cfg.completion_near_negatives if near.size else 0):
      out += answer(False, near)
  others = sorted({s for s in other_instructions if s != traj.instruction})
  for _ in range(cfg.completion_mismatch_negatives if others else 0):
    out.append(_example(prompts.COMPLETION, traj, others[int(rng.integers(len(others)))], prompts.NO, 0,
                        ctx(last)))
  for _ in range(cfg.completion_swap_negatives):
    swapped = colour_swapped(traj.instruction, others, rng)
    if swapped is not None:
      out.append(_example(prompts.COMPLETION, traj, swapped, prompts.NO, 0, ctx(last)))
  return out


def _pair(traj, rng, earlier, later, later_is_closer: bool) -> LabelExample:
  """A pair in clip order (earlier, later) shown in random A/B order; answer names the image closer to done."""
  closer = later if later_is_closer else earlier
  idx = (later, earlier) if rng.random() < 0.5 else (earlier, later)
  answer = prompts.A if idx[0] == closer else prompts.B
  return _example(prompts.CONTRASTIVE, traj, traj.instruction, answer, 1 if later_is_closer else -1, idx)


def _delta(rng, T, cfg, max_span) -> Optional[int]:
  lo = max(1, int(round(cfg.contrastive_min_delta * (T - 1))))
  hi = min(max_span, max(lo, int(round(cfg.contrastive_max_delta * (T - 1)))))
  return None if hi < lo else int(rng.integers(lo, hi + 1))


def contrastive_examples(traj: Trajectory, rng: np.random.Generator,
                         cfg: LabelConfig = LabelConfig()) -> list[LabelExample]:
  T = traj.num_frames
  if T < 2:
    return []
  out = []
  if is_successful(traj, cfg):
    done = _first_done(traj)  # the earlier frame of a pair must not be done yet, or "later is closer" is not true
    for rewound in [False] * cfg.contrastive_pairs + [True] * cfg.contrastive_rewound_pairs:
      d = _delta(rng, T, cfg, T - 1)
      t = int(rng.integers(d, min(T, max(done, 1) + d)))
      if rewound:  # played backwards: the clip's later frame is the real earlier one, further from done
        out.append(_pair(traj, rng, t, t - d, later_is_closer=False))
      else:
        out.append(_pair(traj, rng, t - d, t, later_is_closer=True))
    return out
  start = min(int(cfg.failed_segment_start * (T - 1)), T - 2)
  regress = cfg.contrastive_failed_regress_only and traj.stage is not None
  for _ in range(cfg.contrastive_failed_pairs):
    for _attempt in range(16 if regress else 4):  # falls are rarer than flat segments: more draws to find one
      d = _delta(rng, T, cfg, T - 1 - start)
      if d is None:
        break
      t = int(rng.integers(start + d, T))
      # With a known stage, keep only segments that really make no progress (regress: that really go back).
      fell = traj.stage is not None and traj.stage[t] < traj.stage[t - d]
      if traj.stage is None or fell or (not regress and traj.stage[t] == traj.stage[t - d]):
        out.append(_pair(traj, rng, t - d, t, later_is_closer=False))
        break
  return out


def make_examples(traj: Trajectory, rng: np.random.Generator, other_instructions: Sequence[str] = (),
                  cfg: LabelConfig = LabelConfig()) -> list[LabelExample]:
  """All label examples of the configured kinds for one trajectory."""
  out = []
  if prompts.PROGRESS in cfg.kinds:
    out += progress_examples(traj, rng, cfg)
  if prompts.COMPLETION in cfg.kinds:
    out += completion_examples(traj, rng, other_instructions, cfg)
  if prompts.CONTRASTIVE in cfg.kinds:
    out += contrastive_examples(traj, rng, cfg)
  return out
