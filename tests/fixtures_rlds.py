"""Writes tiny RLDS datasets through TFDS itself, so shards, dataset_info.json and features.json are exactly what
TFDS produces (`<name>/<version>/<name>-train.tfrecord-00000-of-00001`)."""
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines.oxe import OXE_DATASETS


def write_tfds(data_dir, name: str, version: str, features, episodes) -> str:
  """Prepares a dataset called `name` holding `episodes` (dicts matching `features`); returns its folder."""

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=features)

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i, ep in enumerate(episodes):
      yield i, ep

  with tfds.core.registered.skip_registration():
    cls = type(f"Fixture_{name}", (tfds.core.GeneratorBasedBuilder,), dict(
        name=name, VERSION=tfds.core.Version(version), RELEASE_NOTES={version: "test fixture"},
        _info=_info, _split_generators=_split_generators, _generate_examples=_generate_examples))
  builder = cls(data_dir=os.fspath(data_dir))
  builder.download_and_prepare()
  return builder.data_dir


def _img(shape, encoding="jpeg"):
  return tfds.features.Image(shape=shape, encoding_format=encoding)


def frames_with_progress(T, h, w, seed=0):
  """Frames whose mean brightness rises with t, so tests can check order after subsampling/flipping."""
  rng = np.random.default_rng(seed)
  base = np.linspace(20, 230, T)[:, None, None, None]
  noise = rng.integers(0, 10, size=(T, h, w, 3))
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def oxe_features(name, h=16, w=20):
  spec = OXE_DATASETS[name]
  google_style = spec.instruction_key == "observation/natural_language_instruction"
  obs = {spec.image_key.split("/", 1)[1]: _img((h, w, 3))}
  if spec.wrist_image_key:
    obs[spec.wrist_image_key.split("/", 1)[1]] = _img((h, w, 3))
  obs["state"] = tfds.features.Tensor(shape=(4,), dtype=np.float32)
  step = {"action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
          "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_, "reward": np.float32}
  if spec.instruction_encoding == "int_bytes":
    obs["instruction"] = tfds.features.Tensor(shape=(512,), dtype=np.int32)
  elif google_style:
    obs["natural_language_instruction"] = tfds.features.Text()
    obs["natural_language_embedding"] = tfds.features.Tensor(shape=(8,), dtype=np.float32)
  if spec.instruction_key == "language_instruction" or spec.instruction_key is None:
    step["discount"] = np.float32
    step["language_instruction"] = tfds.features.Text()
    step["language_embedding"] = tfds.features.Tensor(shape=(8,), dtype=np.float32)
  step["observation"] = tfds.features.FeaturesDict(obs)
  feats = {"steps": tfds.features.Dataset(step)}
  if not google_style:
    feats["episode_metadata"] = tfds.features.FeaturesDict({"file_path": tfds.features.Text()})
  return tfds.features.FeaturesDict(feats), spec


def oxe_episode(name, spec, T, instruction, seed, h=16, w=20):
  frames = frames_with_progress(T, h, w, seed)
  steps = []
  for t in range(T):
    obs = {spec.image_key.split("/", 1)[1]: frames[t], "state": np.full(4, t, np.float32)}
    if spec.wrist_image_key:
      obs[spec.wrist_image_key.split("/", 1)[1]] = frames[t]
    step = {"action": np.zeros(7, np.float32), "is_first": t == 0, "is_last": t == T - 1,
            "is_terminal": t == T - 1, "reward": np.float32(t == T - 1)}
    if spec.instruction_encoding == "int_bytes":
      codes = np.zeros(512, np.int32)
      raw = instruction.encode("utf-8")
      codes[: len(raw)] = list(raw)
      obs["instruction"] = codes
    elif spec.instruction_key == "observation/natural_language_instruction":
      obs["natural_language_instruction"] = instruction
      obs["natural_language_embedding"] = np.zeros(8, np.float32)
    if spec.instruction_key in ("language_instruction", None):
      step.update(discount=np.float32(1.0), language_instruction=instruction,
                  language_embedding=np.zeros(8, np.float32))
    step["observation"] = obs
    steps.append(step)
  ep = {"steps": steps}
  if spec.instruction_key != "observation/natural_language_instruction":
    ep["episode_metadata"] = {"file_path": f"/raw/{name}/episode_{seed}.npy"}
  return ep, frames


def write_oxe(data_dir, name, num_episodes=2, T=6, instructions=None):
  """instructions: one per episode ("" for an episode without language, as many in real Bridge and DROID)."""
  feats, spec = oxe_features(name)
  version = "1.0.1" if name == "droid" else ("1.0.0" if name == "bridge_dataset" else "0.1.0")
  eps, frames = [], []
  for e in range(num_episodes):
    text = instructions[e] if instructions is not None else f"{name} task {e}: put the cup on the plate"
    ep, fr = oxe_episode(name, spec, T + e, text, e)
    eps.append(ep)
    frames.append(fr)
  return write_tfds(data_dir, name, version, feats, eps), frames


def libero_rlds_features(h=16, w=16):
  return tfds.features.FeaturesDict({
      "steps": tfds.features.Dataset({
          "observation": tfds.features.FeaturesDict({
              "image": _img((h, w, 3)), "wrist_image": _img((h, w, 3)),
              "state": tfds.features.Tensor(shape=(8,), dtype=np.float32),
              "joint_state": tfds.features.Tensor(shape=(7,), dtype=np.float32)}),
          "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
          "discount": np.float32, "reward": np.float32,
          "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_,
          "language_instruction": tfds.features.Text()}),
      "episode_metadata": tfds.features.FeaturesDict({"file_path": tfds.features.Text()})})


def write_libero_rlds(data_dir, episodes, h=16, w=16):
  """episodes: list of (instruction, T, success). Written as dataset `liber_o10` like the real LIBERO-10."""
  eps, frames = [], []
  for e, (instruction, T, success) in enumerate(episodes):
    fr = frames_with_progress(T, h, w, e)
    steps = [{"observation": {"image": fr[t], "wrist_image": fr[t], "state": np.zeros(8, np.float32),
                              "joint_state": np.zeros(7, np.float32)},
              "action": np.zeros(7, np.float32), "discount": np.float32(1), "is_first": t == 0,
              "is_last": t == T - 1, "is_terminal": t == T - 1,
              "reward": np.float32(success and t == T - 1), "language_instruction": instruction}
             for t in range(T)]
    eps.append({"steps": steps, "episode_metadata": {"file_path": f"/libero_10/{e}_demo.hdf5"}})
    frames.append(fr)
  return write_tfds(data_dir, "liber_o10", "1.0.0", libero_rlds_features(h, w), eps), frames


def suite_features(h=16, w=16, state_dim=5):
  return tfds.features.FeaturesDict({
      "steps": tfds.features.Dataset({
          "observation": tfds.features.FeaturesDict({
              "image": _img((h, w, 3), "png"),
              "state": tfds.features.Tensor(shape=(state_dim,), dtype=np.float32)}),
          "action": tfds.features.Tensor(shape=(4,), dtype=np.float32),
          "reward": np.float32, "discount": np.float32,
          "is_first": np.bool_, "is_last": np.bool_, "is_terminal": np.bool_,
          "language_instruction": tfds.features.Text(),
          "stage": np.int32}),
      "episode_metadata": tfds.features.FeaturesDict({
          "task": tfds.features.Text(), "success": np.bool_, "embodiment": tfds.features.Text(),
          "seed": np.int64, "noise": tfds.features.Text(), "num_stages": np.int32,
          "file_path": tfds.features.Text()})})


def write_suite(data_dir, episodes, h=16, w=16):
  """episodes: list of dicts with task, instruction, T, success, noise, num_stages. Dataset `lrm_bench` 1.0.0."""
  eps, frames = [], []
  for e, spec in enumerate(episodes):
    T = spec["T"]
    fr = frames_with_progress(T, h, w, e)
    stage = np.minimum((np.arange(T) * spec["num_stages"]) // T, spec["num_stages"] - 1).astype(np.int32)
    steps = [{"observation": {"image": fr[t], "state": np.zeros(5, np.float32)},
              "action": np.zeros(4, np.float32), "reward": np.float32(spec["success"] and t == T - 1),
              "discount": np.float32(1), "is_first": t == 0, "is_last": t == T - 1,
              "is_terminal": bool(spec["success"] and t == T - 1),
              "language_instruction": spec["instruction"], "stage": stage[t]} for t in range(T)]
    eps.append({"steps": steps, "episode_metadata": {
        "task": spec["task"], "success": spec["success"], "embodiment": spec.get("embodiment", "gripper"),
        "seed": e, "noise": spec.get("noise", "clean"), "num_stages": spec["num_stages"],
        "file_path": f"lrm_bench/{spec['task']}/{e}"}})
    frames.append(fr)
  return write_tfds(data_dir, "lrm_bench", "1.0.0", suite_features(h, w), eps), frames
