"""tf.data pipelines over the in-memory images, with augmentation for training only.

Augmentation lives here, not in the model, so the exported model contains no random layers and
the device runs exactly the network that was evaluated. No vertical flips: a chest film is never
upside down, and mirror images are left out too because the heart is on the left.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import layers

from train.config import TrainConfig


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weights that make each class contribute equally to the loss."""
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return {i: float(len(labels) / (2.0 * c)) for i, c in enumerate(counts) if c}


def _random_blur(images: tf.Tensor, probability: float, seed: int) -> tf.Tensor:
    """Down-and-up scale a random subset of the batch by a random factor (0.35-0.8)."""
    size = tf.shape(images)[1]
    factor = tf.random.uniform([], 0.35, 0.8, seed=seed)
    small = tf.cast(tf.cast(size, tf.float32) * factor, tf.int32)
    blurred = tf.image.resize(tf.image.resize(images, [small, small], antialias=True), [size, size])
    choose = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=seed + 1) < probability
    return tf.where(choose, blurred, images)


def _random_gamma(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Per-image gamma in [0.7, 1.4]: exposure differs between X-ray units."""
    gamma = tf.exp(tf.random.uniform([tf.shape(images)[0], 1, 1, 1], -0.35, 0.35, seed=seed))
    return 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 0.0, 1.0), gamma)


def make_augmenter(config: TrainConfig):
    """A batch function applying the configured augmentations to float images in 0..255."""
    seed = config.seed
    geometric = [
        layers.RandomRotation(config.rotation, fill_mode="constant", seed=seed),
        layers.RandomZoom(config.zoom, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(config.shift, config.shift, fill_mode="constant", seed=seed + 2),
    ]
    contrast = layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 3)

    def augment(images: tf.Tensor, labels: tf.Tensor):
        for layer in geometric:
            images = layer(images, training=True)
        images = contrast(images, training=True)
        images = _random_gamma(images, seed + 4)
        if config.blur_probability > 0:
            images = _random_blur(images, config.blur_probability, seed + 5)
        return tf.clip_by_value(images, 0.0, 255.0), labels

    return augment


def make_dataset(
    images: np.ndarray, labels: np.ndarray, config: TrainConfig, training: bool
) -> tf.data.Dataset:
    """Batches of (float32 images (n, s, s, 1) in 0..255, float32 labels)."""
    ds = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.float32)))
    if training:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    if training and config.augment:
        ds = ds.map(make_augmenter(config), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
