"""tf.data pipelines over the in-memory images, with augmentation for training only.

Augmentation lives here, not in the model, so the exported model contains no random layers and
the device runs exactly the network that was evaluated. No vertical flips: a chest film is never
upside down, and mirror images are left out too because the heart is on the left.

The *framing* augmentation exists because the Kermany classes differ in how they were framed
and labelled, not only in the lungs: tight crops and large laterality letters are more common
among the PNEUMONIA films, and a model that learns them fails on another hospital's films
(``train/shift.py`` measures it). So, on both classes alike: random-resized crops that zoom in
(down to ``crop_area_min`` of the film) *and* out (up to ``crop_area_max``, the new border filled
by repeating the edge, by reflection or with black, as real films are padded), aspect jitter,
shift and rotation in one resampling; black collimation bands and blacked-out corners; "R"/"L"
markers and lines of text pasted in random corners at random size and intensity. The film is
then re-stretched per image to its 0.5-99.5 percentiles, as the device's preprocessing would
do to the framed film, so what the model sees is what the device would produce.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import layers

from edge_app.preprocessing import CENTRAL_WINDOW
from train.config import TrainConfig
from train.markers import glyph_bank

#: How the border a zoom-out or shift uncovers is filled: share of edge repetition, reflection,
#: black (the rest). Real films are padded all three ways.
FILL_EDGE, FILL_REFLECT = 0.5, 0.25
#: Laterality letters: height as a share of the film's side (real ones are ~5-15%).
LETTER_HEIGHT = (0.05, 0.18)
#: Text lines: height of the capitals as a share of the side.
TEXT_HEIGHT = (0.025, 0.06)
#: Collimation bands: at most this share of the side per band; blacked-out corner blocks.
BAND_MAX, CORNER_SIZE = 0.15, (0.1, 0.25)


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


#: Unsharp-mask strength range: ``image + amount * (image - blurred)``. 0.3 is a mild edge
#: enhancement; 1.2 is stronger than the stress validation's own (PIL UnsharpMask, 80%).
SHARPEN_AMOUNT = (0.3, 1.2)


def random_sharpen(images: tf.Tensor, probability: float, seed: int) -> tf.Tensor:
    """An unsharp mask of a per-image strength on a random share of the batch, the blur taken by
    a down-and-up scaling of 0.4-0.7 (a radius of about one to two input pixels): X-ray units and
    PACS exports edge-enhance films to different degrees, and the sharper NORMAL films of the
    training set make sharpness a cue (see ``blur_probability``) that edge enhancement inverts."""
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    factor = tf.random.uniform([], 0.4, 0.7, seed=seed)
    small = tf.cast(tf.cast(size, tf.float32) * factor, tf.int32)
    blurred = tf.image.resize(tf.image.resize(images, [small, small], antialias=True), [size, size])
    amount = tf.random.uniform([n, 1, 1, 1], *SHARPEN_AMOUNT, seed=seed + 1)
    choose = tf.cast(tf.random.uniform([n, 1, 1, 1], seed=seed + 2) < probability, tf.float32)
    return images + choose * amount * (images - blurred)


def _random_gamma(images: tf.Tensor, seed: int) -> tf.Tensor:
    """Per-image gamma in [0.7, 1.4]: exposure differs between X-ray units."""
    gamma = tf.exp(tf.random.uniform([tf.shape(images)[0], 1, 1, 1], -0.35, 0.35, seed=seed))
    return 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 0.0, 1.0), gamma)


#: Largest sensor-noise standard deviation in grey levels of the 0..255 model input. The stress
#: test found healthy films called sick under sigma 8 (noise_8: specificity 0.79 at 128 px, 0.57
#: at 160 px) although no training film was ever noisier than its JPEG: grain must not be a cue.
NOISE_SIGMA_MAX = 12.0


def random_noise(images: tf.Tensor, probability: float, seed: int) -> tf.Tensor:
    """Gaussian noise of a per-image sigma drawn from 0..NOISE_SIGMA_MAX on a random share of the
    batch: detectors and exposures differ in quantum noise, and a low-dose film is grainier."""
    n = tf.shape(images)[0]
    sigma = tf.random.uniform([n, 1, 1, 1], 0.0, NOISE_SIGMA_MAX, seed=seed)
    choose = tf.cast(tf.random.uniform([n, 1, 1, 1], seed=seed + 1) < probability, tf.float32)
    return images + choose * sigma * tf.random.normal(tf.shape(images), seed=seed + 2)


def _transform(images: tf.Tensor, transforms: tf.Tensor, size, fill_mode: str) -> tf.Tensor:
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.stack([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=fill_mode,
    )


def framing_transforms(
    n, size, area: tuple[float, float], aspect_max: float, shift: float, rotation: float, seed: int
) -> tf.Tensor:
    """Per-image projective transforms (n, 8) mapping output pixels into the source film.

    The source box has area log-uniform in ``area`` (a share of the film: < 1 zooms in, > 1 out),
    width/height ratio log-uniform within ``aspect_max`` either way, a centre that keeps the box
    inside the film (or the film inside the box) plus a shift of up to ``shift`` of the side, and
    a rotation of up to ``rotation`` of a full turn."""
    u = lambda lo, hi, k: tf.random.uniform([n], lo, hi, seed=seed + k)  # noqa: E731
    log_area = u(np.log(area[0]), np.log(area[1]), 0)
    log_aspect = u(-np.log(aspect_max), np.log(aspect_max), 1)
    box_w = tf.exp(0.5 * (log_area + log_aspect))
    box_h = tf.exp(0.5 * (log_area - log_aspect))
    cx = 0.5 + u(-1.0, 1.0, 2) * tf.abs(1.0 - box_w) / 2 + u(-shift, shift, 3)
    cy = 0.5 + u(-1.0, 1.0, 4) * tf.abs(1.0 - box_h) / 2 + u(-shift, shift, 5)
    angle = u(-rotation, rotation, 6) * 2.0 * np.pi
    s = tf.cast(size, tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1 = cos * box_w, -sin * box_h
    b0, b1 = sin * box_w, cos * box_h
    a2 = s * cx - (a0 + a1) * s / 2
    b2 = s * cy - (b0 + b1) * s / 2
    zeros = tf.zeros([n])
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def random_framing(images: tf.Tensor, config: TrainConfig, seed: int) -> tf.Tensor:
    """Random-resized crop / zoom-out with edge, reflect or black fill (see the module docstring)."""
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    transforms = framing_transforms(
        n, size, (config.crop_area_min, config.crop_area_max), config.aspect_jitter,
        config.shift, config.rotation, seed,
    )
    edge = _transform(images, transforms, size, "NEAREST")
    reflect = _transform(images, transforms, size, "REFLECT")
    inside = _transform(tf.ones_like(images), transforms, size, "CONSTANT")
    which = tf.random.uniform([n, 1, 1, 1], seed=seed + 10)
    return tf.where(which < FILL_EDGE, edge, tf.where(which < FILL_EDGE + FILL_REFLECT, reflect, edge * inside))


def random_bands(images: tf.Tensor, probability: float, seed: int) -> tf.Tensor:
    """Black (or near-black) collimation bands on random sides, and sometimes a blacked-out corner."""
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    s = tf.cast(size, tf.float32)
    coords = tf.range(s) + 0.5
    y, x = coords[None, :, None, None], coords[None, None, :, None]

    def width(k):
        on = tf.random.uniform([n, 1, 1, 1], seed=seed + k) < 0.5
        return tf.where(on, tf.random.uniform([n, 1, 1, 1], 0.0, BAND_MAX, seed=seed + k + 10) * s, 0.0)

    top, bottom, left, right = width(0), width(1), width(2), width(3)
    keep = (y >= top) & (y < s - bottom) & (x >= left) & (x < s - right)
    corner = tf.random.uniform([n, 1, 1, 1], *CORNER_SIZE, seed=seed + 20) * s
    at_top = tf.random.uniform([n, 1, 1, 1], seed=seed + 21) < 0.5
    at_left = tf.random.uniform([n, 1, 1, 1], seed=seed + 22) < 0.5
    in_rows = tf.where(at_top, y < corner, y >= s - corner)
    in_cols = tf.where(at_left, x < corner, x >= s - corner)
    with_corner = tf.random.uniform([n, 1, 1, 1], seed=seed + 23) < 0.3
    keep &= ~(in_rows & in_cols & with_corner)
    level = tf.random.uniform([n, 1, 1, 1], 0.0, 25.0, seed=seed + 24)
    chosen = tf.random.uniform([n, 1, 1, 1], seed=seed + 25) < probability
    return tf.where(chosen & ~keep, level, images)


def paste_glyphs(
    images: tf.Tensor, kind: str, probability: float, height: tuple[float, float], seed: int
) -> tf.Tensor:
    """Paste a random glyph of ``kind`` (see :func:`train.markers.glyph_bank`) into a random
    corner of a ``probability`` share of the images, ``height`` share of the side tall, bright
    (most often) or dark, partly transparent at times. Labels are not looked at: both classes."""
    bank, sizes = glyph_bank(kind)
    bank_t = tf.constant(bank[..., None])
    sizes_t = tf.constant(sizes.astype(np.float32))
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    s = tf.cast(size, tf.float32)
    u = lambda lo, hi, k: tf.random.uniform([n], lo, hi, seed=seed + k)  # noqa: E731
    index = tf.random.uniform([n], 0, len(bank), dtype=tf.int32, seed=seed)
    masks = tf.gather(bank_t, index)
    glyph_h, glyph_w = tf.gather(sizes_t[:, 0], index), tf.gather(sizes_t[:, 1], index)
    scale = u(*height, 1) * s / glyph_h  # output pixels per glyph pixel
    margin_x, margin_y = u(0.01, 0.08, 2) * s, u(0.01, 0.08, 3) * s
    left = tf.where(u(0.0, 1.0, 4) < 0.5, margin_x, s - margin_x - scale * glyph_w)
    top = tf.where(u(0.0, 1.0, 5) < 0.5, margin_y, s - margin_y - scale * glyph_h)
    zeros = tf.zeros([n])
    transforms = tf.stack([1 / scale, zeros, -left / scale, zeros, 1 / scale, -top / scale, zeros, zeros], axis=1)
    ink = _transform(masks, transforms, size, "CONSTANT")
    bright = u(0.0, 1.0, 6) < 0.8
    value = tf.where(bright, u(190.0, 255.0, 7), u(0.0, 40.0, 8))[:, None, None, None]
    alpha = (u(0.6, 1.0, 9) * tf.cast(u(0.0, 1.0, 10) < probability, tf.float32))[:, None, None, None]
    ink = ink * alpha
    return images * (1.0 - ink) + value * ink


def percentile_stretch(images: tf.Tensor, low: float = 0.5, high: float = 99.5, central: bool = False) -> tf.Tensor:
    """Per image, map the ``low``-``high`` percentile range to 0..255 as
    :func:`edge_app.preprocessing.normalize_intensity` does (nearest-rank percentiles); with
    ``central``, the percentiles are read from :data:`edge_app.preprocessing.CENTRAL_WINDOW`
    (the ``central-percentile`` normalisation)."""
    n = tf.shape(images)[0]
    region = images
    if central:
        rows, cols = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
        at = lambda share, side: tf.cast(tf.round(share * side), tf.int32)  # noqa: E731
        (a, b) = CENTRAL_WINDOW
        region = images[:, at(a, rows) : at(b, rows), at(a, cols) : at(b, cols), :]
    flat = tf.sort(tf.reshape(region, [n, -1]), axis=1)
    count = tf.cast(tf.shape(flat)[1] - 1, tf.float32)
    lo = tf.gather(flat, tf.cast(tf.round(count * low / 100), tf.int32), axis=1)[:, None, None, None]
    hi = tf.gather(flat, tf.cast(tf.round(count * high / 100), tf.int32), axis=1)[:, None, None, None]
    return tf.clip_by_value((images - lo) * 255.0 / tf.maximum(hi - lo, 1.0), 0.0, 255.0)


def make_augmenter(config: TrainConfig, seed_offset: int = 0):
    """A batch function applying the configured augmentations to float images in 0..255
    (``seed_offset`` gives an independent second stream, for the paired views)."""
    seed = config.seed + seed_offset
    framing = config.framing
    geometric = [] if framing else [
        layers.RandomRotation(config.rotation, fill_mode="constant", seed=seed),
        layers.RandomZoom(config.zoom, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(config.shift, config.shift, fill_mode="constant", seed=seed + 2),
    ]
    contrast = layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 3)

    def augment(images: tf.Tensor, labels: tf.Tensor):
        for layer in geometric:
            images = layer(images, training=True)
        if framing:
            images = random_framing(images, config, seed + 100)
        if config.band_probability > 0:
            images = random_bands(images, config.band_probability, seed + 200)
        if config.marker_probability > 0:
            images = paste_glyphs(images, "letter", config.marker_probability, LETTER_HEIGHT, seed + 300)
            images = paste_glyphs(images, "text", config.marker_probability / 2, TEXT_HEIGHT, seed + 400)
        if framing and config.normalization in ("percentile", "central-percentile"):
            images = percentile_stretch(images, central=config.normalization == "central-percentile")
        images = contrast(images, training=True)
        images = _random_gamma(images, seed + 4)
        if config.blur_probability > 0:
            images = _random_blur(images, config.blur_probability, seed + 5)
        if config.sharpen_probability > 0:
            images = random_sharpen(images, config.sharpen_probability, seed + 7)
        if config.noise_probability > 0:
            images = random_noise(images, config.noise_probability, seed + 6)
        return tf.clip_by_value(images, 0.0, 255.0), labels

    return augment


def mix_films(alpha: float, weights: dict[int, float] | None, seed: int):
    """Mixup (Zhang et al. 2018) on a batch of raw films: each film is blended with a random
    partner from the same batch, ``lam * film + (1 - lam) * partner`` with ``lam`` drawn from
    Beta(alpha, alpha) and folded to >= 0.5 so that every film stays mostly itself, and its label
    and class weight are blended alike. Returns ``(images, soft labels, sample weights)``; the
    class weights travel as sample weights because Keras' ``class_weight`` rounds soft labels.

    It runs before the augmenter, so both paired views show the same blend (the consistency term
    still compares one input framed two ways) and markers and bands are pasted over the blend at
    full strength, as on a real film. Why: a network that must give a blend of two films a
    blended score cannot rest on one sharp cue (a letter, a border) and is pushed towards scores
    that move smoothly between the classes, which is what the threshold needs under a shift.
    Measured on the shipped recipe (MODEL_CARD.md, ``mix128``): a tie, so the option is off there."""
    table = tf.constant([(weights or {}).get(0, 1.0), (weights or {}).get(1, 1.0)], tf.float32)

    def mix(images: tf.Tensor, labels: tf.Tensor):
        n = tf.shape(images)[0]
        partner = tf.random.shuffle(tf.range(n), seed=seed)
        first = tf.random.gamma([n], alpha, seed=seed + 1)
        second = tf.random.gamma([n], alpha, seed=seed + 2)
        lam = first / tf.maximum(first + second, 1e-12)
        lam = tf.maximum(lam, 1.0 - lam)
        blended = lam[:, None, None, None] * images + (1.0 - lam[:, None, None, None]) * tf.gather(images, partner)
        other = tf.gather(labels, partner)
        weight = tf.gather(table, tf.cast(labels, tf.int32))
        other_weight = tf.gather(table, tf.cast(other, tf.int32))
        return blended, lam * labels + (1.0 - lam) * other, lam * weight + (1.0 - lam) * other_weight

    return mix


def _keep_weights(batch_fn):
    """``batch_fn`` over ``(images, labels)`` lifted to ``(images, labels, weights)``; a paired
    batch (twice the films) gets its weights repeated, as its labels are."""

    def apply(images: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor):
        images, new_labels = batch_fn(images, labels)
        repeat = tf.shape(new_labels)[0] // tf.shape(labels)[0]
        return images, new_labels, tf.tile(weights, [repeat])

    return apply


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig,
    training: bool,
    weights: dict[int, float] | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images (n, s, s, 1) in 0..255, float32 labels); with mixup
    (``config.mixup > 0``, training only) also per-film sample weights from the class
    ``weights`` (see :func:`mix_films`)."""
    ds = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.float32)))
    if training:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    paired = training and config.augment and config.consistency > 0
    ds = ds.batch(config.batch_size // 2 if paired else config.batch_size).map(
        lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    mixing = training and config.mixup > 0
    if mixing:
        ds = ds.map(mix_films(config.mixup, weights, config.seed + 500), num_parallel_calls=tf.data.AUTOTUNE)
    augment = paired_views(config) if paired else make_augmenter(config) if training and config.augment else None
    if augment is not None:
        ds = ds.map(_keep_weights(augment) if mixing else augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def paired_views(config: TrainConfig):
    """A batch function returning two independent augmentations of the same films, stacked
    ``[view 1; view 2]`` (labels repeated), for the consistency loss (:mod:`train.model`): the
    same lungs framed and marked two ways must get the same logit."""
    first, second = make_augmenter(config), make_augmenter(config, seed_offset=1000)

    def views(images: tf.Tensor, labels: tf.Tensor):
        a, _ = first(images, labels)
        b, _ = second(images, labels)
        return tf.concat([a, b], axis=0), tf.concat([labels, labels], axis=0)

    return views
