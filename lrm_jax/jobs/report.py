"""The demo's outputs: `results.json` (numbers) and `report.md` (tables, plots, videos, targets, timings).

Both are built from what the `reward_model` and `refine` jobs return; paths in the report are relative to it, so
the workdir can be copied or zipped as it is.
"""
import os

from lrm_jax.envs import splits

QUALITY_KEYS = ("voc", "kendall_tau", "progress_mae", "progress_acc", "completion_auc", "completion_pairwise",
                "direction_accuracy", "direction_balanced_accuracy", "progress_recall", "monotonicity")
_BASELINES = ("sparse", "vlmrm")


def _fmt(x, pct=False) -> str:
  if x is None:
    return "n/a"
  return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _ci(d: dict, pct=True) -> str:
  return f"{_fmt(d['success_rate'], pct)} [{_fmt(d['ci_low'], pct)}, {_fmt(d['ci_high'], pct)}]"


def _above(a_ci, b_ci) -> bool:
  """a is better than b: a's 95% interval lies wholly above b's (non-overlapping intervals)."""
  return a_ci[0] > b_ci[1]


def rl_summary(rl: dict) -> dict:
  """Per reward: success before/after, gain, whether the gain is significant, gain as a share of the oracle's.

  The share of the oracle's gain is only defined when the oracle's own gain is significant (its interval above
  BC's): a share of a gain within the noise is meaningless, and is reported as None ("n/a").
  """
  bc_ci = [rl["bc"]["ci_low"], rl["bc"]["ci_high"]]
  oracle = rl["runs"].get("oracle")
  oracle_significant = bool(oracle) and _above([oracle["after"]["ci_low"], oracle["after"]["ci_high"]], bc_ci)
  out = {}
  for name, r in rl["runs"].items():
    ci = [r["after"]["ci_low"], r["after"]["ci_high"]]
    frac = r["gain"] / oracle["gain"] if oracle_significant and oracle["gain"] > 0 else None
    out[name] = dict(before=rl["bc"]["success_rate"], before_ci=bc_ci, after=r["after"]["success_rate"], ci=ci,
                     gain=r["gain"], gain_significant=_above(ci, bc_ci), loss_significant=_above(bc_ci, ci),
                     fraction_of_oracle_gain=frac,
                     oracle_gain_significant=oracle_significant, checkpoints=r["checkpoints"], seconds=r["seconds"])
  return out


def _direction_row(lrm: dict, target: float) -> dict:
  """Direction accuracy >= target, and above what a constant "later is closer" answer reaches on the same pairs
  (the share of forward pairs, ~0.8 on LRM-Bench): a target a constant meets is not met."""
  value, base = lrm.get("direction_accuracy"), lrm.get("direction_oracle_up_share")
  row = dict(target=f"held-out direction accuracy >= {target}", value=value,
             met=value is not None and value >= target)
  if row["met"] and base is not None and value <= base:
    row.update(met=False, why=f"not above a constant 'later is closer' answer ({base:.3f})")
  return row


def check_targets(rm: dict, rl: dict, seconds: dict, targets) -> list[dict]:
  """Each target: what it asks, the measured value, met or not (nothing is rounded in its favour).

  RL claims need non-overlapping 95% intervals: a gain is met only if it reaches the target *and* the refined
  policy's interval lies above BC's; "beats" only if one interval lies above the other; the share of the oracle's
  gain is n/a (`met` None, with `why`) when the oracle's own gain is not significant.
  """
  lrm = rm["models"]["lrm"]
  rows = [dict(target=f"held-out VOC >= {targets.voc}", value=lrm.get("voc"),
               met=lrm.get("voc") is not None and lrm["voc"] >= targets.voc),
          dict(target=f"held-out completion ROC-AUC >= {targets.completion_auc}", value=lrm.get("completion_auc"),
               met=lrm.get("completion_auc") is not None and lrm["completion_auc"] >= targets.completion_auc),
          _direction_row(lrm, targets.direction_accuracy)]
  summary = rl_summary(rl)
  for name in [r for r in summary if r.startswith("lrm_") or r == "oracle"]:
    s = summary[name]
    rows.append(dict(target=f"{name}: success gain over BC >= {targets.rl_gain:.0%} (intervals not overlapping)",
                     value=s["gain"], met=s["gain"] >= targets.rl_gain and s["gain_significant"]))
    if name == "oracle":
      continue
    frac = s["fraction_of_oracle_gain"]
    row = dict(target=f"{name}: >= {targets.oracle_fraction:.0%} of the oracle reward's gain", value=frac,
               met=frac is not None and frac >= targets.oracle_fraction and s["gain_significant"])
    if frac is None:
      row.update(met=None, why="oracle gain not significant" if "oracle" in summary else "no oracle run")
    rows.append(row)
    for b in _BASELINES:
      if b in summary:
        rows.append(dict(target=f"{name} beats {b} (final success, intervals not overlapping)",
                         value=s["after"] - summary[b]["after"], met=_above(s["ci"], summary[b]["ci"])))
  rows.append(dict(target=f"demo wall time <= {targets.minutes} min", value=seconds["total"] / 60,
                   met=seconds["total"] / 60 <= targets.minutes))
  limit = targets.get("minutes_limit")
  if limit:
    rows.append(dict(target=f"demo wall time <= {limit} min (hard limit)", value=seconds["total"] / 60,
                     met=seconds["total"] / 60 <= limit))
  return rows


