"""TFDS builders and readers, label making and mixtures for reward-model training data."""
