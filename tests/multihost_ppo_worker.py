"""The refinement's PPO at toy size as one process of a multi-process run, for tests/test_multihost.py.

  python -m tests.multihost_ppo_worker WORKDIR NUM_ENVS [ENV]
With lrm_jax.utils.distributed's environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID) it is one
of several processes, set up exactly as `lrm_jax.main` sets itself up; without it, a single process. It runs the
`refine` job's PPO stage (configs/refine.py, oracle reward: demos -> BC -> `lrm_jax.rl.ppo.make_train`) and writes
WORKDIR/process_<i>.json (brax's per-iteration history, env split) and WORKDIR/params_<i>.npz (final params).
ENV `task` (default): the refine config's LRM-Bench held-out task (MJX); `toy`: tests/fixtures_rl.py's point-mass
task and its slow expert (the same brax path, seconds to compile instead of minutes).
Not the `refine` job itself: that job writes W/refine.json etc. from every process at once (see WORKSPACE.md,
"Running on many hosts").
"""
import json
import os
import sys

import jax
import numpy as np

from lrm_jax.utils import compile_cache
from lrm_jax.utils import config_args
from lrm_jax.utils import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# configs/demo.py's _QUICK_RL, smaller: 2 PPO iterations, the first of them critic-only (policy = BC's).
REFINE_ARG = "rewards=oracle,demos=4,iterations=2,warmup=1,epochs=1,eval_episodes=8,eval_every=0,videos=0"


def main(workdir: str, num_envs: int, env_name: str = "task"):
  distributed.initialize()  # as lrm_jax.main does
  compile_cache.enable()
  import ml_collections
  from lrm_jax.envs import registry
  from lrm_jax.rl import bc as bc_lib
  from lrm_jax.rl import demos as demos_lib
  from lrm_jax.rl import ppo as ppo_lib

  c = config_args.load_file(os.path.join(ROOT, f"configs/refine.py:{REFINE_ARG},envs={num_envs}"))
  if env_name == "toy":
    from tests import fixtures_rl as toy
    env = toy.PointReach()
    demos = toy.collect_demos(env, 64)
    c.bc.policy_hidden, c.bc.value_hidden, c.bc.steps = (32, 32), (32, 32), 200
    c.ppo.num_minibatches = 1  # one unroll of 10 steps = the toy episode
  elif env_name == "task":
    env = registry.make(c.task)
    demos = demos_lib.collect(env, int(c.demos.num), seed=int(c.demos.seed), tail_steps=int(c.demos.tail_steps),
                              action_noise=float(c.demos.action_noise))
  else:
    raise ValueError(f"ENV {env_name!r}: expected 'task' or 'toy'")
  bc = bc_lib.train(demos, c.bc)
  rc = ml_collections.ConfigDict(dict(ppo=c.ppo, reward=c.reward, eval=c.eval)).copy_and_resolve_references()
  rc.reward.reward = "oracle"
  rc.ppo.checkpoint = False  # brax saves from process 0 alone, which orbax cannot do (WORKSPACE.md)
  out = ppo_lib.make_train(rc, score_fn=None, workdir=None)(env, bc)
  i = jax.process_index()
  os.makedirs(workdir, exist_ok=True)
  leaves = jax.tree.leaves(out.params)
  np.savez(os.path.join(workdir, f"params_{i}.npz"), *[np.asarray(x) for x in leaves])
  np.savez(os.path.join(workdir, f"bc_params_{i}.npz"), *[np.asarray(x) for x in jax.tree.leaves(bc.params)])
  with open(os.path.join(workdir, f"process_{i}.json"), "w") as f:
    json.dump(dict(process_index=i, process_count=jax.process_count(), device_count=jax.device_count(),
                   local_devices=jax.local_device_count(), num_envs=num_envs,
                   history=[{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in out.history]),
              f, indent=1)
  print(f"process {i}: done, {len(out.history)} iterations recorded", flush=True)


if __name__ == "__main__":
  multi_process = distributed.settings() is not None
  distributed.exit_on_error(lambda: main(*sys.argv[1:2], int(sys.argv[2]), *sys.argv[3:4]), multi_process)
