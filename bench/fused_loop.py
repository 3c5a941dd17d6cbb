"""Fused vs server-style RL rollouts: env steps/s of lrm_jax's one-program loop, a batched reward-server loop, and a
faithful copy of the "Large Reward Models" paper's loop.

  python bench/fused_loop.py                                      # B in {8, 32}, K in {1, 10}, 20 env steps
  python bench/fused_loop.py --batches=8 --intervals=1,10 --steps=20 --repeats=1

All loops do the same work per env step: B envs of `press_buttons_in_order` (MJX) step once with actions sampled
from a randomly initialised brax PPO policy (`bc.make_network_factory(bc.default_config())`); every K-th step of an
episode the 64x64 front frames are rendered by the pure-JAX renderer and the cpu_demo-sized reward model (random
weights, the same seed on both sides: speed does not depend on the weights) scores the batch, frame pairs (previous
query's frame, current frame), for the three `lrm_tri` signals; in between the reward is held. Same B, K, image
size, model, number of steps and episode restarts on both sides. What differs is only how the pieces are glued:

fused   lrm_jax: one jitted `lax.scan` over T steps of the brax training stack `interval.wrap_for_training`
        (reward model = `scoring.score_fn_for_rl`, instructions pre-tokenised and looked up inside the step),
        policy sampling inside the scan: env, renderer, reward model and policy in one XLA program.
server  the design of the "Large Reward Models" paper's public code: the simulator is stepped from Python one step
        at a time (a jitted batched `env.step` and a jitted policy call per step, observations pulled to host), and
        every K steps the frames are rendered (jitted), pulled to host, PNG-encoded and base64'd into one JSON
        request for the whole batch (with the instruction texts), POSTed over loopback HTTP to a reward server in
        another process, which decodes the images, tokenises the instructions, runs the jitted reward model
        (`scoring.Scorer`, the same model and signals) and answers JSON scores.

paper   a faithful copy of the paper's public loop (`envs/vlm_maniskill_env.py` "tri" mode with its
        `VLMRewardClient`; facts in shared/reference/authors_server_api.md): the same Python-stepped simulator, and at
        every query, for each env in turn, three HTTP requests, each a fresh `requests.post` with the frame as raw
        bytes in base64 + shape + dtype: `/compute_comparison` (previous queried frame vs current),
        `/compute_reward` progress (current frame, the episode's first frame as `initial_image` anchor),
        `/compute_completion`. The server is lrm_jax's own `serve` job configured as the paper's server: one
        request at a time (max_batch 1), each answered by greedy text decoding of the one question asked, the text
        parsed into a score (`serving/engine.py` text mode). Same model, frames and reward combination; its rewards
        come from parsed text, so they are not compared.

steps/s = B * T / seconds in steady state: compilation is excluded on both sides (fused: `timing.best_time`, best
of --repeats scans; server: a 2-step warm-up compiles every jitted function in both processes, then the best of
--repeats runs of T steps). Both start from the same reset state and sample actions with the same per-step keys, so
they follow the same trajectories (PNG is lossless) and must give the same rewards: the table reports the largest
difference as a check.
"""
import argparse
import base64
import io
import json
import multiprocessing
import os
import time
import sys
import urllib.request
from http import server as http_server

# Two JAX processes (client, reward server) share the device: neither may preallocate most of an accelerator.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp
import numpy as np
from brax.training.acme import running_statistics
from brax.training.acme import specs
from brax.training.agents.ppo import networks as ppo_networks
import requests
from PIL import Image

from lrm_jax.envs import registry
from lrm_jax.jobs import reward_model as reward_model_job
from lrm_jax.models import paligemma
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.rewards import interval
from lrm_jax.rewards import scoring
from lrm_jax.rl import bc
from lrm_jax.serving import client as serving_client
from lrm_jax.utils import compile_cache
from lrm_jax.utils import config_args
from lrm_jax.utils import timing

