"""The three reward prompts and their answer strings: the single source shared by training and scoring.

Answers are single short words ("0.0".."1.0", "yes"/"no", "A"/"B") so each is ideally one token and the scorer can
read the answer-token distribution in one forward pass (expected bin value, P(yes), P(B)).
Images are supplied separately (the model puts image tokens before the text); the contrastive prompt takes two
images in order A, B.
"""

PROGRESS = "progress"
COMPLETION = "completion"
CONTRASTIVE = "contrastive"
KINDS = (PROGRESS, COMPLETION, CONTRASTIVE)

PROGRESS_ANSWERS = tuple(f"{i / 10:.1f}" for i in range(11))  # "0.0", "0.1", ..., "1.0"
PROGRESS_VALUES = tuple(i / 10 for i in range(11))
YES, NO = "yes", "no"
COMPLETION_ANSWERS = (YES, NO)
A, B = "A", "B"
CONTRASTIVE_ANSWERS = (A, B)
ANSWERS = {PROGRESS: PROGRESS_ANSWERS, COMPLETION: COMPLETION_ANSWERS, CONTRASTIVE: CONTRASTIVE_ANSWERS}

PROGRESS_PROMPT = ("Task: {instruction}\n"
                   "How much of the task has been completed in this image? "
                   "Answer with one number from 0.0, 0.1, ..., 1.0.\nProgress:")
COMPLETION_PROMPT = ("Task: {instruction}\n"
                     "Has the task been completed in this image? Answer yes or no.\nCompleted:")
CONTRASTIVE_PROMPT = ("Task: {instruction}\n"
                      "Image A and image B show two moments of the same attempt. "
                      "Which image is closer to completing the task? Answer A or B.\nCloser:")
_TEMPLATES = {PROGRESS: PROGRESS_PROMPT, COMPLETION: COMPLETION_PROMPT, CONTRASTIVE: CONTRASTIVE_PROMPT}
NUM_IMAGES = {PROGRESS: 1, COMPLETION: 1, CONTRASTIVE: 2}


def prompt(kind: str, instruction: str) -> str:
  """The prompt text for `kind` conditioned on `instruction` (whitespace-normalised, one line)."""
  if kind not in _TEMPLATES:
    raise ValueError(f"prompt kind: expected one of {KINDS}, got {kind!r}")
  return _TEMPLATES[kind].format(instruction=" ".join(instruction.split()))


def progress_answer(value: float) -> str:
  """Nearest of the 11 bins, e.g. 0.37 -> "0.4"."""
  return PROGRESS_ANSWERS[int(round(min(max(float(value), 0.0), 1.0) * 10))]


def answer_value(kind: str, answer: str) -> float:
  """Numeric reward of an answer: progress bin value; completion 1/0; contrastive +1 for B (second image closer),
  -1 for A. Unknown answers raise (the scorer maps unreadable output to 0 itself)."""
  if answer in ANSWERS.get(kind, ()):
    if kind == PROGRESS:
      return PROGRESS_VALUES[PROGRESS_ANSWERS.index(answer)]
    if kind == COMPLETION:
      return 1.0 if answer == YES else 0.0
    return 1.0 if answer == B else -1.0
  raise ValueError(f"answer for {kind!r}: expected one of {ANSWERS.get(kind)}, got {answer!r}")
