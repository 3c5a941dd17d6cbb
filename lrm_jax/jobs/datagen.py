"""Job `datagen`: scripted experts on LRM-Bench -> `W/data/lrm_bench/1.0.0` (RLDS via TFDS), summary, videos.

Train tasks go to split `train`, held-out tasks to split `heldout` (evaluation / RL only).
"""
import json
import os
import time

from absl import logging
from clu import metric_writers
import jax
import numpy as np
import tqdm

from data_pipelines import suite_rlds_builder
from lrm_jax.datagen import episode_cache
from lrm_jax.datagen import plan as plan_lib
from lrm_jax.datagen import report
from lrm_jax.datagen import rollout as rollout_lib
from lrm_jax.envs import base
from lrm_jax.envs import experts
from lrm_jax.envs import splits


# One rollout per (scene family, compiled-in settings), kept for the process: the demo's generations (training
# sources from two cameras, held-out evaluation episodes) then share one compiled program per family.
_ROLLOUTS = {}
_COMPILED_IN = ("image_size", "noise_std", "shadows")  # everything else about a generation is data


def _rollout(family: str, config) -> rollout_lib.Rollout:
  key = (family,) + tuple(config[k] for k in _COMPILED_IN)
  if key not in _ROLLOUTS:
    c = base.default_config()  # the default embodiment runs the program; each episode brings its own look
    c.image_size = config.image_size
    _ROLLOUTS[key] = rollout_lib.Rollout(base.FamilyEnv(family, c), image_size=config.image_size,
                                         noise_std=config.noise_std, shadows=config.shadows)
  return _ROLLOUTS[key]


def _embodiment_arrays(family: str, embodiment: str, image_size: int):
  c = base.default_config()
  c.embodiment, c.image_size = embodiment, image_size
  return base.FamilyEnv(family, c).embodiment_arrays()


def cameras(config) -> list[str]:
  """`config.camera`: one camera, or several joined by "+" (episode k of the plan is seen through the k-th, cycling:
  more camera set-ups from one generation, one compiled program)."""
  return str(config.camera).split("+")


def generate(config, progress=True, cache_dir=None) -> list[dict]:
  """Runs the plan; returns episode dicts (see `rollout.Rollout`) with `embodiment` and `seed` added."""
  return generate_many([config], progress, cache_dir)[0]


def generate_many(configs, progress=True, cache_dir=None) -> list[list[dict]]:
  """Runs several datagen configs' plans as one generation: per scene family, all their episodes (whatever their
  camera, appearance strength or embodiment) go through one compiled rollout in fixed-size chunks. Configs must
  agree on what is compiled in (`_COMPILED_IN`) and on `batch_size`. Returns one episode list per config.
  cache_dir: finished chunks are kept there and a rerun loads them instead of simulating them again
  (`datagen.episode_cache`: what makes a killed generation resume); the caller removes it when done."""
  for k in _COMPILED_IN + ("batch_size",):
    if len({c[k] for c in configs}) > 1:
      raise ValueError(f"datagen configs generated together must share {k}; got {[c[k] for c in configs]}")
  jobs = []  # (config index, spec)
  for i, config in enumerate(configs):
    jobs += [(i, s) for s in plan_lib.plan_episodes(config.tasks, config.episodes_per_task, config.failure_fraction,
                                                   tuple(config.failure_modes), tuple(config.embodiments),
                                                   config.seed)]
  episodes_of = [None] * len(jobs)
  rank, seen = [], [0] * len(configs)  # each episode's index within its own config's plan
  for i, _ in jobs:
    rank.append(seen[i])
    seen[i] += 1
  camera_of = lambda n: cameras(configs[jobs[n][0]])[rank[n] % len(cameras(configs[jobs[n][0]]))]
  bar = tqdm.tqdm(total=len(jobs), desc="episodes", unit="ep", disable=not progress)
  cache = episode_cache.EpisodeCache(cache_dir) if cache_dir else None
  c0 = configs[0]
  wants_seg = [bool(c.get("semantic_seg", False)) for c in configs]
  for family in sorted({s.family for _, s in jobs}):
    ro = _rollout(family, c0)
    members = [n for n, (_, s) in enumerate(jobs) if s.family == family]
    cfgs, specs = [configs[jobs[n][0]] for n in members], [jobs[n][1] for n in members]
    arrays = {e: _embodiment_arrays(family, e, c0.image_size) for e in {s.embodiment for s in specs}}
    look = rollout_lib.looks(ro.env, [camera_of(n) for n in members],
                             [c.appearance_strength if c.randomize_appearance else 0.0 for c in cfgs],
                             [arrays[s.embodiment] for s in specs])
    rngs = np.stack([np.asarray(jax.random.PRNGKey(s.seed)) for s in specs])
    episodes = ro(rngs, [ro.env.task_index(s.task) for s in specs], [experts.MODE[s.mode] for s in specs], look,
                  batch_size=c0.batch_size, semantic_seg=any(wants_seg), on_chunk=bar.update, cache=cache)
    for n, s, ep in zip(members, specs, episodes):
      ep.update(embodiment=s.embodiment, seed=s.seed, camera=camera_of(n))
      if not wants_seg[jobs[n][0]]:
        for k in ("seg", "scene", "scene_mask"):
          ep.pop(k, None)
      episodes_of[n] = ep
  bar.close()
  if cache is not None and cache.hits:
    logging.info("datagen: %d chunks loaded from %s (a previous run's), %d simulated", cache.hits, cache_dir,
                 cache.misses)
    print(f"resumed generation: {cache.hits} finished chunk(s) of a previous run reused, {cache.misses} simulated",
          flush=True)
  # One list per config, in its plan's order.
  return [[ep for (i, _), ep in zip(jobs, episodes_of) if i == k] for k in range(len(configs))]


