"""Job `reward_data`: simulated training-task episodes -> three sources in real on-disk formats -> the mixture.

  W/sources/lrm_bench/1.0.0      gripper episodes, suite RLDS (success flags, failure modes)     reader lrm_bench
  W/sources/EPIC-KITCHENS/       clean successful "hand" episodes as EPIC-KITCHENS-100 narrations reader epic_kitchens
  W/sources/lrm_bench_oxe/0.1.0  side camera, stronger appearance randomisation, Open-X layout     reader oxe
Then `data_pipelines.mixture.build_mixture` over `config.mixture` (held-out tasks excluded, and every phrasing of
every held-out task refused), a few batches, `W/reward_data_examples.png` and `W/reward_data_summary.json`.

Held-out tasks are kept out three times: the configs' task lists are checked before anything runs, every generated
episode's task and instruction are checked before anything is written, and the mixture's guard refuses held-out
tasks and instructions on reading (the EPIC and Open-X layouts carry no task names, so their check is by text).
"""
import collections
import itertools
import json
import os
import re
import textwrap
import time

from absl import logging
import numpy as np

from data_pipelines import export
from data_pipelines import mixture as mixture_lib
from data_pipelines import suite_rlds_builder
from lrm_jax.envs import language
from lrm_jax.envs import scene
from lrm_jax.envs import splits
from lrm_jax.utils import run_files


def held_out_instructions() -> frozenset[str]:
  """Every filled phrasing of every held-out task (all colour assignments of its slots)."""
  return frozenset(_instructions(splits.HELD_OUT_TASKS))


def _instructions(tasks) -> set[str]:
  out = set()
  for task in tasks:
    for template in language.TEMPLATES[task]:
      slots = sorted(set(re.findall(r"\{(\w+)\}", template)))
      colours = [scene.CUBE_COLORS if s.startswith("c") else scene.BUTTON_COLORS for s in slots]
      for combo in itertools.product(*colours):
        out.add(template.format(**dict(zip(slots, combo))))
  return out


def check_train_only(episodes, what: str = "reward-model training sources") -> None:
  """Raises ValueError if an episode's task is held out or its instruction is a held-out task's phrasing."""
  splits.check_not_held_out({e["task"] for e in episodes}, what)
  banned = held_out_instructions()
  leaked = sorted({e["instruction"] for e in episodes} & banned)
  if leaked:
    raise ValueError(f"instruction(s) of held-out tasks {leaked[:3]} must never appear in {what}")


def _fps() -> float:
  """The suite's control rate: one frame per control step (physics timestep x n_substeps)."""
  from lrm_jax.envs import base
  env = base.FamilyEnv("table", base.default_config())
  return round(1.0 / (float(env.mj_model.opt.timestep) * env.config.n_substeps), 3)


