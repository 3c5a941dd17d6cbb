"""The scoring API: answer distributions from one pass, equal to the full model's; jit / vmap; text mode."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from data_pipelines import prompts
from lrm_jax.models import paligemma
from lrm_jax.models import preprocess
from lrm_jax.models import tokenizer as tokenizer_lib
from lrm_jax.rewards import answers
from lrm_jax.rewards import scoring
from lrm_jax.rewards import vlmrm
from lrm_jax.train import batches as batches_lib
from lrm_jax.train import trainer as trainer_lib

IMG = 16
INSTR = ["push the red cube onto the mat", "stack the blue cube on the green cube", "open the drawer"]


@pytest.fixture(scope="module")
def setup():
  tok = tokenizer_lib.load()
  model = paligemma.Model(**paligemma.get_config("tiny", llm=dict(vocab_size=tok.vocab_size)))
  params = paligemma.init(model, jax.random.PRNGKey(0), IMG, num_images=2)
  scorer = scoring.Scorer(model, tok, IMG)
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (3, IMG, IMG, 3), dtype=np.uint8)
  b = rng.integers(0, 256, (3, IMG, IMG, 3), dtype=np.uint8)
  enc = scorer.encode_instructions(INSTR)
  out = jax.device_get(jax.jit(scorer.__call__)(params, a, b, enc["tokens"], enc["mask"]))
  return dict(tok=tok, model=model, params=params, scorer=scorer, a=a, b=b, enc=enc, out=out)


def test_progress_reader_is_a_trie_over_split_digits(setup):
  r = answers.make_reader(setup["tok"], prompts.PROGRESS)
  tok = setup["tok"]
  assert r.forced == tuple(tok.encode("0."))  # teacher-force "0", "." to reach the digit node
  assert r.offsets == (0, 2) and [len(c) for c in r.candidates] == [2, 10]
  v = setup["tok"].vocab_size
  logits = np.zeros((2, v), np.float32)
  logits[0, tok.encode("0")[0]] = 20.0  # root: surely "0"
  logits[1, tok.encode("3")[0]] = 20.0  # digit node: surely "3"
  probs = np.exp(np.asarray(r.log_probs(jnp.asarray(logits))))
  assert probs.sum() == pytest.approx(1.0, abs=1e-5)
  assert float(r.expectation(probs)) == pytest.approx(0.3, abs=1e-3)
  logits[0, tok.encode("1")[0]] = 40.0  # root: surely "1" -> "1.0" whatever the digit node says
  assert float(r.expectation(np.exp(np.asarray(r.log_probs(jnp.asarray(logits)))))) == pytest.approx(1.0, abs=1e-3)


def test_reader_rejects_answers_that_need_two_passes():
  class Tok:  # "0.0".."0.4" under token 1, "0.5".."0.9" under token 2: two branching nodes side by side
    def encode(self, s):
      k = int(round(float(s) * 10))
      return [3] if k == 10 else [1 if k < 5 else 2, 10 + k]
  with pytest.raises(ValueError, match="not on one path"):
    answers.make_reader(Tok(), prompts.PROGRESS)


def _full_forward_probs(setup, kind):
  """Reference: the whole prompt through `Model.__call__`, logits at the reader's positions, restricted softmax."""
  tok, model, params, scorer = setup["tok"], setup["model"], setup["params"], setup["scorer"]
  reader = scorer.readers[kind]
  rows = []
  for instruction in INSTR:
    ex = tok.format(prompts.context(instruction), None, prompts.question(kind))
    rows.append(np.concatenate([ex["tokens"], reader.forced]).astype(np.int32))
  n = max(len(r) for r in rows)
  text = np.zeros((len(rows), n), np.int32)
  mask = np.zeros((len(rows), n), np.int32)
  ar = np.ones((len(rows), n), np.int32)
  at = np.zeros((len(rows), reader.num_nodes), np.int32)
  for i, (instruction, r) in enumerate(zip(INSTR, rows)):
    text[i, :len(r)], mask[i, :len(r)] = r, 1
    pre = 1 + len(tok.encode(prompts.context(instruction))) + 1
    ar[i, :pre] = 0
    last_q = pre + len(tok.encode(prompts.question(kind))) - 1
    at[i] = [last_q + o for o in reader.offsets]
  images = jnp.stack([preprocess.images(setup["a"], IMG), preprocess.images(setup["b"], IMG)], 1)
  logits = model.apply({"params": params}, images, text, ar, mask, logits_at=at)
  return np.exp(np.asarray(reader.log_probs(logits)))