TASK = "press_buttons_in_order"
REWARD = "lrm_tri"


# ---- shared by both loops -------------------------------------------------------------------------------------------
def build_scorer(image_size: int):
  """The cpu_demo reward model (configs/reward_model/cpu_demo.py) at `image_size`, random init with seed 0."""
  tok = tokenizer_lib.load(None)
  config = config_args.load_sibling(__file__, "../configs/reward_model/cpu_demo.py", f"res={image_size}")
  model = reward_model_job.build_model(config, tok)
  params = paligemma.init(model, jax.random.PRNGKey(0), image_size, num_images=2)
  return scoring.Scorer(model, tok, image_size), params


def build_policy(env):
  """policy(obs, key) -> (action, extra): brax PPO policy network, random init, sampling (not deterministic)."""
  net = bc.make_network_factory(bc.default_config())(
      env.observation_size, env.action_size, preprocess_observations_fn=running_statistics.normalize)
  spec = {k: specs.Array(shape[-1:], jnp.dtype("float32")) for k, shape in env.observation_size.items()}
  params = (running_statistics.init_state(spec), net.policy_network.init(jax.random.PRNGKey(0)))
  return ppo_networks.make_inference_fn(net)(params, deterministic=False)


# ---- fused -------------------------------------------------------------------------------------------------------
def fused_steps_per_s(env, score_fn, policy, batch, k, steps, image_size, repeats):
  config = interval.default_config()
  config.update(reward=REWARD, interval=k, image_size=image_size)
  train_env = interval.wrap_for_training(env, config, score_fn, episode_length=env.episode_length)
  state = jax.jit(train_env.reset)(jax.random.split(jax.random.PRNGKey(0), batch))

  @jax.jit
  def rollout(state, key):
    def step(s, key):
      action, _ = policy(s.obs, key)
      s = train_env.step(s, action)
      return s, s.reward
    return jax.lax.scan(step, state, jax.random.split(key, steps))

  seconds = timing.best_time(rollout, state, jax.random.PRNGKey(1), repeats=repeats)
  return batch * steps / seconds, np.asarray(rollout(state, jax.random.PRNGKey(1))[1])


# ---- server-style: the reward server process ----------------------------------------------------------------------
def _decode(images):
  return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB")) for s in images])


def serve(conn, image_size):
  """Reward server (its own process): POST {"prev": [png b64], "cur": [png b64], "instructions": [str]} ->
  {"progress": [...], "completion": [...], "contrastive": [...]}. Sends its port on `conn` once it listens."""
  compile_cache.enable()
  scorer, params = build_scorer(image_size)

  @jax.jit
  def score(params, prev, cur, tokens, mask):
    out = scorer(params, prev, cur, tokens, mask)
    return {k: out[k] for k in scorer.kinds}

  class Handler(http_server.BaseHTTPRequestHandler):
    def do_POST(self):
      req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
      enc = scorer.encode_instructions(req["instructions"])
      out = jax.device_get(score(params, _decode(req["prev"]), _decode(req["cur"]), enc["tokens"], enc["mask"]))
      body = json.dumps({k: v.tolist() for k, v in out.items()}).encode()
      self.send_response(200)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body)

    def log_message(self, *args):
      pass

  httpd = http_server.HTTPServer(("127.0.0.1", 0), Handler)  # port 0: the OS picks a free port
  conn.send(httpd.server_address[1])
  httpd.serve_forever()


def start_server(image_size, timeout_s=600):
  ctx = multiprocessing.get_context("spawn")
  parent, child = ctx.Pipe()
  proc = ctx.Process(target=serve, args=(child, image_size), daemon=True)
  proc.start()
  deadline = time.time() + timeout_s
  while not parent.poll(1.0):  # ready = model built and socket listening
    if not proc.is_alive() or time.time() > deadline:
      stop_server(proc)
      raise RuntimeError(f"reward server did not start (exit code {proc.exitcode})")
  return proc, f"http://127.0.0.1:{parent.recv()}/score"


