"""Job `serve`: load a reward model, compile its batch sizes, answer HTTP requests until SIGTERM.

See configs/serve.py for the model sources and server options and lrm_jax/serving/app.py for the routes.
"""
import os

import jax
from absl import logging

from lrm_jax.jobs import reward_model as reward_model_job
from lrm_jax.models import paligemma
from lrm_jax.models import release
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.rewards import scoring
from lrm_jax.serving import app as app_lib
from lrm_jax.serving import codec
from lrm_jax.serving import engine as engine_lib
from lrm_jax.serving import server


def load_model(config):
  """(model, tokenizer, params, description) from config.ckpt: a reward_model run's workdir, a big_vision .npz,
  or nothing (a randomly initialised model, labelled UNTRAINED)."""
  rm, ckpt = config.reward_model, config.ckpt
  if ckpt and os.path.isdir(ckpt):
    model, tok, params, _ = reward_model_job.load_trained(rm, ckpt)
    kind = "released reward model" if release.is_release(ckpt) else "reward_model run"
    return model, tok, params, f"{kind} {os.path.abspath(ckpt)}"
  tok = tokenizer_lib.load(rm.init.tokenizer or None)
  model = reward_model_job.build_model(rm, tok)
  if ckpt:
    if not (os.path.isfile(ckpt) and ckpt.endswith(".npz")):
      raise FileNotFoundError(f"ckpt={ckpt!r}: expected a reward_model run's workdir or a big_vision .npz file")
    return model, tok, paligemma.load(ckpt, model, rm.image_size), f"big_vision checkpoint {os.path.abspath(ckpt)}"
  params = jax.device_get(paligemma.init(model, jax.random.PRNGKey(rm.seed), rm.image_size, num_images=2))
  return model, tok, params, (f"UNTRAINED: randomly initialised {rm.model.variant} model (seed {rm.seed}, "
                              f"{rm.image_size} px); scores are meaningless, for trying the API only")


def build_app(config, description_out: list = None):
  model, tok, params, description = load_model(config)
  s = config.server
  image_size = (reward_model_job.image_size_of(config.reward_model, config.ckpt) if config.ckpt
                else int(config.reward_model.image_size))
  engine = engine_lib.Engine(scoring.Scorer(model, tok, image_size), params,
                             batch_sizes=s.batch_sizes, text=s.text, data_parallel=s.data_parallel)
  limits = codec.Limits(engine.image_size, resize=s.resize, max_instruction_chars=s.max_instruction_chars,
                        max_pairs=max(1024, s.max_batch))
  if description_out is not None:
    description_out.append(description)
  return engine, app_lib.create_app(engine, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms,
                                    max_body_bytes=s.max_body_bytes, limits=limits, description=description)


def run(config, workdir: str):
  desc = []
  engine, app = build_app(config, desc)
  logging.info("reward server model: %s", desc[0])
  print(f"reward server model: {desc[0]}", flush=True)
  s = config.server
  print(f"compiling batch sizes {list(engine.batch_sizes)} ({'text decoding' if s.text else 'expectation'} "
        "answers) ...", flush=True)
  engine.warmup()
  server.serve(app, s.host, s.port, ready_file=os.path.join(workdir, "serve.json"), graceful_s=s.graceful_s,
               log_level=s.log_level)
  print("reward server stopped", flush=True)