def results(rm: dict, rl: dict, seconds: dict, machine: dict, targets) -> dict:
  return dict(
      heldout_tasks=sorted(splits.HELD_OUT_TASKS), rl_task=rl["task"],
      reward_quality={name: {k: m.get(k) for k in QUALITY_KEYS + ("voc_ci", "completion_auc_ci",
                                                                  "direction_accuracy_ci",
                                                                  "direction_balanced_accuracy_ci",
                                                                  "direction_oracle_up_share")}
                      for name, m in rm["models"].items()},
      reward_quality_per_task={t: {k: m.get(k) for k in QUALITY_KEYS}
                               for t, m in rm["models"]["lrm"].get("per_task", {}).items()},
      reward_model=dict(steps=rm["steps"], eval_episodes=rm["eval_episodes"], eval_successful=rm["eval_successful"],
                        validation_training_tasks=rm.get("validation_training_tasks"), seconds=rm["seconds"],
                        release=rm.get("release")),
      rl=dict(bc=rl["bc"], demos=rl["demos"], iterations=rl["iterations"], eval_episodes=rl["eval_episodes"],
              env_steps_per_iteration=rl["env_steps_per_iteration"], rewards=rl_summary(rl), seconds=rl["seconds"]),
      targets=check_targets(rm, rl, seconds, targets), seconds=seconds, machine=machine)


