"""Mixture: weights within sampling error, determinism, per-host sharding, held-out tasks, summary."""
import collections

import numpy as np
import pytest

from data_pipelines import prompts

from data_pipelines.errors import ExcludedTaskError
from data_pipelines.mixture import Mixture, build_mixture
from data_pipelines.robocasa import RoboCasaReader
from tests import fixtures_hdf5, fixtures_rlds
from tests.test_data_robot import SUITE


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
  root = tmp_path_factory.mktemp("mix")
  robocasa = root / "robocasa.hdf5"
  fixtures_hdf5.write_robocasa(robocasa, [("open the drawer", 6, 1), ("close the door", 5, 1),
                                          ("turn on the sink", 7, 0)], size=12)
  libero = root / "libero"
  libero.mkdir()
  fixtures_hdf5.write_libero(libero / "A_demo.hdf5", "put the bowl on the plate", [(6, True), (8, True)], size=12)
  suite, _ = fixtures_rlds.write_suite(root / "suite", SUITE, h=12, w=12)
  return {"robocasa": str(robocasa), "libero": str(libero), "suite": suite}


def config(paths, seed=0, weights=(0.6, 0.3, 0.1), **kw):
  fmts = {"robocasa": "robocasa", "libero": "libero_hdf5", "suite": "lrm_bench"}
  cfg = dict(seed=seed, image_size=16, augment=True, shuffle_buffer=32, batch_size=None,
             sources=[dict(name=n, format=fmts[n], path=paths[n], weight=w) for n, w in zip(fmts, weights)])
  cfg.update(kw)
  return cfg


def take(ds, n):
  return list(ds.take(n).as_numpy_iterator())


def test_weights_respected_within_sampling_error(paths):
  # Tolerance: each source's share within 4 binomial standard deviations of its weight (two-sided p ~ 6e-5 per
  # source for an arbitrary seed), plus a chi-square goodness-of-fit test at p > 1e-3.
  from scipy import stats
  n, weights = 3000, (0.6, 0.3, 0.1)
  ds, mix = build_mixture(config(paths, weights=(6, 3, 1), augment=False), process_index=0, process_count=1,
                          verbose=False)
  assert mix.weights == pytest.approx(weights)  # weights are normalised
  counts = collections.Counter(
      e.decode() for e in ds.map(lambda x: x["source"]).take(n).as_numpy_iterator())
  names = {"robocasa:robocasa": 0, "libero_hdf5:libero": 1, "lrm_bench": 2}
  observed = np.zeros(3)
  for name, c in counts.items():
    observed[names[name]] = c
  for p_hat, w in zip(observed / n, weights):
    assert abs(p_hat - w) <= 4 * np.sqrt(w * (1 - w) / n), (observed, weights)
  assert stats.chisquare(observed, np.array(weights) * n).pvalue > 1e-3


def test_deterministic_given_seed(paths):
  kw = dict(process_index=0, process_count=1, verbose=False)
  a = take(build_mixture(config(paths, seed=3), **kw)[0], 40)
  b = take(build_mixture(config(paths, seed=3), **kw)[0], 40)
  c = take(build_mixture(config(paths, seed=4), **kw)[0], 40)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  assert [x["prompt"] for x in a] != [x["prompt"] for x in c] or any(
      not np.array_equal(x["images"], y["images"]) for x, y in zip(a, c))


def test_element_format(paths):
  ds, _ = build_mixture(config(paths, batch_size=4), process_index=0, process_count=1, verbose=False)
  batch = next(ds.as_numpy_iterator())
  assert batch["images"].shape == (4, 2, 16, 16, 3) and batch["images"].dtype == np.uint8
  assert list(batch["num_images"]) == [2] * 4  # every prompt shows a context frame (A) and the current one (B)
  assert {i.decode() for i in batch["instruction"]} and all(
      p.decode().startswith(prompts.context(i.decode())) for p, i in zip(batch["prompt"], batch["instruction"]))
  kinds = {k.decode() for k in batch["kind"]}
  assert kinds <= {"progress", "completion", "contrastive"}