def stop_server(proc):
  proc.terminate()
  proc.join(10)
  if proc.is_alive():
    proc.kill()
    proc.join()


# ---- server-style: the client (simulator loop) ----------------------------------------------------------------------
def _encode(frames):
  out = []
  for f in frames:
    buf = io.BytesIO()
    Image.fromarray(f).save(buf, format="PNG")
    out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
  return out


def query(url, prev, cur, instructions):
  body = json.dumps(dict(prev=_encode(prev), cur=_encode(cur), instructions=instructions)).encode()
  req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
  with urllib.request.urlopen(req, timeout=600) as resp:
    return {k: np.asarray(v, np.float32) for k, v in json.loads(resp.read()).items()}


def _host_side(env, policy, batch, steps, image_size):
  """What a host-side loop (a simulator outside JAX calling a server) needs: jitted step / act / render, the start
  state, its first frames and each env's instruction; the per-step keys are the fused scan's."""
  table = env.instruction_table()
  env_step = jax.jit(jax.vmap(env.step))
  act = jax.jit(lambda obs, key: policy(obs, key)[0])
  keys = np.asarray(jax.random.split(jax.random.PRNGKey(1), steps))
  render = jax.jit(jax.vmap(lambda sim: env.render(sim, "front", image_size)["rgb"].astype(jnp.uint8)))
  state0 = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch))
  first = np.asarray(render(state0.pipeline_state))
  instructions = [table[i] for i in np.asarray(jax.jit(jax.vmap(env.instruction_index))(state0.pipeline_state))]
  return env_step, act, keys, render, state0, jax.device_get(state0.obs), first, instructions


def server_steps_per_s(env, policy, url, batch, k, steps, image_size, repeats):
  env_step, act, keys, render, state0, obs0, first, instructions = _host_side(env, policy, batch, steps, image_size)

  def run(n):
    state, obs, prev, t, rewards = state0, obs0, first, 0, []
    held = {name: np.zeros(batch, np.float32) for name in interval.NEEDS[REWARD]}
    for i in range(n):
      action = np.asarray(act(obs, keys[i]))
      state = env_step(state, action)
      obs, _, _ = jax.device_get((state.obs, state.reward, state.done))  # what a simulator hands back
      if t % k == 0:  # due, as in IntervalReward: episode steps 0, K, 2K, ...
        cur = np.asarray(render(state.pipeline_state))
        held = query(url, prev, cur, instructions)
        prev = cur
      rewards.append(interval.combine(held, REWARD))
      t += 1
      if t == env.episode_length:  # every env ends together: restart from the first state (as AutoResetWrapper)
        state, obs, prev, t = state0, obs0, first, 0
    return np.stack(rewards)

  run(min(2, steps))  # warm-up: compiles the client's step / policy / renderer and the server's model for this batch
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    rewards = run(steps)
    best = min(best, time.perf_counter() - t0)
  return batch * steps / best, rewards


# ---- the paper's loop: per env and per signal one HTTP request to a one-at-a-time, text-decoding server ------------
def start_paper_server(image_size):
  """lrm_jax's `serve` job as the paper's server (bench/serve_load.py starts it the same way)."""
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import serve_load  # pylint: disable=g-import-not-at-top
  return serve_load.Server(serve_load.server_arg("unbatched_text", 1, image_size, 0.0))


def paper_query(url, prev, cur, first, instructions):
  """One reward query of the paper's tri mode: for each env in turn, comparison, progress, completion."""
  out = {"progress": [], "completion": [], "contrastive": []}
  for i, text in enumerate(instructions):
    calls = (("/compute_comparison", "contrastive", dict(image_a=prev[i], image_b=cur[i])),
             ("/compute_reward", "progress", dict(image=cur[i], initial_image=first[i], reward_type="progress")),
             ("/compute_completion", "completion", dict(image=cur[i])))
    for route, signal, kw in calls:
      body = serving_client.paper_request(route, text, **kw)
      resp = requests.post(url + route, json=body, timeout=30.0)  # the paper's client: one requests.post per call
      result = resp.json()
      if resp.status_code != 200 or not result.get("success"):
        raise RuntimeError(f"{route}: HTTP {resp.status_code}: {result.get('error')}")
      out[signal].append(result["score"])
  return {k: np.asarray(v, np.float32) for k, v in out.items()}


