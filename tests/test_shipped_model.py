"""The released LRM-tiny in the repository (`lrm_jax/models/assets/lrm_tiny/`, issue 13).

It must load through the public `paligemma.load`, fit the 10 MB asset limit, say in its manifest that it never
trained on a held-out task, be what `configs/reward_model/lrm_tiny.py` at its defaults makes, and (slow) score the
held-out set from the shipped file as its manifest says, within the manifest's bootstrap intervals.
"""
import os

import jax
import numpy as np
import pytest

from lrm_jax.envs import splits
from lrm_jax.models import paligemma
from lrm_jax.models import release
from lrm_jax.utils import config_args

SHIPPED = release.LRM_TINY


@pytest.fixture(scope="module")
def manifest():
  return release.read_manifest(SHIPPED)  # fails, naming the folder, if the repository lost its release


def test_shipped_params_load_through_the_public_paligemma_load(manifest):
  assert os.path.getsize(os.path.join(SHIPPED, release.PARAMS)) <= release.MAX_BYTES
  model = paligemma.from_config(manifest["model"])
  params = paligemma.load(os.path.join(SHIPPED, release.PARAMS), model, int(manifest["image_size"]))
  leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
  assert leaves and all(np.isfinite(x).all() for x in leaves)
  assert {"img", "llm"} <= set(params)


def test_manifest_training_tasks_never_include_a_held_out_task(manifest):
  tasks = set(manifest["training_tasks"])
  assert tasks and not tasks & splits.HELD_OUT_TASKS
  assert tasks <= splits.TRAIN_TASKS
  assert set(manifest["heldout_tasks"]) == splits.HELD_OUT_TASKS


def test_shipped_model_is_what_the_release_config_makes_at_its_defaults(manifest):
  from lrm_jax.jobs import reward_model
  from lrm_jax.models import tokenizer as tokenizer_lib
  config = config_args.load_file("configs/reward_model/lrm_tiny.py")
  assert manifest["config"] == "configs/reward_model/lrm_tiny.py"
  assert not manifest["commit"].endswith("+dirty") and manifest["commit"] != "unknown"
  tok = tokenizer_lib.load(config.init.tokenizer or None)
  assert manifest["model"] == reward_model.model_config(config, tok)
  assert manifest["image_size"] == config.image_size and manifest["seed"] == config.seed
  assert manifest["data"]["episodes_per_task"] == config.data.datagen.episodes_per_task
  assert sorted(manifest["training_tasks"]) == sorted(config.data.datagen.tasks)
  assert manifest["full_config"]["total_steps"] == config.total_steps
  assert manifest["training_curve"]["train/loss"][-1][0] == config.total_steps  # trained to the end


@pytest.mark.slow
def test_held_out_scores_from_the_shipped_file_reproduce_the_manifest(manifest, tmp_path):
  from lrm_jax.jobs import reward_model
  config = config_args.load_file("configs/reward_model/lrm_tiny.py")
  config.eval.baselines = ()  # the trained model's numbers are the claim; the baselines are not re-run
  config.eval.explain = 0
  got = reward_model.evaluate_release(config, SHIPPED, str(tmp_path))["models"]["lrm"]
  want = manifest["evaluation"]["models"]["lrm"]
  assert got["episodes"] == want["episodes"]
  for key in ("voc", "completion_auc", "direction_accuracy"):
    lo, hi = want[f"{key}_ci"]
    assert lo <= got[key] <= hi, (key, got[key], want[f"{key}_ci"])