@pytest.mark.parametrize("weights", [(1, 0, 0), (0, 0, 1)], ids=["hdf5", "rlds"])
def test_per_host_sharding_is_disjoint(paths, weights):
  def episodes(index):
    cfg = config(paths, weights=weights, augment=False, shuffle_buffer=1)
    ds, _ = build_mixture(cfg, process_index=index, process_count=2, repeat=False, verbose=False)
    return {e.decode() for e in ds.map(lambda x: x["episode_id"]).as_numpy_iterator()}
  h0, h1 = episodes(0), episodes(1)
  assert h0 and h1 and not h0 & h1 and len(h0 | h1) == 3


def test_summary_printed(paths, capsys):
  build_mixture(config(paths), process_index=0, process_count=1)
  out = capsys.readouterr().out
  assert "mixture: 3 sources" in out
  line = next(l for l in out.splitlines() if l.strip().startswith("robocasa"))
  assert "traj=3 frames=18" in line and "succ/fail/unk=2/1/0" in line and "yes:2" in line


def test_label_counts_off_skips_only_the_counting(paths):
  cfg = config(paths, augment=False, shuffle_buffer=1)
  ds_on, on = build_mixture(cfg, process_index=0, process_count=1, repeat=False, verbose=False)
  ds_off, off = build_mixture(dict(cfg, label_counts=False), process_index=0, process_count=1, repeat=False,
                              verbose=False)
  assert on.summary[0].examples and not any(s.examples for s in off.summary)
  assert [s.trajectories for s in on.summary] == [s.trajectories for s in off.summary]
  answers = lambda ds: [a.decode() for a in ds.map(lambda x: x["answer"]).as_numpy_iterator()]
  assert answers(ds_on) == answers(ds_off)  # the stream itself is the same


def test_excluded_tasks_are_dropped(paths):
  cfg = config(paths, weights=(0, 0, 1), augment=False, shuffle_buffer=1)
  ds, mix = build_mixture(cfg, exclude_tasks={"stack_cubes"}, process_index=0, process_count=1, repeat=False,
                          verbose=False)
  prompts = [p.decode() for p in ds.map(lambda x: x["prompt"]).as_numpy_iterator()]
  assert prompts and not any("stack the red cube" in p for p in prompts)
  assert mix.summary[0].trajectories == 2


def test_excluded_task_leak_raises(paths):
  class Leaky(RoboCasaReader):  # a reader that ignores exclude_tasks and labels its episodes with a task
    def __iter__(self):
      for traj in super().__iter__():
        traj.task = "stack_cubes"
        yield traj

  def leaky(path, exclude_tasks=(), **kw):
    return Leaky(path, **kw)

  cfg = config(paths)
  cfg["sources"][0]["format"] = leaky
  with pytest.raises(ExcludedTaskError, match="held-out task 'stack_cubes'"):
    Mixture(cfg, exclude_tasks={"stack_cubes"}, process_index=0, process_count=1)


def test_excluded_instruction_from_another_source_raises(tmp_path, paths):
  same = tmp_path / "same.hdf5"
  fixtures_hdf5.write_robocasa(same, [("stack the red cube on the blue cube", 4, 1)], size=12)
  cfg = config(paths)
  cfg["sources"][0]["path"] = str(same)
  with pytest.raises(ExcludedTaskError, match="stack the red cube on the blue cube"):
    Mixture(cfg, exclude_tasks={"stack_cubes"}, process_index=0, process_count=1)


def test_single_instruction_source_gets_mismatch_negatives_from_others(paths):
  cfg = config(paths, weights=(0, 1, 0), augment=False, shuffle_buffer=1)
  cfg["sources"][0]["weight"] = cfg["sources"][2]["weight"] = 1e-9  # present for the pool, practically unsampled
  ds, mix = build_mixture(cfg, process_index=0, process_count=1, verbose=False)
  assert mix.pools[1] == ["put the bowl on the plate"]
  libero = [x for x in take(ds, 300) if x["source"] == b"libero_hdf5:libero" and x["kind"] == b"completion"]
  assert any(b"put the bowl on the plate" not in x["prompt"] and x["answer"] == b"no" for x in libero)