@pytest.mark.parametrize("kind", prompts.KINDS)
def test_one_pass_scores_equal_the_full_forward(setup, kind):
  want = _full_forward_probs(setup, kind)
  np.testing.assert_allclose(setup["out"][f"{kind}_probs"], want, atol=2e-5)
  assert np.allclose(want.sum(-1), 1.0, atol=1e-5)


def test_signal_ranges_and_single_signal_scorer_agrees(setup):
  out = setup["out"]
  assert np.all((out["progress"] >= 0) & (out["progress"] <= 1))
  assert np.all((out["completion"] >= 0) & (out["completion"] <= 1))
  assert np.all(np.abs(out["contrastive"]) <= 1)
  np.testing.assert_allclose(out["contrastive"], out["contrastive_probs"][:, 1] - out["contrastive_probs"][:, 0],
                             atol=1e-6)
  only = scoring.Scorer(setup["model"], setup["tok"], IMG, kinds=(prompts.PROGRESS,))
  enc = setup["enc"]
  got = jax.device_get(jax.jit(only.__call__)(setup["params"], setup["a"], setup["b"], enc["tokens"], enc["mask"]))
  assert set(k for k in got if not k.endswith("_probs")) == {"progress"}
  np.testing.assert_allclose(got["progress"], out["progress"], atol=1e-5)  # other questions do not leak in


def test_vmap_and_reused_encodings(setup):
  s, p, enc = setup["scorer"], setup["params"], setup["enc"]
  a2 = np.stack([setup["a"], setup["b"]])
  b2 = np.stack([setup["b"], setup["a"]])
  out = jax.jit(jax.vmap(s.__call__, in_axes=(None, 0, 0, None, None)))(p, a2, b2, enc["tokens"], enc["mask"])
  np.testing.assert_allclose(out["progress"][0], setup["out"]["progress"], atol=1e-5)
  ea, eb = s.embed(p, setup["a"]), s.embed(p, setup["b"])
  again = s.score_embedded(p, ea, eb, enc["tokens"], enc["mask"])
  np.testing.assert_allclose(again["completion"], setup["out"]["completion"], atol=1e-5)
  # Swapping the frames flips which image is "B": the contrastive prediction must change.
  assert not np.allclose(out["contrastive"][1], out["contrastive"][0], atol=1e-4)
  one = s.encode_instructions(INSTR[:1])  # one instruction broadcast over a batch of frames
  bc = s(p, setup["a"], setup["b"], one["tokens"][0], one["mask"][0])
  assert bc["progress"].shape == (3,)


def test_vlmrm_similarity_is_a_cosine(setup):
  s, enc = setup["scorer"], setup["enc"]
  sim = np.asarray(vlmrm.similarity(s, setup["params"], setup["b"], enc["tokens"], enc["mask"]))
  assert sim.shape == (3,) and np.all(np.abs(sim) <= 1 + 1e-5)


def test_bad_kinds_raise(setup):
  with pytest.raises(ValueError, match="Scorer kinds"):
    scoring.Scorer(setup["model"], setup["tok"], IMG, kinds=("reward",))


