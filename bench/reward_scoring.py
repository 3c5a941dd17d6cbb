"""Reward scoring throughput: frames/s for one, two and three signals, interval K = 1 and 10, side by side.

  python bench/reward_scoring.py                      # the cpu_demo reward model (64x64, patch 16, width 128)
  python bench/reward_scoring.py --model=small        # 64x64, patch 8, widths 256 (the VLM bench's small config)

What is timed is what the RL loop runs: a jitted `lax.scan` over T env steps of a batch of B frames; every K-th step
the reward model scores the new frame against the frame of the previous query (whose image encoding is carried, so
each query encodes one frame), and in between the value is held. frames/s counts env frames (B * T / seconds).
Columns: the fused scorer with 1, 2 and 3 signals; and 3 signals as three separate single-signal scorers (each
encoding the frame and running the prefix itself), which is what sharing the encoding and the prefix saves.
Target (issue 5): 3 signals cost <= 1.5x one signal.
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import prompts
from lrm_jax.models import paligemma
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.rewards import scoring
from lrm_jax.utils import timing

MODELS = {
    "cpu_demo": dict(res=64, patch=16, width=128, depth=4),
    "small": dict(res=64, patch=8, width=256, depth=4),
}


def build(name, vocab):
  m = MODELS[name]
  tower = dict(width=m["width"], depth=m["depth"], mlp_dim=4 * m["width"], num_heads=4)
  model = paligemma.Model(**paligemma.get_config(
      "tiny", img=dict(variant=f"mu/{m['patch']}", **tower),
      llm=dict(variant="gemma_tiny", **tower, num_kv_heads=1, head_dim=m["width"] // 4, vocab_size=vocab)))
  return model, m["res"]


def make_loop(scorer, interval: int):
  """Jitted scan over env frames: query every `interval` steps (encoding only the new frame), hold in between."""
  def run(params, frames, prefix, mask):  # frames [T, B, H, W, 3]
    first = scorer.embed(params, frames[0])
    held0 = {k: jnp.zeros(frames.shape[1]) for k in scorer.kinds}

    def step(carry, xs):
      prev, held = carry
      t, frame = xs

      def query(_):
        cur = scorer.embed(params, frame)
        r = scorer.score_embedded(params, prev, cur, prefix, mask)
        return cur, {k: r[k] for k in scorer.kinds}

      prev, held = jax.lax.cond(t % interval == 0, query, lambda _: (prev, held), None)
      return (prev, held), sum(held.values())

    _, rewards = jax.lax.scan(step, (first, held0), (jnp.arange(frames.shape[0]), frames))
    return rewards

  return jax.jit(run)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--model", default="cpu_demo", choices=sorted(MODELS))
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--steps", type=int, default=20, help="env steps per timed scan (a multiple of 10)")
  args = ap.parse_args()
  tok = tokenizer_lib.load()
  model, res = build(args.model, tok.vocab_size)
  params = paligemma.init(model, jax.random.PRNGKey(0), res, num_images=2)
  frames = np.random.default_rng(0).integers(0, 256, (args.steps, args.batch, res, res, 3), dtype=np.uint8)
  variants = {
      "1 signal": scoring.Scorer(model, tok, res, (prompts.PROGRESS,)),
      "2 signals": scoring.Scorer(model, tok, res, (prompts.PROGRESS, prompts.COMPLETION)),
      "3 signals": scoring.Scorer(model, tok, res),
      "completion only": scoring.Scorer(model, tok, res, (prompts.COMPLETION,)),
      "contrastive only": scoring.Scorer(model, tok, res, (prompts.CONTRASTIVE,)),
  }
  enc = variants["3 signals"].encode_instructions(["put the red cube on the plate"])
  prefix, mask = enc["tokens"][0], enc["mask"][0]
  print(f"# reward scoring, model {args.model} ({res}x{res}), batch {args.batch}, {args.steps} env steps per scan, "
        f"{jax.devices()[0].platform}")
  secs = {}
  for k in (1, 10):
    for name, scorer in variants.items():
      secs[k, name] = timing.best_time(make_loop(scorer, k), params, frames, prefix, mask)
  rows = {key: args.batch * args.steps / t for key, t in secs.items()}
  for k in (1, 10):  # three single-signal scorers run one after another: nothing shared
    rows[k, "3 separate"] = args.batch * args.steps / sum(
        secs[k, n] for n in ("1 signal", "completion only", "contrastive only"))
  names = ["1 signal", "2 signals", "3 signals", "3 separate"]
  print("| K | " + " | ".join(f"{n} (frames/s)" for n in names) + " | cost 3 / 1 | cost 3 separate / 3 fused |")
  print("|---" * (len(names) + 3) + "|")
  for k in (1, 10):
    r = [rows[k, n] for n in names]
    print(f"| {k} | " + " | ".join(f"{x:,.0f}" for x in r) +
          f" | {rows[k, '1 signal'] / rows[k, '3 signals']:.2f}x | {rows[k, '3 signals'] / rows[k, '3 separate']:.2f}x |")


if __name__ == "__main__":
  main()