def build_sources(config, root: str) -> dict:
  """Generates train-task episodes twice and writes the three sources under `root`; returns what was written."""
  from lrm_jax.jobs import datagen  # the generator (MJX + renderer) is only needed when building sources
  stride = int(config.get("tower_frame_stride", 0))
  for dg in (config.datagen, config.datagen_oxe):
    splits.check_not_held_out(dg.tasks, "reward_data config tasks")

  dgs = []
  for dg in (config.datagen, config.datagen_oxe):
    if stride:  # also record semantic segmentation: labels for pretraining the image tower (TOWER_FRAMES)
      dg = dg.copy_and_resolve_references()
      dg.unlock()
      dg.semantic_seg = True
    dgs.append(dg)

  # A killed run may have left half-written sources in temporary folders: they are written again below.
  for path in export.remove_incomplete(root):
    logging.info("reward_data: removed %s (an interrupted run's unfinished source)", path)
  info = {}
  t0 = time.time()
  logging.info("reward_data: generating %d tasks x %d episodes (camera %s) and %d tasks x %d episodes (camera %s)",
               len(config.datagen.tasks), config.datagen.episodes_per_task, config.datagen.camera,
               len(config.datagen_oxe.tasks), config.datagen_oxe.episodes_per_task, config.datagen_oxe.camera)
  # One generation for both sources: per scene family one compiled rollout runs both cameras' episodes.
  # Finished chunks are kept under root/.episodes until `ensure_sources` has recorded the sources as complete, so a
  # run killed while generating or writing resumes from them.
  episodes, oxe_eps = datagen.generate_many(dgs, cache_dir=os.path.join(root, EPISODE_CACHE))
  check_train_only(episodes)
  check_train_only(oxe_eps)
  gripper = [e for e in episodes if e["embodiment"] == "gripper"]
  hand = [e for e in episodes if e["embodiment"] == "hand"]
  hand_demos = [e for e in hand if e["noise"] == "clean" and e["success"]]
  oxe_demos = [e for e in oxe_eps if e["success"]]
  t2 = time.time()

  with export.atomic_dir(os.path.join(root, suite_rlds_builder.NAME), inner=suite_rlds_builder.NAME) as tmp:
    suite_rlds_builder.write(tmp, {"train": lambda: iter(gripper)}, config.datagen.image_size)
  epic_root = os.path.join(root, "EPIC-KITCHENS")
  with export.atomic_dir(epic_root) as tmp:
    rows = export.write_epic(tmp, hand_demos, _fps(), segments_per_video=config.epic_segments_per_video)
  with export.atomic_dir(os.path.join(root, export.OXE_NAME), inner=export.OXE_NAME) as tmp:
    export.write_oxe_rlds(tmp, oxe_demos, config.datagen_oxe.image_size)
  if stride:
    info["tower_frames"] = write_tower_frames(os.path.join(root, TOWER_FRAMES), episodes + oxe_eps, stride)
  t3 = time.time()

  def tasks_of(eps):
    return dict(sorted(collections.Counter(e["task"] for e in eps).items()))

  info.update(
      generate_seconds=round(t2 - t0, 1), write_seconds=round(t3 - t2, 1),
      generated=dict(first=len(episodes), second=len(oxe_eps)),
      lrm_bench=dict(path=os.path.join(root, suite_rlds_builder.NAME, suite_rlds_builder.VERSION),
                     episodes=len(gripper), successful=sum(bool(e["success"]) for e in gripper),
                     tasks=tasks_of(gripper)),
      epic_kitchens=dict(path=epic_root, segments=len(rows), videos=len({r["video_id"] for r in rows}),
                         dropped_hand_episodes=len(hand) - len(hand_demos), tasks=tasks_of(hand_demos)),
      lrm_bench_oxe=dict(path=os.path.join(root, export.OXE_NAME, export.OXE_VERSION), episodes=len(oxe_demos),
                         dropped_failed=len(oxe_eps) - len(oxe_demos), tasks=tasks_of(oxe_demos)))
  print(f"sources under {root}: lrm_bench {len(gripper)} gripper episodes; EPIC-KITCHENS {len(rows)} hand "
        f"narrations ({info['epic_kitchens']['dropped_hand_episodes']} failed/noisy hand episodes dropped); "
        f"lrm_bench_oxe {len(oxe_demos)} side-camera demos; generated in {info['generate_seconds']:.0f} s, "
        f"written in {info['write_seconds']:.0f} s", flush=True)
  return info


TOWER_FRAMES = "tower_frames.npz"
SOURCES_MARKER = "sources.json"  # written last: the sources under a root are complete
EPISODE_CACHE = ".episodes"


def _built_from(config) -> dict:
  """The settings that decide the generated sources (recorded in the marker, compared on reuse)."""
  keys = ("datagen", "datagen_oxe", "epic_segments_per_video", "tower_frame_stride")
  return json.loads(json.dumps({k: config.get(k) for k in keys}, sort_keys=True, default=lambda v: (
      v.to_dict() if hasattr(v, "to_dict") else str(v))))


def ensure_sources(config, root: str) -> dict:
  """The generated sources under `root`: reused when a previous run finished building them from the same settings
  (`root/sources.json`), else built (`build_sources`; a killed build resumes from its finished chunks). Returns what
  was built."""
  marker = os.path.join(root, SOURCES_MARKER)
  built_from = _built_from(config)
  if os.path.exists(marker):
    with open(marker) as f:
      info = json.load(f)
    # Markers written before the settings were recorded carry none: trusted, as they were before.
    if info.get("built_from", built_from) == built_from:
      from lrm_jax.datagen import episode_cache  # a kill between the marker and the clean-up leaves chunks behind
      episode_cache.EpisodeCache(os.path.join(root, EPISODE_CACHE)).remove()
      print(f"sources under {root}: complete from a previous run, reused", flush=True)
      return info
  info = dict(build_sources(config, root), built_from=built_from)
  run_files.write_json(marker, info)
  from lrm_jax.datagen import episode_cache
  episode_cache.EpisodeCache(os.path.join(root, EPISODE_CACHE)).remove()
  return info


