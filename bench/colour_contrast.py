"""Does the reward model bind the object the instruction names? Completion under colour-swapped instructions.

  python bench/colour_contrast.py W [--config=configs/reward_model/lrm_tiny.py[:arg]] [--eval_set=NAME] [--out=F]

W is a finished `reward_model` run (or a released model folder scored on a run's episodes: `--episodes=W_RUN`).
A wrong-object failure ends like a success with another cube moved; the completion answer tells them apart only if
it reads *which* object is where. This scores every evaluation frame twice over: under the episode's instruction and
under each colour-swapped instruction, where one colour word is replaced by the colour of another object that is in
the scene (read from the episode's scene-state mask, so the swap names an object the frame shows; sets without it,
e.g. `in_distribution`, fall back to every palette colour the instruction does not name, a weaker test: "is there a
cube of that colour"). Instructions that name every colour in the scene (press_buttons_in_order: all three buttons)
have no swap and sit out.
Prints, over the episodes with a swap:
- how far each answer (progress, P(yes), P(B) - P(A)) moves on average when only the colour word changes, and, for
  reference, when the instruction is another task's (the next task of the set in name order);
- the mean final P(yes) of successes and of each failure mode, under the true and under the swapped instructions
  (a model that binds says yes to the true instruction on successes only);
- the completion metrics of the plain answer and of the contrast readout P(yes | instruction) - mean P(yes | swaps),
  both through the evaluation's own metric code (`reward_eval.reward_metrics`: ROC-AUC with its interval) and the
  mean within-task AUC.
Nothing is trained; scoring held-out frames is evaluation only.
"""
import argparse
import json
import os
import re

import numpy as np

from lrm_jax.utils import host_devices

if __name__ == "__main__":  # as lrm_jax.main (the trainer's mesh, so its checkpoint layout, spans every core);
  host_devices.use_all_cores()  # importing this module, as its test does, leaves the process's devices alone

from lrm_jax.envs import base  # noqa: E402
from lrm_jax.envs import scene  # noqa: E402
from lrm_jax.eval import reward_eval  # noqa: E402
from lrm_jax.jobs import reward_model  # noqa: E402
from lrm_jax.models import release  # noqa: E402
from lrm_jax.rewards import scoring  # noqa: E402
from lrm_jax.utils import compile_cache  # noqa: E402
from lrm_jax.utils import config_args  # noqa: E402
from paired_voc import within_task_auc  # noqa: E402  (bench/ scripts import each other from their own folder)

SIGNALS = ("completion", "progress", "contrastive")
PALETTE = tuple(dict.fromkeys(scene.CUBE_COLORS + scene.BUTTON_COLORS))
_WORD = re.compile(r"\b(" + "|".join(PALETTE) + r")\b")


def scene_colours(episode: dict) -> set | None:
  """The colours of the objects in the episode's scene (cubes and buttons whose state fields are present), or None
  when the set carries no scene state."""
  mask = episode.get("scene_mask")
  if mask is None:
    return None
  present = np.asarray(mask)[0] > 0
  fields = [f for f, p in zip(base.SCENE_STATE, present) if p]
  return {c for c in PALETTE if any(f.startswith((f"cube_{c}_", f"button_{c}_")) for f in fields)}


def swaps(instruction: str, colours: set | None) -> list[str]:
  """Every instruction with one colour word replaced by a colour it does not name (of `colours`, else the palette)."""
  named = {m.group(0) for m in _WORD.finditer(instruction)}
  pool = sorted((colours if colours is not None else set(PALETTE)) - named)
  return [instruction[:m.start()] + c + instruction[m.end():] for m in _WORD.finditer(instruction) for c in pool]


