"""What a person looks at after data generation: a success table per task and noise level, and videos."""
import collections
import os

import imageio.v2 as imageio
import numpy as np

# imageio-ffmpeg starts ffmpeg with `preexec_fn=os.setpgrp` (to keep Ctrl-C from reaching it), so Python code runs
# in a forked copy of this multithreaded (JAX) process before exec; that is the fork JAX warns about, and
# imageio-ffmpeg's issue #58 reports such starts hanging. Its own switch turns the preexec_fn off; the cost is that
# Ctrl-C also stops ffmpeg, whose video the interrupted run would not finish anyway. An explicit setting wins.
# (data_pipelines/video.py sets the same for decoding.)
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")


def success_table(episodes: list[dict]) -> dict[str, dict[str, list[float]]]:
  """{task: {noise: [n_episodes, success_rate]}}."""
  counts = collections.defaultdict(lambda: collections.defaultdict(list))
  for ep in episodes:
    counts[ep["task"]][ep["noise"]].append(float(ep["success"]))
  return {t: {m: [len(v), float(np.mean(v))] for m, v in sorted(modes.items())} for t, modes in sorted(counts.items())}


def format_table(table, held_out=frozenset()) -> str:
  modes = sorted({m for row in table.values() for m in row}, key=lambda m: (m != "clean", m))
  lines = ["| task | split | " + " | ".join(modes) + " |", "|---|---|" + "---|" * len(modes)]
  for task, row in table.items():
    cells = [f"{row[m][1]:.0%} ({row[m][0]})" if m in row else "-" for m in modes]
    lines.append(f"| {task} | {'held-out' if task in held_out else 'train'} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _upscale(frames: np.ndarray, min_size: int = 192) -> np.ndarray:
  k = max(1, min_size // frames.shape[1])
  return frames.repeat(k, axis=1).repeat(k, axis=2)


def write_mp4(path: str, frames: np.ndarray, fps: int = 12) -> str:
  """Frames [T, H, W, 3] (upscaled to >= 192 px) as an mp4, written to a temporary name and renamed."""
  imageio.mimwrite(path + ".tmp.mp4", list(_upscale(frames)), fps=fps, macro_block_size=1)
  os.replace(path + ".tmp.mp4", path)
  return path


def contact_sheet(path: str, episodes, columns: int = 8, frames_per_episode: int = 8, labels=None,
                  title: str = "") -> str:
  """Evenly spaced frames of each episode ([T, H, W, 3] each) in a grid of `columns` columns, every frame with its
  control step under it (frame t is the observation after t actions), each episode starting a new row, labelled
  on the left. A grid rather than one strip: a strip of 8 frames x 4 episodes at 192 px was 6144 px wide and
  unreadable. Written as a PNG to a temporary name and renamed."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  episodes = [np.asarray(e) for e in episodes]
  labels = list(labels) if labels is not None else [f"episode {i}" for i in range(len(episodes))]
  rows_per = -(-frames_per_episode // columns)
  cols = min(columns, frames_per_episode)
  fig, axes = plt.subplots(rows_per * len(episodes), cols, figsize=(1.6 * cols, 1.75 * rows_per * len(episodes)
                                                                    + (0.4 if title else 0.0)), squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for e, frames in enumerate(episodes):
    idx = np.unique(np.linspace(0, len(frames) - 1, frames_per_episode).round().astype(int))
    for j, t in enumerate(idx):
      ax = axes[e * rows_per + j // cols, j % cols]
      ax.axis("on")
      ax.set_xticks([])
      ax.set_yticks([])
      ax.imshow(frames[t], interpolation="nearest")
      ax.set_xlabel(f"step {t}" + (f" / {len(frames) - 1}" if t == idx[-1] else ""), fontsize=8, labelpad=2)
      if j == 0:
        ax.set_ylabel(labels[e], fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout(pad=0.4, h_pad=0.3, w_pad=0.3)
  fig.savefig(path + ".tmp.png", dpi=100)
  plt.close(fig)
  os.replace(path + ".tmp.png", path)
  return path


def write_videos(episodes: list[dict], out_dir: str, fps: int = 12) -> list[str]:
  """One mp4 per task (a clean episode if there is one) and a contact sheet of 16 evenly spaced frames."""
  os.makedirs(out_dir, exist_ok=True)
  chosen = {}
  for ep in episodes:
    best = chosen.get(ep["task"])
    if best is None or (ep["noise"] == "clean" and ep["success"] and not (best["noise"] == "clean" and best["success"])):
      chosen[ep["task"]] = ep
  paths = []
  for task, ep in sorted(chosen.items()):
    path = write_mp4(os.path.join(out_dir, f"{task}.mp4"), ep["images"], fps)
    contact_sheet(os.path.join(out_dir, f"{task}.png"), [ep["images"]], frames_per_episode=16,
                  labels=[f"{ep['noise']}, {'success' if ep['success'] else 'failure'}"],
                  title=f"{task}: {ep['instruction']}")
    paths.append(path)
  return paths