def paper_steps_per_s(env, policy, url, batch, k, steps, image_size, repeats):
  env_step, act, keys, render, state0, obs0, first, instructions = _host_side(env, policy, batch, steps, image_size)

  def run(n):
    state, obs, prev, t, rewards = state0, obs0, first, 0, []
    held = {name: np.zeros(batch, np.float32) for name in interval.NEEDS[REWARD]}
    for i in range(n):
      action = np.asarray(act(obs, keys[i]))
      state = env_step(state, action)
      obs, _, _ = jax.device_get((state.obs, state.reward, state.done))
      if t % k == 0:
        cur = np.asarray(render(state.pipeline_state))
        held = paper_query(url, prev, cur, first, instructions)
        prev = cur
      rewards.append(interval.combine(held, REWARD))
      t += 1
      if t == env.episode_length:
        state, obs, prev, t = state0, obs0, first, 0
    return np.stack(rewards)

  run(min(2, steps))
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    run(steps)
    best = min(best, time.perf_counter() - t0)
  return batch * steps / best


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batches", default="8,32")
  p.add_argument("--intervals", default="1,10")
  p.add_argument("--steps", type=int, default=20, help="env steps per timed rollout")
  p.add_argument("--image_size", type=int, default=64)
  p.add_argument("--repeats", type=int, default=2, help="timed rollouts per setting and side (best is kept)")
  a = p.parse_args()
  compile_cache.enable()
  batches = [int(b) for b in a.batches.split(",")]
  intervals = [int(k) for k in a.intervals.split(",")]
  env = registry.make(TASK)
  policy = build_policy(env)
  scorer, params = build_scorer(a.image_size)
  score_fn = scoring.score_fn_for_rl(scorer, params, env.instruction_table())
  print(f"# fused vs batched-server vs paper-style rollout: {TASK}, reward {REWARD}, cpu_demo reward model at "
        f"{a.image_size}x{a.image_size}, {a.steps} env steps per rollout, best of {a.repeats}")
  print(f"# machine: {os.cpu_count()} CPUs, jax {jax.__version__}, backend {jax.default_backend()} "
        f"({jax.devices()[0].device_kind})")
  print("| B | K | fused steps/s | batched server steps/s | paper-style steps/s | fused / batched server | "
        "fused / paper-style | max abs reward difference fused vs batched server |")
  print("|---|---|---|---|---|---|---|---|", flush=True)
  proc, url = start_server(a.image_size)
  paper = start_paper_server(a.image_size)
  try:
    for batch in batches:
      for k in intervals:
        fused, r_fused = fused_steps_per_s(env, score_fn, policy, batch, k, a.steps, a.image_size, a.repeats)
        served, r_served = server_steps_per_s(env, policy, url, batch, k, a.steps, a.image_size, a.repeats)
        papers = paper_steps_per_s(env, policy, paper.url, batch, k, a.steps, a.image_size, a.repeats)
        diff = np.abs(r_fused - r_served).max()
        print(f"| {batch} | {k} | {fused:,.0f} | {served:,.0f} | {papers:,.1f} | {fused / served:.2f}x | "
              f"{fused / papers:.1f}x | {diff:.1e} |", flush=True)
  finally:
    stop_server(proc)
    paper.stop()
  print("(env steps per second, B envs x T steps / seconds; higher is better. The fused and batched-server loops "
        "draw the same actions and must give the same rewards: the last column checks that they do the same work. "
        "The paper-style loop's rewards come from parsed text and are not compared)")


if __name__ == "__main__":
  main()