def write_tower_frames(path: str, episodes, stride: int) -> dict:
  """Every `stride`-th frame of the (training-task) episodes with its semantic segmentation and scene state
  (`base.SCENE_STATE`, with its mask), for pretraining the image tower (`lrm_jax.train.tower_pretrain`); written
  atomically. Returns what was written."""
  check_train_only(episodes, "image-tower pretraining frames")
  cat = lambda k: np.concatenate([e[k][::stride] for e in episodes])
  with open(path + ".tmp", "wb") as f:
    np.savez(f, frames=cat("images"), seg=cat("seg"), scene=cat("scene"), scene_mask=cat("scene_mask"))
  os.replace(path + ".tmp", path)
  return dict(path=path, frames=int(sum(len(e["images"][::stride]) for e in episodes)), episodes=len(episodes),
              stride=stride)


def resolve_sources(mixture_config, root: str) -> dict:
  """Plain-dict copy of the mixture config with relative source paths resolved against `root`."""
  mc = mixture_config.to_dict() if hasattr(mixture_config, "to_dict") else dict(mixture_config)
  sources = []
  for s in mc["sources"]:
    s = dict(s.to_dict() if hasattr(s, "to_dict") else s)
    if not os.path.isabs(s["path"]):
      s["path"] = os.path.join(root, s["path"])
    sources.append(s)
  mc["sources"] = sources
  return mc


def save_grid(examples: list[dict], path: str) -> None:
  """One panel per example: its image(s) side by side, the prompt (wrapped) and the answer."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  n = len(examples)
  cols = min(4, n)
  rows = (n + cols - 1) // cols
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for ax, ex in zip(axes.ravel(), examples):
    imgs = ex["images"][: int(ex["num_images"])]
    gap = np.full((imgs.shape[1], max(2, imgs.shape[2] // 16), 3), 255, np.uint8)
    ax.imshow(np.concatenate([x for img in imgs for x in (img, gap)][:-1], axis=1))
    prompt = "\n".join(textwrap.wrap(ex["prompt"], 48)[:6])
    ax.set_title(f"[{ex['source']}] {ex['kind']}\n{prompt}\n-> {ex['answer']}", fontsize=7, loc="left")
  fig.tight_layout()
  fig.savefig(path + ".tmp.png", dpi=110)
  plt.close(fig)
  os.replace(path + ".tmp.png", path)


def _text(x):
  return x.decode() if isinstance(x, bytes) else str(x)


def run(config, workdir: str):
  t0 = time.time()
  root = os.path.abspath(config.root or os.path.join(workdir, "sources"))
  info = ensure_sources(config, root) if config.generate else {}
  t_sources = time.time() - t0
  mc = resolve_sources(config.mixture, root)
  ds, mix = mixture_lib.build_mixture(mc, exclude_tasks=splits.HELD_OUT_TASKS,
                                      exclude_instructions=held_out_instructions())
  t_mix = time.time() - t0 - t_sources
  seen = collections.Counter()
  answers = collections.Counter()
  shown = []
  for batch in ds.take(int(config.batches)).as_numpy_iterator():
    for b in range(len(batch["prompt"])):
      ex = {k: (_text(v[b]) if v.dtype.kind in "SO" else v[b]) for k, v in batch.items()}
      seen[ex["source"]] += 1
      answers[f"{ex['kind']}:{ex['answer'] if ex['kind'] != 'progress' else '*'}"] += 1
      if len(shown) < int(config.examples):
        shown.append(ex)
  if not seen:
    raise RuntimeError("reward_data: the mixture yielded no examples")
  if shown:
    save_grid(shown, os.path.join(workdir, "reward_data_examples.png"))
  summary = dict(
      sources_root=root, built=info,
      mixture=dict(text=mix.summary_text(), excluded_tasks=sorted(splits.HELD_OUT_TASKS),
                   sources=[dict(s.__dict__, path=src["path"], format=str(src["format"]))
                            for s, src in zip(mix.summary, mc["sources"])]),
      batches=dict(taken=int(config.batches), batch_size=mc.get("batch_size"), examples_by_source=dict(seen),
                   examples_by_kind_answer=dict(sorted(answers.items()))),
      seconds=dict(sources=round(t_sources, 1), mixture=round(t_mix, 1), total=round(time.time() - t0, 1)))
  with open(os.path.join(workdir, "reward_data_summary.json") + ".tmp", "w") as f:
    json.dump(summary, f, indent=2, default=str)
  os.replace(os.path.join(workdir, "reward_data_summary.json") + ".tmp",
             os.path.join(workdir, "reward_data_summary.json"))
  print(f"{sum(seen.values())} examples in {config.batches} batches, by source: {dict(seen)}; "
        f"total {summary['seconds']['total']:.0f} s -> {workdir}", flush=True)
  logging.info("reward_data done: %s", summary["seconds"])
  return summary
