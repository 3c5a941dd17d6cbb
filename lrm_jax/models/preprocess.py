"""Frames as the image tower expects them; shared by training and scoring so both see identical inputs."""
import jax
import jax.numpy as jnp


def images(x, size: int):
  """uint8 (or float in [0, 255]) [..., H, W, 3] -> float32 in [-1, 1] at `size` x `size`."""
  x = jnp.asarray(x).astype(jnp.float32) / 127.5 - 1.0
  if x.shape[-3:-1] != (size, size):
    x = jax.image.resize(x, (*x.shape[:-3], size, size, 3), method="bilinear", antialias=True)
  return x
