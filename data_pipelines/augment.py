"""Resize and photometric/crop augmentation for label examples, stateless so the stream is reproducible.

Both images of a contrastive pair get the same crop and colour change: the answer must come from the scene, not
from a difference in augmentation. No horizontal flips: instructions say "left" and "right".
"""
import tensorflow as tf


def resize(images, size: int):
  """uint8 [N,H,W,3] -> uint8 [N,size,size,3], antialiased (sources range from 84 px to 1080p)."""
  out = tf.image.resize(tf.cast(images, tf.float32), [size, size], antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def augment(images, num_images, seed, *, crop_min: float = 0.85, brightness: float = 0.1,
            contrast: float = 0.1):
  """images uint8 [N,S,S,3]; seed int32/int64 [2] (stateless). Returns uint8 [N,S,S,3]."""
  size = tf.shape(images)[1:3]
  s1, s2, s3 = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3))
  scale = tf.random.stateless_uniform([], s1, crop_min, 1.0)
  offset = tf.random.stateless_uniform([2], s2, 0.0, 1.0) * (1.0 - scale)
  box = tf.stack([offset[0], offset[1], offset[0] + scale, offset[1] + scale])
  n = tf.shape(images)[0]
  x = tf.image.crop_and_resize(tf.cast(images, tf.float32) / 255.0, tf.tile(box[None], [n, 1]), tf.range(n), size)
  x = tf.image.stateless_random_brightness(x, brightness, s3)
  x = tf.image.stateless_random_contrast(x, 1.0 - contrast, 1.0 + contrast, s3 + 1)
  x = tf.clip_by_value(x, 0.0, 1.0)
  mask = tf.cast(tf.range(n) < num_images, tf.float32)[:, None, None, None]  # keep padding slots black
  return tf.cast(tf.round(x * mask * 255.0), tf.uint8)