def test_text_mode_argmax_agrees_with_expectation_when_confident(setup):
  """Train the tiny model until it is confident on three fixed examples, then compare decoded text and bins."""
  tok, model, scorer = setup["tok"], setup["model"], setup["scorer"]
  a, b = setup["a"], setup["b"]
  want = {prompts.PROGRESS: ["0.3", "0.8", "1.0"], prompts.COMPLETION: ["no", "no", "yes"],
          prompts.CONTRASTIVE: ["B", "A", "B"]}
  elements = dict(images=np.concatenate([np.stack([a, b], 1)] * 3), instruction=np.array(INSTR * 3, object),
                  kind=np.array([k for k in prompts.KINDS for _ in INSTR], object),
                  answer=np.array([x for k in prompts.KINDS for x in want[k]], object),
                  target=np.zeros(9, np.float32))
  batch = batches_lib.to_model_batch(elements, tok, max_len=40)
  opt = optax.adam(3e-3)
  params = setup["params"]
  state = trainer_lib.TrainState(jnp.zeros((), jnp.int32), params, opt.init(params))
  step = jax.jit(trainer_lib.make_train_step(model, opt, IMG))
  for _ in range(150):
    state, m = step(state, batch)
  assert float(m["accuracy"]) == 1.0
  enc = setup["enc"]
  out = jax.device_get(scorer(state.params, a, b, enc["tokens"], enc["mask"]))
  assert out["progress_probs"].max(-1).min() > 0.9  # confident
  lines = [json.loads(x) for x in scorer.explain(state.params, a, b, INSTR)]
  for i, d in enumerate(lines):
    assert d["progress"] == want[prompts.PROGRESS][i] == prompts.progress_answer(d["expected"]["progress"])
    assert d["completed"] == ("yes" if d["expected"]["completion"] > 0.5 else "no")
    assert d["closer"] == ("B" if d["expected"]["contrastive"] > 0 else "A")


def test_frozen_tower_gets_no_gradient_and_is_left_out_of_the_grad_norm(setup):
  from lrm_jax.train import optim
  model, tok, params = setup["model"], setup["tok"], setup["params"]
  elements = dict(images=np.stack([setup["a"], setup["b"]], 1), instruction=np.array(INSTR, object),
                  kind=np.array([prompts.COMPLETION] * len(INSTR), object), answer=np.array(["yes"] * len(INSTR), object),
                  target=np.zeros(len(INSTR), np.float32))
  batch = batches_lib.to_model_batch(elements, tok, max_len=40)
  opt = optax.sgd(0.0)
  state = trainer_lib.TrainState(jnp.zeros((), jnp.int32), params, opt.init(params))
  import ml_collections
  frozen = optim.always_frozen(ml_collections.ConfigDict(dict(freeze=(("img/.*", -1),))), params)
  norms = {}
  for name, mask in (("all", None), ("frozen", frozen)):
    grads = jax.grad(lambda p: trainer_lib.make_train_step(model, opt, IMG, mask)(
        trainer_lib.TrainState(state.step, p, state.opt_state), batch)[1]["loss"])(params)
    norms[name] = {k: float(trainer_lib._global_norm(v)) for k, v in grads.items()}
    _, m = jax.jit(trainer_lib.make_train_step(model, opt, IMG, mask))(state, batch)
    norms[name]["reported"] = float(m["grad_norm"])
  assert norms["all"]["img"] > 0 and norms["frozen"]["img"] == 0.0
  assert norms["frozen"]["llm"] == pytest.approx(norms["all"]["llm"], rel=1e-4)
  assert norms["frozen"]["reported"] < norms["all"]["reported"]


def test_reward_model_inside_the_interval_hold_env_step(setup):
  """The scorer as the RL reward: jitted into the env step, scores equal a direct call on the same frames."""
  from lrm_jax.rewards import interval
  from tests import fixtures_rl as toy
  env = toy.PointReach()
  scorer, params = setup["scorer"], setup["params"]
  fn = scoring.score_fn_for_rl(scorer, params, "move the red dot onto the green dot", similarity=True)
  config = interval.default_config()
  config.update(reward="lrm_tri", interval=2, image_size=toy.IMAGE)
  wrapped = interval.wrap_for_training(env, config, fn, episode_length=6)
  state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 2))
  render = jax.vmap(lambda sim: env.render(sim, "front", toy.IMAGE)["rgb"])
  first = render(state.pipeline_state)
  state = jax.jit(wrapped.step)(state, jnp.full((2, 2), 0.5))
  direct = fn(first, render(state.pipeline_state))
  for k in ("progress", "completion", "contrastive"):
    np.testing.assert_allclose(state.metrics[f"lrm/{k}"], direct[k], atol=1e-5)
  tri = (direct["progress"] + direct["completion"] + (direct["contrastive"] + 1) / 2) / 3
  np.testing.assert_allclose(state.reward, tri, atol=1e-5)
  assert direct["similarity"].shape == (2,)


