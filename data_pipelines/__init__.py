"""TFDS builders and readers, label making and mixtures for reward-model training data."""
import os as _os

# The mixture runs readers inside `tf.data.Dataset.from_generator`; several of them iterate TFDS datasets of their
# own from there. Each generator holds a TF inter-op thread while it waits for its inner iterator, whose ops need
# inter-op threads too; with the default pool (one thread per core) a 2-core machine deadlocked after a few hundred
# batches (every thread blocked on a mutex, CPU idle). A larger pool removes the starvation; threads are cheap.
# Must be set before TensorFlow starts its runtime; an explicit user setting wins.
_os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(max(16, 2 * (_os.cpu_count() or 1))))
