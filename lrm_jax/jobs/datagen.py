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
from lrm_jax.datagen import plan as plan_lib
from lrm_jax.datagen import report
from lrm_jax.datagen import rollout as rollout_lib
from lrm_jax.envs import base
from lrm_jax.envs import experts
from lrm_jax.envs import splits


def _env_config(config, embodiment):
  c = base.default_config()
  c.embodiment = embodiment
  c.image_size = config.image_size
  c.randomize_appearance = config.randomize_appearance
  c.appearance_strength = config.appearance_strength
  return c


def generate(config, progress=True) -> list[dict]:
  """Runs the plan; returns episode dicts (see `rollout.Rollout`) with `embodiment` and `seed` added."""
  specs = plan_lib.plan_episodes(config.tasks, config.episodes_per_task, config.failure_fraction,
                                 tuple(config.failure_modes), tuple(config.embodiments), config.seed)
  rollouts, arrays = {}, {}
  episodes = []
  bar = tqdm.tqdm(total=len(specs), desc="episodes", unit="ep", disable=not progress)
  for (family, embodiment), group in plan_lib.batches(specs, config.batch_size):
    if family not in rollouts:  # one compiled program per family; the first embodiment's env runs it
      env = base.FamilyEnv(family, _env_config(config, config.embodiments[0]))
      rollouts[family] = rollout_lib.Rollout(env, camera=config.camera, image_size=config.image_size,
                                             noise_std=config.noise_std, shadows=config.shadows,
                                             semantic_seg=bool(config.get("semantic_seg", False)))
    if (family, embodiment) not in arrays:
      arrays[family, embodiment] = base.FamilyEnv(family, _env_config(config, embodiment)).embodiment_arrays()
    ro = rollouts[family]
    padded = group + [group[-1]] * (config.batch_size - len(group))  # fixed shapes: no recompilation
    rngs = np.stack([np.asarray(jax.random.PRNGKey(s.seed)) for s in padded])
    task_ids = [ro.env.task_index(s.task) for s in padded]
    modes = [experts.MODE[s.mode] for s in padded]
    out = ro(rngs, task_ids, modes, arrays[family, embodiment])[:len(group)]
    for ep, s in zip(out, group):
      ep.update(embodiment=embodiment, seed=s.seed)
    episodes += out
    bar.update(len(group))
  bar.close()
  return episodes


def run(config, workdir: str):
  t0 = time.time()
  writer = metric_writers.create_default_writer(os.path.join(workdir, "tb"), just_logging=jax.process_index() > 0)
  episodes = generate(config)
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
  with open(os.path.join(workdir, "datagen_summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  text = report.format_table(table, splits.HELD_OUT_TASKS)
  with open(os.path.join(workdir, "datagen_summary.md"), "w") as f:
    f.write(f"# Data generation\n\n{len(episodes)} episodes, {summary['steps']} steps in {t_gen:.0f} s -> "
            f"`{data_dir}`\n\nSuccess rate (episodes) per task and expert mode:\n\n{text}\n")
  scalars = {f"success/{t}/{m}": v[1] for t, row in table.items() for m, v in row.items()}
  scalars.update(episodes=len(episodes), generate_seconds=t_gen)
  writer.write_scalars(0, scalars)
  writer.flush()
  if config.videos:
    report.write_videos(episodes, os.path.join(workdir, "videos"))
  print(f"\n{text}\n")
  print(f"{len(episodes)} episodes ({len(train)} train, {len(heldout)} held-out), {summary['steps']} steps, "
        f"generated in {t_gen:.0f} s, total {summary['total_seconds']:.0f} s -> {data_dir}")
  logging.info("datagen done: %s", summary)
  return summary
