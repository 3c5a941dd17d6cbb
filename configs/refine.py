"""PPO refinement of a behaviour-cloned policy on a held-out task, with reward-model rewards and baselines.

  python -m lrm_jax.main --config=configs/refine.py:rm_workdir=W_RM --workdir=W

needs a finished `reward_model` run in W_RM (e.g. `configs/reward_model/cpu_demo.py`; pass the same `rm_arg` as
that run, with "+" between its items, so the model is rebuilt identically). Writes W/refine.json,
W/learning_curves.png, W/videos/, and per reward W/<reward>/ (TensorBoard, checkpoints).
Args: task (a held-out task), rewards ("+"-separated: lrm_tri, lrm_progress, lrm_completion, lrm_contrastive,
vlmrm, sparse, oracle), demos, action_noise (DART noise of the demos), iterations, envs (parallel envs; one
episode per env per iteration), lr (actor), critic_lr, warmup (critic-only iterations first), epochs (update
epochs per iteration), interval (K),
eval_episodes, eval_every (checkpoints), videos, seed, shaping (progress rewards), rm_workdir, rm_arg,
residual (PPO trains a residual on the frozen cloned policy, `lrm_jax/rl/residual.py`), res_scale (its largest
effect on an action), res_std (its initial exploration std, in action units).
Scale up on an accelerator: `envs=2048,eval_episodes=1024`.
"""
import ml_collections

from lrm_jax.envs import tasks
from lrm_jax.rewards import interval
from lrm_jax.rl import bc
from lrm_jax.rl import evaluate
from lrm_jax.rl import ppo
from lrm_jax.rl import residual
from lrm_jax.utils import config_args


def get_config(arg=None):
  a = config_args.parse_arg(arg, task="press_buttons_in_order", rewards="lrm_tri+oracle+sparse+vlmrm", demos=32,
                            action_noise=0.3, iterations=30, envs=16, lr=1e-4, critic_lr=1e-3, warmup=3, epochs=4,
                            interval=10, eval_episodes=256, eval_every=15, videos=4, seed=0, rm_workdir="",
                            rm_arg="", shaping=False, residual=False, res_scale=0.5, res_std=0.2)
  c = ml_collections.ConfigDict()
  c.job = "refine"
  c.task = a.task
  c.rewards = tuple(a.rewards.split("+"))
  c.seed = a.seed
  # ---- the reward model (a finished reward_model run) -----------------------------------------------------------
  c.reward_model_workdir = a.rm_workdir
  # rm_arg: that run's config arg with "+" for ",", e.g. rm_arg=steps=2000+res=64
  c.reward_model = config_args.load_sibling(__file__, "reward_model/cpu_demo.py", a.rm_arg.replace("+", ",") or None)
  # ---- base policy: behaviour cloning on a few scripted demonstrations ----------------------------------------
  c.demos = dict(num=a.demos, seed=a.seed, tail_steps=10, action_noise=a.action_noise)
  c.bc = bc.default_config()
  c.bc.seed = a.seed
  # ---- what PPO trains: the cloned network itself, or a residual on top of it (frozen) --------------------------
  c.residual = residual.default_config()
  c.residual.enabled = a.residual
  c.residual.action_scale = a.res_scale
  c.residual.init_std = a.res_std
  c.residual.seed = a.seed
  # ---- PPO (brax) -------------------------------------------------------------------------------------------------
  c.ppo = ppo.default_config()
  length = tasks.TASKS[a.task].episode_length if a.task in tasks.TASKS else 100
  p = c.ppo
  p.iterations = a.iterations
  p.num_envs = a.envs
  p.unroll_length = 10
  p.batch_size = a.envs
  # One iteration = one episode in every env: envs * ceil(length / unroll) unrolls, in that many minibatches.
  p.num_minibatches = -(-length // p.unroll_length)
  p.num_updates_per_batch = a.epochs             # update epochs per iteration (paper: 2)
  p.learning_rate = a.lr                         # actor; the paper: 2.5e-6 actor, 5e-5 critic (20x)
  p.critic_learning_rate = a.critic_lr
  p.critic_warmup_iterations = a.warmup          # value function only, policy as BC left it
  p.eval_every = a.eval_every                    # ground-truth success at these iterations too
  p.seed = a.seed
  # ---- reward (interval-hold) ---------------------------------------------------------------------------------
  c.reward = interval.default_config()
  c.reward.interval = a.interval
  c.reward.shaping = a.shaping                   # applied to progress-based rewards only
  # ---- ground-truth evaluation --------------------------------------------------------------------------------
  c.eval = evaluate.default_config()
  c.eval.num_episodes = a.eval_episodes
  c.eval.deterministic = True
  c.eval.video_episodes = a.videos
  c.eval.seed = a.seed + 1
  c.compile_cache_dir = ""
  return c
