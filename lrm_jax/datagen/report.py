"""What a person looks at after data generation: a success table per task and noise level, and videos."""
import collections
import os

import imageio.v2 as imageio
import numpy as np


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


def write_videos(episodes: list[dict], out_dir: str, fps: int = 12) -> list[str]:
  """One mp4 per task (a clean episode if there is one) and a contact sheet of 8 evenly spaced frames."""
  os.makedirs(out_dir, exist_ok=True)
  chosen = {}
  for ep in episodes:
    best = chosen.get(ep["task"])
    if best is None or (ep["noise"] == "clean" and ep["success"] and not (best["noise"] == "clean" and best["success"])):
      chosen[ep["task"]] = ep
  paths = []
  for task, ep in sorted(chosen.items()):
    frames = _upscale(ep["images"])
    path = os.path.join(out_dir, f"{task}.mp4")
    imageio.mimwrite(path + ".tmp.mp4", list(frames), fps=fps, macro_block_size=1)
    os.replace(path + ".tmp.mp4", path)
    idx = np.linspace(0, len(frames) - 1, 8).round().astype(int)
    imageio.imwrite(os.path.join(out_dir, f"{task}.png"), np.concatenate(list(frames[idx]), axis=1))
    paths.append(path)
  return paths