# ---- input checks (issue 14): one line naming the argument, at trace time, before any JAX error -----------------
@pytest.mark.parametrize("bad,expect", [
    (lambda a: a.transpose(0, 3, 1, 2), r"images_b: expected frames \[B, H, W, 3\].*channels first"),
    (lambda a: a[..., 0], r"images_b: expected frames \[B, H, W, 3\].*got shape \[3, 16, 16\]"),
    (lambda a: a.astype(np.int64) * 10, r"images_b: expected uint8 values in \[0, 255\].*got dtype int(32|64)"),
    (lambda a: a[:0], r"images_b: expected at least one frame, got an empty batch"),
])
def test_bad_frames_are_one_line_errors(setup, bad, expect):
  from data_pipelines.errors import InputError
  s, p, enc = setup["scorer"], setup["params"], setup["enc"]
  with pytest.raises(InputError, match=expect) as e:
    jax.jit(s.__call__)(p, bad(setup["a"]), bad(setup["b"]), enc["tokens"], enc["mask"])
  assert str(e.value).startswith("images_b: expected")  # one line (jit appends its own note after a newline)


def test_batch_disagreement_and_bad_instructions_are_one_line_errors(setup):
  from data_pipelines.errors import InputError
  s, p, enc = setup["scorer"], setup["params"], setup["enc"]
  with pytest.raises(InputError, match=r"images_a, images_b: expected frame batches of the same shape"):
    s(p, setup["a"][:2], setup["b"], enc["tokens"], enc["mask"])
  with pytest.raises(InputError, match=r"prefix_tokens: expected \[B, 32\] with B = 3 frames.*got shape \[2, 32\]"):
    s(p, setup["a"], setup["b"], enc["tokens"][:2], enc["mask"][:2])
  for bad, expect in (([], "instructions: expected at least one instruction"),
                      (["open the drawer", ""], r"instructions\[1\]: expected a non-empty string, got ''"),
                      ([None], r"instructions\[0\]: expected a non-empty string, got None"),
                      ("open the drawer", "instructions: expected a list of strings")):
    with pytest.raises(InputError, match=expect):
      s.encode_instructions(bad)
  fn = scoring.score_fn_for_rl(s, p, INSTR)
  with pytest.raises(InputError, match=r"instruction_ids: expected \[B\] = \[3\]"):
    fn(setup["a"], setup["b"], jnp.zeros((2,), jnp.int32))


def test_guard_flags_nan_and_minus_one_to_one_frames(setup):
  s = scoring.Scorer(setup["model"], setup["tok"], IMG, guard=True)
  p, enc = setup["params"], setup["enc"]
  b = setup["b"].astype(np.float32)
  b[1, 0, 0, 0] = np.nan                      # a NaN frame gave NaN rewards, silently
  b[2] = b[2] / 127.5 - 1.0                   # already in the model's [-1, 1]: scored as nearly black, silently
  out = jax.device_get(jax.jit(s.__call__)(p, setup["a"], b, enc["tokens"], enc["mask"]))
  assert out["frames_ok"].tolist() == [True, False, False]
  np.testing.assert_allclose(out["progress"][0], setup["out"]["progress"][0], atol=1e-5)  # same scores otherwise
  from data_pipelines.errors import InputError
  with pytest.raises(InputError, match="frames: expected finite values in .0, 255., got 1 NaN/inf values"):
    scoring.check_frame_values(b[:2])
  with pytest.raises(InputError, match=r"already scaled to \[-1, 1\]"):
    scoring.check_frame_values(b[2:])
  scoring.check_frame_values(setup["a"])