def _write_text(path: str, text: str) -> None:
  """Written whole or not at all (a killed run leaves no half file)."""
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)


def run(config, workdir: str):
  t0 = time.time()
  writer = metric_writers.create_default_writer(os.path.join(workdir, "tb"), just_logging=jax.process_index() > 0)
  # Finished chunks are kept here until every output is written: a rerun after a kill loads them (the TFDS
  # dataset is itself written to a temporary folder and renamed, and reused by a rerun once complete).
  cache = os.path.join(workdir, ".episodes")
  episodes = generate(config, cache_dir=cache)
  t_gen = time.time() - t0
  train = [e for e in episodes if e["task"] not in splits.HELD_OUT_TASKS]
  heldout = [e for e in episodes if e["task"] in splits.HELD_OUT_TASKS]
  split_fns = {"train": lambda: iter(train)}
  if heldout:
    split_fns["heldout"] = lambda: iter(heldout)
  data_dir = suite_rlds_builder.write(os.path.join(workdir, "data"), split_fns, config.image_size)
  table = report.success_table(episodes)
  summary = dict(
      dataset_dir=data_dir, episodes=len(episodes), train_episodes=len(train), heldout_episodes=len(heldout),
      steps=int(sum(len(e["images"]) for e in episodes)), generate_seconds=round(t_gen, 1),
      total_seconds=round(time.time() - t0, 1), success=table)
  _write_text(os.path.join(workdir, "datagen_summary.json"), json.dumps(summary, indent=2))
  text = report.format_table(table, splits.HELD_OUT_TASKS)
  _write_text(os.path.join(workdir, "datagen_summary.md"),
              f"# Data generation\n\n{len(episodes)} episodes, {summary['steps']} steps in {t_gen:.0f} s -> "
              f"`{data_dir}`\n\nSuccess rate (episodes) per task and expert mode:\n\n{text}\n")
  scalars = {f"success/{t}/{m}": v[1] for t, row in table.items() for m, v in row.items()}
  scalars.update(episodes=len(episodes), generate_seconds=t_gen)
  writer.write_scalars(0, scalars)
  writer.flush()
  if config.videos:
    report.write_videos(episodes, os.path.join(workdir, "videos"))
  episode_cache.EpisodeCache(cache).remove()
  print(f"\n{text}\n")
  print(f"{len(episodes)} episodes ({len(train)} train, {len(heldout)} held-out), {summary['steps']} steps, "
        f"generated in {t_gen:.0f} s, total {summary['total_seconds']:.0f} s -> {data_dir}")
  logging.info("datagen done: %s", summary)
  return summary