def test_host_topology_defaults_to_jax(paths):
  mix = Mixture(config(paths))
  assert (mix.process_index, mix.process_count) == (0, 1)


def test_configdict_and_plain_config_file(paths):
  import ml_collections
  from configs import reward_data_mixture
  from data_pipelines import registry
  cfg = reward_data_mixture.get_config("root=/nowhere,max_frames=8")
  assert {s["format"] for s in cfg.sources} <= set(registry.READERS)
  assert all(s["weight"] > 0 for s in cfg.sources)
  mix = Mixture(ml_collections.ConfigDict(config(paths, labels={"contrastive_pairs": 1})),
                process_index=0, process_count=1)
  assert mix.label_cfgs[0].contrastive_pairs == 1


def test_robot_and_human_video_sources_mix(tmp_path, paths, capsys):
  from tests import fixtures_video
  from tests.test_data_human import EGODEX_CLIPS
  fixtures_video.write_egodex(tmp_path / "egodex", EGODEX_CLIPS[:2])
  fixtures_video.write_epic(tmp_path / "epic", {"P01_01": 12}, [("P01_01", 1, 12, "open fridge", "open", "fridge")])
  cfg = dict(seed=1, image_size=16, shuffle_buffer=8, sources=[
      dict(name="suite", format="lrm_bench", path=paths["suite"], weight=1),
      dict(name="egodex", format="egodex", path=str(tmp_path / "egodex"), weight=1,
           reader_kwargs=dict(max_frames=6, frame_size=(16, 24))),
      dict(name="epic", format="epic_kitchens", path=str(tmp_path / "epic"), weight=1,
           reader_kwargs=dict(max_frames=6))])
  ds, mix = build_mixture(cfg, process_index=0, process_count=1)
  got = take(ds, 60)
  assert {x["source"].decode() for x in got} == {"lrm_bench", "egodex", "epic_kitchens"}
  assert all(x["images"].shape == (2, 16, 16, 3) for x in got)
  out = capsys.readouterr().out
  assert "egodex" in out and "succ/fail/unk=0/0/2" in out  # human video: success unknown, used as demos


def test_shipped_real_mixture_takes_bridge_and_ssv2_as_they_come(tmp_path, capsys):
  """configs/reward_data_mixture.py on Bridge with language-less episodes and SSv2 in its official archive layout
  (videos in 20bn-something-something-v2/ beside labels/): both read, the summary counts the skipped episodes."""
  from configs import reward_data_mixture
  from tests import fixtures_video
  from tests.test_data_human import SSV2
  fixtures_rlds.write_oxe(tmp_path, "bridge_dataset", num_episodes=4, T=4,
                          instructions=["put the cup on the plate", "", "open the drawer", ""])
  fixtures_video.write_ssv2(tmp_path / "something-something-v2", SSV2, videos_subdir="20bn-something-something-v2")
  cfg = reward_data_mixture.get_config(f"root={tmp_path},image_size=16,max_frames=4")
  for s in cfg.sources:  # the datasets this test does not write
    if s["name"] not in ("bridge", "ssv2"):
      s["weight"] = 0.0
  ds, mix = build_mixture(cfg, process_index=0, process_count=1, repeat=False)
  lines = {s.name: s.line() for s in mix.summary}
  assert "traj=2 " in lines["bridge"] and "no_language=2" in lines["bridge"]
  assert "traj=2 " in lines["ssv2"] and "no_language" not in lines["ssv2"]
  assert "no_language=2" in capsys.readouterr().out
  assert {e["source"] for e in ds.as_numpy_iterator()} == {b"oxe:bridge_dataset", b"ssv2"}
