"""The three reward prompts and their answer strings: the single source shared by training and scoring.

Every question sees the same two frames: image A (an earlier frame of the attempt, the "context") and image B (the
current frame). A prompt is a *shared context* ("Task: {instruction}"), which together with both images forms the
bidirectional prefix, followed by a short *question* and the answer, which are causal. Progress and completion ask
about image B; contrastive asks which of A and B is closer to done. This layout is what makes scoring cheap: one
image encoding and one prefix pass serve all three questions, and only the few question tokens differ (see
lrm_jax/rewards/scoring.py). At RL time image A is the frame of the previous reward query (K steps earlier).

Answers are short ("0.0".."1.0", "yes"/"no", "A"/"B") so the scorer can read the answer distribution in one forward
pass (expected bin value, P(yes), P(B)) by teacher-forcing the answer's shared tokens.
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

CONTEXT = "Task: {instruction}"
QUESTIONS = {
    PROGRESS: "How far along is the task in image B? Progress:",
    COMPLETION: "Is the task completed in image B? Completed:",
    CONTRASTIVE: "Which image is closer to completing the task, A or B? Closer:",
}
NUM_IMAGES = 2  # image A (context: an earlier frame) and image B (current frame), for every kind


def context(instruction: str) -> str:
  """The shared part of every prompt: the instruction (whitespace-normalised, one line)."""
  return CONTEXT.format(instruction=" ".join(instruction.split()))


def question(kind: str) -> str:
  if kind not in QUESTIONS:
    raise ValueError(f"prompt kind: expected one of {KINDS}, got {kind!r}")
  return QUESTIONS[kind]


def prompt(kind: str, instruction: str) -> str:
  """The whole prompt as text (context, newline, question): for display and logs."""
  return context(instruction) + "\n" + question(kind)


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
