"""lrm_jax: Large Reward Models in JAX.

Data flows datagen -> data_pipelines -> models -> rewards -> rl; modules never import back up that chain.
`lrm_jax.jobs` sits on top and wires the stages together for `python -m lrm_jax.main`.
"""
