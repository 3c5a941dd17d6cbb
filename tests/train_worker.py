"""A tiny reward-model training run for tests/test_train.py (run as a subprocess so it can be killed with -9).

  python -m tests.train_worker WORKDIR STEPS [SLEEP]
Deterministic synthetic batches per step; appends "step loss" per finished step to WORKDIR/losses.txt and writes
the final params' checksum to WORKDIR/final.json.
"""
import json
import os
import sys
import time

import jax
import ml_collections
import numpy as np

from lrm_jax.models import paligemma
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.train import batches as batches_lib
from lrm_jax.train import trainer as trainer_lib

IMG = 16


def config(steps):
  return ml_collections.ConfigDict(dict(
      total_steps=steps, image_size=IMG, checkpoint_every=2, keep_checkpoints=2, log_every=1, eval_every=1,
      optim=dict(lr=1e-3, warmup_steps=2, weight_decay=1e-4, grad_clip=1.0), freeze=(), mesh=dict(data=1, fsdp=-1),
      param_sharding="fsdp"))


def batch_for(step, tok):
  rng = np.random.default_rng(step)
  kinds = ["progress", "completion", "contrastive", "progress"]
  answers = [f"{rng.integers(0, 11) / 10:.1f}", "yes" if rng.random() < 0.5 else "no", "AB"[rng.integers(2)],
             "0.5"]
  elements = dict(images=rng.integers(0, 256, (4, 2, IMG, IMG, 3), dtype=np.uint8),
                  instruction=np.array(["open the drawer"] * 4, object), kind=np.array(kinds, object),
                  answer=np.array(answers, object), target=np.zeros(4, np.float32))
  return batches_lib.to_model_batch(elements, tok, 32)


def main(workdir, steps, sleep=0.0):
  tok = tokenizer_lib.load()
  model = paligemma.Model(**paligemma.get_config("tiny", llm=dict(vocab_size=tok.vocab_size)))
  init = lambda: paligemma.init(model, jax.random.PRNGKey(0), IMG, num_images=2)

  def train_batches(start):
    for step in range(start, steps):
      if sleep:
        time.sleep(sleep)  # gives the test time to kill the run between checkpoints
      yield batch_for(step, tok)

  def on_eval(step, metrics):
    with open(os.path.join(workdir, "losses.txt"), "a") as f:
      f.write(f"{step} {metrics['val/nll']:.9e}\n")

  trainer = trainer_lib.Trainer(config(steps), model, init, workdir)
  state = trainer.run(train_batches, [batch_for(10_000, tok)], on_eval)
  leaves = jax.tree.leaves(jax.device_get(state.params))
  with open(os.path.join(workdir, "final.json"), "w") as f:
    json.dump(dict(step=int(state.step), checksum=float(sum(np.sum(np.abs(x), dtype=np.float64) for x in leaves)),
                   first=np.asarray(leaves[0]).ravel()[:8].tolist()), f)


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
