"""lrm_jax: Large Reward Models in JAX.

Data flows datagen -> data_pipelines -> models -> rewards -> rl; modules never import back up that chain.
`lrm_jax.jobs` sits on top and wires the stages together for `python -m lrm_jax.main`.
"""

from lrm_jax.utils import xla_flags as _xla_flags  # noqa: E402

_xla_flags.apply()  # must run before the JAX backend initialises (see lrm_jax/utils/xla_flags.py)