def contrast_score_fn(plain, swaps_of: dict, other_of: dict | None = None):
  """score_fn whose extra keys are each signal's mean over the swaps (`swapped_<signal>`) and the contrast readout (plain minus that mean); with
  `other_of` (instruction -> another task's instruction) also each signal under that instruction, `other_<signal>`:
  the reference for how far the answers move when the whole instruction changes."""
  most = max(len(v) for v in swaps_of.values())

  def run(a, b, instructions):
    out = dict(plain(a, b, instructions))
    signals = [k for k in SIGNALS if k in out]
    if other_of:
      out.update({f"other_{k}": np.asarray(v) for k, v in plain(a, b, [other_of[i] for i in instructions]).items()
                  if k in signals})
    total = {k: np.zeros(len(instructions)) for k in signals}
    count = np.zeros(len(instructions))
    for j in range(most):
      has = np.array([j < len(swaps_of[i]) for i in instructions])
      alt = plain(a, b, [swaps_of[i][j] if h else i for i, h in zip(instructions, has)])
      for k in signals:
        total[k] += has * np.asarray(alt[k])
      count += has
    for k in signals:  # each signal's mean over the swaps
      out[f"swapped_{k}"] = total[k] / np.maximum(count, 1)
    out["contrast"] = np.asarray(out["completion"]) - out["swapped_completion"]
    return out
  return run


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("workdir", help="a finished reward_model run, or a released model folder")
  ap.add_argument("--config", default="configs/reward_model/lrm_tiny.py", help="the run's config file[:arg]")
  ap.add_argument("--episodes", default="", help="the run whose evaluation episodes to score (default: workdir)")
  ap.add_argument("--eval_set", default="", help="an extra evaluation set (in_distribution, other_look)")
  ap.add_argument("--out", default="", help="write the summary as JSON here")
  args = ap.parse_args()
  compile_cache.enable()
  config = config_args.load_file(args.config)
  model, tok, params, _ = reward_model.load_trained(config, args.workdir)
  root = args.episodes or args.workdir
  path = os.path.join(root, f"eval_{args.eval_set}", "episodes.npz") if args.eval_set else os.path.join(
      root, "eval", "heldout.npz")
  if not os.path.exists(path):
    raise config_args.ConfigError("episodes", f"a finished run's evaluation episodes at {path}", root)
  episodes = reward_model.simulated_episodes(None, path)
  in_scene = episodes[0].get("scene_mask") is not None
  size = (int(release.read_manifest(args.workdir)["image_size"]) if release.is_release(args.workdir)
          else int(config.image_size))
  plain = reward_model.score_fns(config, scoring.Scorer(model, tok, size), params, params)["lrm"]
  # The same instruction can stand in scenes of different colours: episodes are scored in groups of one palette.
  groups = {}
  for ep in episodes:
    colours = scene_colours(ep)
    if swaps(ep["instruction"], colours):
      groups.setdefault(tuple(sorted(colours)) if colours is not None else (), []).append(ep)
  # The reference: another task's instruction (the next task of the set, in name order), same frames.
  tasks = sorted({ep["task"] for ep in episodes})
  first = {t: next(ep["instruction"] for ep in episodes if ep["task"] == t) for t in tasks}
  other_of = {ep["instruction"]: first[tasks[(tasks.index(ep["task"]) + 1) % len(tasks)]] for ep in episodes}
  scored = []
  for colours, eps in groups.items():
    swaps_of = {ep["instruction"]: swaps(ep["instruction"], set(colours) if in_scene else None) for ep in eps}
    scored += reward_eval.score_episodes(contrast_score_fn(plain, swaps_of, other_of), eps,
                                         int(config.eval.interval), int(config.eval.batch_size))
  summary = dict(workdir=args.workdir, episodes_file=path, swaps="colours in the scene" if in_scene else "palette",
                 episodes=len(episodes), with_swaps=len(scored),
                 without_swaps=sorted({ep["task"] for ep in episodes} - {s["task"] for s in scored}))
  outcome = lambda s: "success" if s["success"] else (s["mode"] or "failed")
  summary["final_p_yes"] = {
      o: dict(n=len(rows), true=float(np.mean([s["completion"][-1] for s in rows])),
              swapped=float(np.mean([s["swapped_completion"][-1] for s in rows])))
      for o in sorted({outcome(s) for s in scored}) for rows in [[s for s in scored if outcome(s) == o]]}
  # How far each answer moves when only the colour word changes (every scored frame): 0 = blind to the colour.
  change = lambda prefix: {k: float(np.mean(np.concatenate([np.abs(s[k] - s[f"{prefix}_{k}"]) for s in scored])))
                            for k in SIGNALS if f"{prefix}_{k}" in scored[0]}
  summary["mean_abs_change"], summary["mean_abs_change_other_task"] = change("swapped"), change("other")
  for name, key in (("plain", "completion"), ("contrast", "contrast")):
    rows = [dict(s, completion=s[key]) for s in scored]
    m = reward_eval.reward_metrics(rows, bootstrap=int(config.eval.bootstrap))
    summary[name] = dict(completion_auc=m.get("completion_auc"), completion_auc_ci=m.get("completion_auc_ci"),
                         within_task_auc=within_task_auc(np.array([s[key][-1] for s in scored]),
                                                         np.array([s["success"] for s in scored]),
                                                         np.array([s["task"] for s in scored])))
  print(json.dumps(summary, indent=1), flush=True)
  if args.out:
    reward_model.write_json(args.out, summary)


if __name__ == "__main__":
  main()
