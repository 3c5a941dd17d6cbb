"""Score a released model on the evaluation episodes of a finished `reward_model` run, for a paired comparison.

  python bench/score_release.py --release=lrm_jax/models/assets/lrm_tiny --like=W --out=W_SHIPPED \
      [--config=configs/reward_model/lrm_tiny.py]
  python bench/paired_voc.py W W_SHIPPED [--eval_set=in_distribution|other_look] [--mode=...]

A new release candidate (a `reward_model` run in W) and a released model (e.g. the shipped one) were evaluated on
different episodes whenever their configs differ (the in-distribution set follows the training tasks). This copies
W's cached evaluation episodes (W/eval/heldout.npz and W/eval_<set>/episodes.npz for each of the config's
`eval_sets`) into OUT and scores the released model on exactly those, as the job scores its own (same interval and
metrics, the model's answers only: no baselines, no free-text explanations). OUT then has a run's evaluation layout
(W/eval/metrics.json with `other_sets`, the open-loop exports), so `bench/paired_voc.py` pairs the two models
episode by episode. Nothing is trained; the held-out episodes stay evaluation only.
"""
import argparse
import os
import shutil

from lrm_jax.utils import host_devices

host_devices.use_all_cores()  # as lrm_jax.main

from data_pipelines import errors  # noqa: E402
from lrm_jax import main as lrm_main  # noqa: E402
from lrm_jax.jobs import reward_model  # noqa: E402
from lrm_jax.models import release  # noqa: E402
from lrm_jax.rewards import scoring  # noqa: E402
from lrm_jax.utils import compile_cache  # noqa: E402
from lrm_jax.utils import config_args  # noqa: E402


def copy_episodes(like: str, out: str, sets) -> None:
  """W's evaluation episodes into OUT, where the job's episode caches look for them (never simulated again)."""
  pairs = [("eval/heldout.npz", "eval/heldout.npz")]
  pairs += [(f"eval_{name}/episodes.npz", f"eval_{name}/episodes.npz") for name in sets]
  for src, dst in pairs:
    src, dst = os.path.join(like, src), os.path.join(out, dst)
    if not os.path.exists(src):
      raise config_args.ConfigError("--like", f"a finished reward_model run's workdir holding {src}", like)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--release", required=True, help="a released model folder (manifest.json, params, tokenizer)")
  ap.add_argument("--like", required=True, help="the finished run whose evaluation episodes to score")
  ap.add_argument("--out", required=True, help="a new folder for the released model's scores")
  ap.add_argument("--config", default="configs/reward_model/lrm_tiny.py", help="the run's config file[:arg]")
  args = ap.parse_args()
  compile_cache.enable()
  if not release.is_release(args.release):
    raise config_args.ConfigError("--release", "a released model folder with a manifest.json", args.release)
  if os.path.exists(os.path.join(args.out, "eval", "metrics.json")):
    raise config_args.ConfigError("--out", "a folder without eval/metrics.json (scores are never overwritten)",
                                  args.out)
  config = config_args.load_file(args.config)
  config.eval.baselines = ()  # the two models are compared; the baselines are in W already
  config.eval.explain = 0
  sets = dict(config.get("eval_sets", {}))
  copy_episodes(args.like, args.out, sets)
  summary = reward_model.evaluate_release(config, args.release, args.out)  # the held-out set: W/eval/
  model, tok, params, untrained = reward_model.load_trained(None, args.release)
  config.unlock()
  config.image_size = int(release.read_manifest(args.release)["image_size"])
  summary["other_sets"] = reward_model.extra_evaluations(config, scoring.Scorer(model, tok, config.image_size),
                                                         params, untrained, args.out)
  reward_model.write_json(os.path.join(args.out, "eval", "metrics.json"), summary)
  for name, s in summary["other_sets"].items():
    print(f"\n{name} ({s['episodes']} episodes, {s['successful']} successful):\n"
          f"{reward_model.headline(s['models'])}", flush=True)


if __name__ == "__main__":
  try:
    main()
  except errors.UserError as e:  # one line and exit 2, as `python -m lrm_jax.main`
    lrm_main.fail(e, str(e))
