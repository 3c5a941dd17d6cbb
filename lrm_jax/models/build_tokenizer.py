"""Trains the project's small SentencePiece tokenizer from lines of text.

  python -m lrm_jax.models.build_tokenizer                       # seed corpus -> lrm_jax/models/assets/
  python -m lrm_jax.models.build_tokenizer --corpus=lines.txt --vocab_size=2000 --out=/tmp/tok

The default corpus: LRM-Bench instruction phrasings of the *training* tasks only (held-out tasks never reach
anything trained, the tokenizer included), generic manipulation phrasings for real datasets, the three reward
prompts from `data_pipelines/prompts.py` (the single source of prompt text) and every answer word. `--corpus` takes
any other text, one line each. Also usable from Python: `build(lines, out_prefix, vocab_size)`.
"""
import itertools
import os

from absl import app, flags

from data_pipelines import prompts
from lrm_jax.envs import language
from lrm_jax.envs import splits
from lrm_jax.models import tokenizer

_OBJECTS = ["red cube", "blue cube", "green block", "apple", "banana", "mug", "bowl", "plate", "drawer", "cabinet",
            "sponge", "can", "bottle", "peg", "spoon", "carrot", "yellow ball", "lid", "box", "cup"]
_TARGETS = ["plate", "bowl", "tray", "basket", "drawer", "shelf", "box", "table", "left bin", "right bin"]
_TEMPLATES = [
    "pick up the {o}", "put the {o} on the {t}", "place the {o} in the {t}", "move the {o} to the {t}",
    "push the {o} to the {t}", "stack the {o} on the {t}", "open the {o}", "close the {o}", "lift the {o}",
    "grasp the {o} and put it on the {t}", "slide the {o} next to the {t}", "insert the {o} into the {t}",
    "turn the {o}", "pull the {o} out of the {t}",
]
ANSWERS = [a for kind in prompts.KINDS for a in prompts.ANSWERS[kind]] + [str(d) for d in range(10)]


def seed_corpus() -> list:
  """Deterministic lines: instruction phrasings, the three prompts filled with them, and every answer word."""
  instr = [tpl.format(o=o, t=t) for tpl, o, t in itertools.product(_TEMPLATES, _OBJECTS, _TARGETS)]
  instr = list(dict.fromkeys(instr))  # templates without {t} repeat; keep first occurrences in order
  instr += language.all_instructions(sorted(splits.TRAIN_TASKS))
  lines = instr + [prompts.prompt(k, i) for k, i in itertools.product(prompts.KINDS, instr[::7])]
  # One line per example in the stored corpus: "\n" (always its own piece) becomes a space.
  return [l.replace("\n", " ") for l in lines] + ANSWERS * 20


DEFAULT_VOCAB = 1000


def build(lines, out_prefix: str, vocab_size: int = DEFAULT_VOCAB) -> str:
  return tokenizer.train_sentencepiece(lines, out_prefix, vocab_size)


def main(_):
  if flags.FLAGS.corpus:
    with open(flags.FLAGS.corpus) as f:
      lines = [l.rstrip("\n") for l in f]
  else:
    lines = seed_corpus()
  out = flags.FLAGS.out or os.path.splitext(tokenizer.DEFAULT_MODEL)[0]
  path = build(lines, out, flags.FLAGS.vocab_size)
  # Keep the exact training lines next to the model: the test rebuilds from them and expects identical bytes.
  with open(out + ".corpus.txt", "w") as f:
    f.write("\n".join(l.replace("\n", " ") for l in lines) + "\n")
  if os.path.exists(out + ".vocab"):
    os.remove(out + ".vocab")
  print(f"wrote {path} ({tokenizer.load(path).vocab_size} pieces from {len(lines)} lines)")


if __name__ == "__main__":
  flags.DEFINE_string("corpus", None, "text file, one line per example; default: the built-in seed corpus")
  flags.DEFINE_string("out", None, "output prefix (writes PREFIX.model and PREFIX.vocab)")
  flags.DEFINE_integer("vocab_size", DEFAULT_VOCAB, "target vocabulary size (a soft limit for tiny corpora)")
  app.run(main)
