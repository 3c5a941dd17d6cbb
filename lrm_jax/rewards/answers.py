"""Reading a whole answer distribution from one teacher-forced pass.

An answer set ("0.0".."1.0", "yes"/"no", "A"/"B") is a trie of token sequences. Only its *branching* nodes carry
information: at every other node exactly one next token is valid, so constrained decoding takes it with
probability 1. If the branching nodes lie on one path (true for our answer sets with the shipped tokenizer and with
Gemma's, which split digits), teacher-forcing that path after the question gives every branching node's logits in
a single forward pass, and

  P(answer) = prod over the branching nodes on its path of softmax(logits restricted to the node's valid tokens).

Example, progress with split digits: the root branches over {"0", "1"}, the node "0." over the ten digits, so the
forced tokens are "0", "." and P("0.3") = P("0" | root) * P("3" | "0."), P("1.0") = P("1" | root).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import prompts


@dataclasses.dataclass(frozen=True)
class AnswerReader:
  kind: str
  answers: tuple            # answer strings, in prompts.ANSWERS order
  values: np.ndarray        # [A] numeric value of each answer (prompts.answer_value)
  forced: tuple             # answer tokens teacher-forced after the question
  offsets: tuple            # per branching node: read logits this many tokens after the last question token
  candidates: tuple         # per branching node: np.ndarray of the valid next token ids
  choice: np.ndarray        # [A, nodes]: index into the node's candidates, or -1 when the node is off the path

  @property
  def num_nodes(self) -> int:
    return len(self.offsets)

  def log_probs(self, logits):
    """logits [..., nodes, V] at the `offsets` positions -> log P(answer) [..., A], constrained to the answers."""
    node_logp = [jax.nn.log_softmax(logits[..., n, jnp.asarray(c)].astype(jnp.float32), axis=-1)
                 for n, c in enumerate(self.candidates)]
    out = 0.0
    for n, lp in enumerate(node_logp):
      idx = self.choice[:, n]
      out = out + jnp.where(jnp.asarray(idx >= 0), lp[..., np.maximum(idx, 0)], 0.0)
    return out

  def expectation(self, probs):
    return jnp.sum(probs * jnp.asarray(self.values, jnp.float32), axis=-1)


def make_reader(tokenizer, kind: str) -> AnswerReader:
  answers = prompts.ANSWERS[kind]
  seqs = [tuple(tokenizer.encode(a)) for a in answers]
  if len(set(seqs)) != len(seqs) or any(not s for s in seqs):
    raise ValueError(f"answers of {kind!r} do not tokenise to distinct non-empty sequences: {seqs}")
  for a, s in zip(answers, seqs):
    if any(o != s and o[:len(s)] == s for o in seqs):
      raise ValueError(f"answer {a!r} of {kind!r} is a token prefix of another answer; needs an eos branch")
  children = {}  # trie prefix -> set of next tokens
  for s in seqs:
    for i in range(len(s)):
      children.setdefault(s[:i], set()).add(s[i])
  branching = sorted((p for p, c in children.items() if len(c) > 1), key=len)
  for shorter, longer in zip(branching, branching[1:]):
    if longer[:len(shorter)] != shorter:
      raise ValueError(f"answers of {kind!r}: branching nodes {shorter} and {longer} are not on one path; this "
                       "tokenizer needs more than one teacher-forced pass")
  forced = branching[-1] if branching else ()
  candidates = tuple(np.array(sorted(children[p]), np.int32) for p in branching)
  choice = np.full((len(seqs), len(branching)), -1, np.int32)
  for a, s in enumerate(seqs):
    for n, p in enumerate(branching):
      if s[:len(p)] == p:
        choice[a, n] = int(np.searchsorted(candidates[n], s[len(p)]))
  values = np.array([prompts.answer_value(kind, a) for a in answers], np.float32)
  return AnswerReader(kind=kind, answers=tuple(answers), values=values, forced=tuple(int(t) for t in forced),
                      offsets=tuple(len(p) for p in branching), candidates=candidates, choice=choice)
