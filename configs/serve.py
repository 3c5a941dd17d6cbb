"""Reward server: the reward model over HTTP, a drop-in for the "Large Reward Models" paper's reward-server API.

  python -m lrm_jax.main --config=configs/serve.py --workdir=W                             # the shipped LRM-tiny
  python -m lrm_jax.main --config=configs/serve.py:ckpt=W_RM,port=5001 --workdir=W         # a finished reward_model run
  python -m lrm_jax.main --config=configs/serve.py:rm=paligemma_3b,ckpt=/ckpt/pt_224.bf16.npz,tokenizer=/ckpt/tokenizer.model --workdir=W

Model: `ckpt` is a released model folder (default: the shipped LRM-tiny, `lrm_jax/models/assets/lrm_tiny`, when
the repository has one and neither `rm` nor `rm_arg` asks for another architecture), a finished `reward_model`
run's workdir (loaded as `refine` does; pass that run's config arg as `rm_arg`, "+" between items), or a big_vision
`.npz` (PaliGemma) loaded into `rm`'s architecture. With no `ckpt` and no shipped release that fits, the server
loads a freshly initialised (random, seed 0) model of `rm`'s sizes and says so in its log and in /health: its
scores are meaningless; use it to try the API.
Serving: `host` (127.0.0.1 by default: loopback only; 0.0.0.0 to reach it from a robot, no authentication),
`port` (0 = any free port; the URL goes to W/serve.json once requests are taken), `max_batch` pairs per model call,
`max_wait_ms` (how long the first request of a batch waits for company), `batch_sizes` ("+"-separated compiled
sizes; requests are padded up to one, so nothing compiles under load), `text` (answer by greedy text decoding
and parsing, one question per request, as the paper's server does: a baseline, not for use), `resize` (accept
frames of any size, resized like the scorer does; else frames must be res x res), `max_body_mb`,
`max_instruction_chars`, `graceful_s` (SIGTERM: seconds to finish in-flight requests), `data_parallel` (split
each gathered batch over the local devices, one CPU device per core: uses both cores of a quiet 2-core machine;
no gain measured on a busy one, bench/RESULTS.md).
"""
import os

import ml_collections

from lrm_jax.models import release
from lrm_jax.utils import config_args

_HERE = os.path.dirname(os.path.abspath(__file__))


def get_config(arg=None):
  a = config_args.parse_arg(arg, ckpt="", rm="cpu_demo", rm_arg="", tokenizer="", host="127.0.0.1", port=5001,
                            max_batch=64, max_wait_ms=5.0, batch_sizes="1+4+16+64", text=False, resize=False,
                            max_body_mb=64, max_instruction_chars=512, graceful_s=30.0, log_level="warning",
                            data_parallel=False)
  c = ml_collections.ConfigDict()
  c.job = "serve"
  # No ckpt: the released LRM-tiny when the repository ships one (lrm_jax/models/assets/lrm_tiny), else untrained.
  # An rm other than cpu_demo, or an rm_arg, asks for another architecture, which the release's params do not fit.
  shipped = a.rm == "cpu_demo" and not a.rm_arg and release.is_release(release.LRM_TINY)
  c.ckpt = a.ckpt or (release.LRM_TINY if shipped else "")
  # The reward model's architecture (and, with a run's workdir as ckpt, how that run was configured).
  c.reward_model = config_args.load_file(os.path.join(_HERE, "reward_model", f"{a.rm}.py")
                                         + (":" + a.rm_arg.replace("+", ",") if a.rm_arg else ""))
  if a.tokenizer:
    c.reward_model.init.tokenizer = a.tokenizer
  c.server = dict(host=a.host, port=a.port, max_batch=a.max_batch, max_wait_ms=a.max_wait_ms,
                  batch_sizes=tuple(int(b) for b in a.batch_sizes.split("+")), text=a.text, resize=a.resize,
                  max_body_bytes=int(a.max_body_mb * (1 << 20)), max_instruction_chars=a.max_instruction_chars,
                  graceful_s=a.graceful_s, log_level=a.log_level,
                  data_parallel=a.data_parallel)
  c.compile_cache_dir = ""
  return c
