"""The end-to-end demo (the README's first command): reward model -> zero-shot evaluation -> BC -> PPO -> report.

  python -m lrm_jax.main --config=configs/demo.py --workdir=W        # 2 CPU cores: ~16 min with the shipped LRM-tiny (target 30, limit 45)
  python -m lrm_jax.main --config=configs/demo.py:quick --workdir=W  # a few minutes: tiny sizes, proves the wiring
  python -m lrm_jax.main --config=configs/demo.py:from_scratch --workdir=W  # train cpu_demo's reward model first (~37 min)

The reward model is the released LRM-tiny (`lrm_jax/models/assets/lrm_tiny/`, trained by
`configs/reward_model/lrm_tiny.py`) when the repository ships one: evaluated zero-shot, nothing trained. Without a
release, and with `from_scratch` or `quick`, the demo trains `configs/reward_model/cpu_demo.py`'s model first.

Writes W/report.md and W/results.json (plus everything the stages write: W/reward_model/, W/refine/).
Args: quick (tiny everything), from_scratch, release (another released model folder), rm_arg (the reward model's `configs/reward_model/cpu_demo.py` arg, "+" between
items), rl_arg (the refinement's `configs/refine.py` arg, "+" between items). Any field can also be set with
`--config.reward_model.total_steps=...` / `--config.refine.ppo.iterations=...`.
"""
import ml_collections

from lrm_jax.models import release as release_lib
from lrm_jax.utils import config_args

# Tiny sizes that still run every stage: for smoke tests and for checking a change end to end in minutes.
_QUICK_RM = "steps=20,episodes=4,eval_episodes=2,res=32,batch=8,patch=8,width=32,depth=1,tower_steps=50"
_QUICK_RL = "demos=4,iterations=2,envs=8,warmup=1,eval_episodes=16,eval_every=1,videos=2"


def get_config(arg=None):
  a = config_args.parse_arg(arg, quick=False, rm_arg="", rl_arg="", from_scratch=False, release="")
  rm_arg = a.rm_arg.replace("+", ",") or (_QUICK_RM if a.quick else "")
  rl_arg = a.rl_arg.replace("+", ",") or (_QUICK_RL if a.quick else "")
  c = ml_collections.ConfigDict()
  c.job = "demo"
  c.reward_model = config_args.load_sibling(__file__, "reward_model/cpu_demo.py", rm_arg or None)
  if a.quick:  # fewer than the default's 2 eval envs' worth of work per stage
    c.reward_model.eval.bootstrap = 20
    c.reward_model.eval.explain = 2
  # A released reward model to evaluate zero-shot and refine with ("" = train cpu_demo's model in this run).
  shipped = release_lib.LRM_TINY if release_lib.is_release(release_lib.LRM_TINY) else ""
  c.reward_model_release = "" if (a.from_scratch or a.quick) and not a.release else (a.release or shipped)
  c.refine = config_args.load_sibling(__file__, "refine.py", rl_arg or None)
  # Filled in by the job from the stage above (kept here so the whole run is one config in W/config.json).
  c.refine.reward_model = c.reward_model
  # What the report checks (issues 5 and 6): reward quality on held-out tasks, RL gains, wall time.
  c.targets = dict(voc=0.80, completion_auc=0.90, direction_accuracy=0.85, rl_gain=0.30, oracle_fraction=0.80,
                   minutes=30, minutes_limit=45)
  c.compile_cache_dir = ""
  return c
