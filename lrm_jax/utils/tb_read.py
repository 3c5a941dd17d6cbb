"""Reading scalars back from a run's TensorBoard event files (clu writes them through tf.summary)."""
import glob
import os


def scalars(logdir: str, prefix: str = "") -> dict[str, dict[int, float]]:
  """tag -> {step: value} for every scalar whose tag starts with `prefix` (the last value wins for a repeated step,
  e.g. a step logged again by a resumed run)."""
  import tensorflow as tf  # only here: reading events is the one use, and importing TF is slow
  out: dict[str, dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag.startswith(prefix) and v.HasField("tensor") and not v.tensor.tensor_shape.dim:
          out.setdefault(v.tag, {})[int(event.step)] = float(tf.make_ndarray(v.tensor))
  return out