def _quality_table(res: dict) -> str:
  keys = QUALITY_KEYS
  lines = ["| reward | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
  for name, m in res["reward_quality"].items():
    lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
  return "\n".join(lines)


def _per_task_table(res: dict) -> str:
  keys = ("voc", "completion_auc", "direction_accuracy", "progress_mae")
  lines = ["| held-out task | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
  for task, m in res["reward_quality_per_task"].items():
    lines.append(f"| {task} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
  return "\n".join(lines)


def _rl_table(res: dict) -> str:
  rl = res["rl"]
  lines = ["| reward | success before (BC) | success after, 95% CI | gain | share of oracle gain | checkpoints "
           "(iteration: success) | train s |", "|---|---|---|---|---|---|---|"]
  for name, r in rl["rewards"].items():
    cps = ", ".join(f"{c['iteration']}: {100 * c['success_rate']:.1f}%" for c in r["checkpoints"])
    share = _fmt(r["fraction_of_oracle_gain"]) if r["oracle_gain_significant"] else "n/a (oracle gain not significant)"
    # A success rate whose interval lies below BC's is a measured loss, not noise.
    gain = f"{100 * r['gain']:+.1f} pts" + ("" if r["gain_significant"] else
                                            " (worse than BC)" if r["loss_significant"] else " (within noise)")
    lines.append(f"| {name} | {100 * r['before']:.1f}% | {_ci(dict(success_rate=r['after'], ci_low=r['ci'][0], ci_high=r['ci'][1]))} "
                 f"| {gain} | {share} | {cps} | "
                 f"{r['seconds']['train']:.0f} |")
  return "\n".join(lines)


def _targets_table(res: dict) -> str:
  lines = ["| target | measured | met |", "|---|---|---|"]
  for t in res["targets"]:
    v = t["value"]
    why = f" ({t['why']})" if t.get("why") else ""
    met = f"n/a{why}" if t["met"] is None else ("yes" if t["met"] else f"**no**{why}")
    lines.append(f"| {t['target']} | {'n/a' if v is None else f'{v:.3f}'} | {met} |")
  return "\n".join(lines)


def write_report(path: str, res: dict, rm: dict, rl: dict) -> str:
  rl_res = res["rl"]
  sec = res["seconds"]
  videos = sorted(f[:-4] for f in os.listdir(os.path.join(os.path.dirname(path), "refine", "videos"))
                  if f.endswith(".mp4")) if os.path.isdir(os.path.join(os.path.dirname(path), "refine",
                                                                                          "videos")) else []
  m = res["machine"]
  rel = rm.get("release")
  if rel:
    origin = (f"`lrm` = the released reward model `{os.path.relpath(rel['dir'])}` (trained by `{rel.get('config')}` at "
              f"commit {rel.get('commit')} on training tasks only; nothing was trained in this run)")
    rm_rows = "| reward model: released, not trained | 0 |"
  else:
    origin = "`lrm` = trained reward model"
    rm_rows = (f"| reward model: sources | {rm['seconds']['sources']:.0f} |\n"
               f"| reward model: training ({rm['steps']} steps) | {rm['seconds']['train']:.0f} |")
  text = f"""# Large Reward Models in JAX: end-to-end demo

Zero-shot reward model on held-out tasks {", ".join(f"`{t}`" for t in res["heldout_tasks"])}, then PPO refinement of a
behaviour-cloned policy on `{res["rl_task"]}` with the reward model's `lrm_*` reward against privileged and
VLM-RM baselines. Everything ran on {m["backend"]} ({m["cpus"]} CPUs, jax {m["jax"]}) in {sec["total"] / 60:.1f} min.
The reward model never saw a held-out task: its training sources are built from training tasks only and the
mixture refuses held-out tasks and every phrasing of their instructions.

## 1. Reward quality on held-out tasks (zero-shot)
{rm["eval_episodes"]} held-out episodes from noisy scripted experts ({rm["eval_successful"]} successful), scored every
{rm["interval"]} frames the way RL queries the model. {origin}, `untrained` = the same model at its
initial weights, `vlmrm` = frame-instruction similarity of the initial model (VLM-RM style), `pixel_change` = mean
absolute pixel change from the episode's first frame (no model).

{_quality_table(res)}

Per held-out task (`lrm`):

{_per_task_table(res)}

![progress curves](reward_model/eval/progress_curves.png)
![ROC](reward_model/eval/roc_completion.png)
![metrics](reward_model/eval/metrics.png)

## 2. Policy refinement on `{res["rl_task"]}`
Base policy: behaviour cloning (MLP on the state vector) on {rl_res["demos"]} scripted demonstrations.
PPO (brax) for {rl_res["iterations"]} iterations of {rl_res["env_steps_per_iteration"]} env steps each, started from the BC
policy; the reward-model rewards are computed from rendered frames inside the jitted env step, every
{rm["interval"]} steps, held in between. Success: ground truth over {rl_res["eval_episodes"]} fresh episodes (deterministic
policy), 95% Wilson interval.

{_rl_table(res)}

![learning curves](refine/learning_curves.png)

Rollouts (same start states, episodes side by side):
{chr(10).join(f"- `{v}`: [video](refine/videos/{v}.mp4) ![{v}](refine/videos/{v}.png)" for v in videos)}

## 3. Targets
{_targets_table(res)}

## 4. Time
| stage | seconds |
|---|---|
{rm_rows}
| reward model: held-out episodes | {rm["seconds"]["eval_data"]:.0f} |
| reward model: evaluation | {rm["seconds"]["eval"]:.0f} |
| refinement: demos + BC | {rl["seconds"]["demos_and_bc"]:.0f} |
| refinement: PPO + evaluation, all rewards | {sec["refine"] - rl["seconds"]["demos_and_bc"]:.0f} |
| total | {sec["total"]:.0f} |

Numbers: `results.json`; TensorBoard: `tensorboard --logdir {os.path.dirname(path) or "."}`.
"""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)
  return path
