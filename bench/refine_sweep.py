"""Refinement recipe sweep: BC -> PPO (privileged or learned reward) -> ground-truth success, one row per variant.

  python bench/refine_sweep.py --task=press_buttons_in_order --rewards=oracle \
      --variant='default:' --variant='envs64:ppo.num_envs=64,ppo.batch_size=64' --out=/tmp/sweep.jsonl

Each `--variant` is `name:field=value,field=value` with dotted fields of `configs/refine.py`'s config (values are
parsed as Python literals where they can be); `--arg` is the config's own arg for all variants. Variants that share
the demos and BC settings share one BC policy and its evaluation (computed once per process). Every row (variant,
reward, seed, BC success and interval, refined success and interval, gain, PPO seconds with compile) is printed
and appended to `--out` as JSON, so a long sweep can be read while it runs and resumed by rerunning the rest.
Only the privileged rewards (`oracle`, `sparse`) run without a reward-model workdir (`rm_workdir` in `--arg`).
"""
import ast
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from lrm_jax.utils import host_devices  # noqa: E402

host_devices.use_all_cores()

from lrm_jax.envs import registry  # noqa: E402
from lrm_jax.jobs import refine as refine_job  # noqa: E402
from lrm_jax.utils import compile_cache  # noqa: E402
from lrm_jax.utils import config_args  # noqa: E402

_ARG = flags.DEFINE_string("arg", "", "configs/refine.py arg shared by all variants")
_TASK = flags.DEFINE_string("task", "", "held-out task (overrides the arg's)")
_REWARDS = flags.DEFINE_list("rewards", ["oracle"], "rewards to run per variant")
_VARIANTS = flags.DEFINE_multi_string("variant", ["default:"], "name:field=value,... (dotted config fields)")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "seeds (config.seed, demos, BC, PPO, evaluation follow it)")
_OUT = flags.DEFINE_string("out", "", "append JSON rows here")
_WORKDIR = flags.DEFINE_string("workdir", "", "PPO run folders (default: a temporary folder)")


def _value(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_variant(spec: str) -> tuple[str, dict]:
  name, _, rest = spec.partition(":")
  fields = {}
  for item in filter(None, rest.split(",")):
    key, eq, value = item.partition("=")
    if not eq:
      raise ValueError(f"variant {name!r}: expected field=value, got {item!r}")
    fields[key.strip()] = _value(value.strip())
  return name, fields


def make_config(arg: str, task: str, seed: int, fields: dict):
  items = [a for a in (arg, f"seed={seed}", f"task={task}" if task else "") if a]
  c = config_args.load_file("configs/refine.py:" + ",".join(items))
  c.unlock()
  for key, value in fields.items():
    *path, leaf = key.split(".")
    node = c
    for p in path:
      node = node[p]
    if leaf not in node:
      raise ValueError(f"unknown config field {key!r}")
    node[leaf] = type(node[leaf])(value) if isinstance(node[leaf], (bool, int, float)) else value
  return c


def _base_key(c) -> str:
  return json.dumps(dict(task=c.task, demos=c.demos.to_dict(), bc=c.bc.to_dict(), residual=c.residual.to_dict(),
                         eval=c.eval.to_dict()),
                    sort_keys=True, default=str)


def main(argv):
  del argv
  compile_cache.enable(None)
  workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="refine_sweep_")
  envs, bases = {}, {}
  for seed in map(int, _SEEDS.value):
    for spec in _VARIANTS.value:
      name, fields = parse_variant(spec)
      c = make_config(_ARG.value, _TASK.value, seed, fields)
      refine_job.check_config(c)
      env = envs.setdefault(c.task, registry.make(c.task))
      key = _base_key(c)
      if key not in bases:
        base_dir = os.path.join(workdir, f"bc_{len(bases)}")
        os.makedirs(base_dir, exist_ok=True)
        bases[key] = refine_job.base_policy(c, env, base_dir)
      bc, before, _ = bases[key]
      fns = refine_job.score_fns(c, env, _REWARDS.value)
      for reward in _REWARDS.value:
        t = time.time()
        run, _ = refine_job.refine_one(c, env, bc, before, reward, fns[reward],
                                       os.path.join(workdir, f"{name}_{reward}_{seed}"))
        last = run["history"][-1] if run["history"] else {}
        row = dict(variant=name, fields=fields, task=c.task, reward=reward, seed=seed,
                   bc=before["success_rate"], bc_ci=[before["ci_low"], before["ci_high"]],
                   after=run["after"]["success_rate"], after_ci=[run["after"]["ci_low"], run["after"]["ci_high"]],
                   gain=run["gain"], checkpoints=run["checkpoints"], ppo_seconds=run["seconds"]["train"],
                   total_seconds=round(time.time() - t, 1), env_steps=int(last.get("step", 0)),
                   kl_mean=last.get("training/kl_mean"), value_loss=last.get("training/v_loss"))
        print("ROW " + json.dumps(row), flush=True)
        if _OUT.value:
          with open(_OUT.value, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  app.run(main)
