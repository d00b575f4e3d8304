"""The training augmentation: framing, bands, markers and the device-like re-stretch."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from edge_app.preprocessing import normalize_intensity  # noqa: E402
from tests.conftest import synthetic_film  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.pipeline import (  # noqa: E402
    framing_transforms,
    make_augmenter,
    make_dataset,
    mix_films,
    paste_glyphs,
    percentile_stretch,
    random_bands,
    random_framing,
    random_noise,
    random_sharpen,
)

SIZE = 64


def batch(n: int = 8) -> tf.Tensor:
    films = np.stack([synthetic_film(SIZE, seed=i, opacity=i % 2) for i in range(n)]).astype(np.float32)
    return tf.constant(films[..., None])


def test_framing_never_mirrors_and_spans_zoom_in_and_out():
    t = framing_transforms(2000, SIZE, (0.3, 2.25), 1.25, 0.1, 0.03, seed=1).numpy()
    a0, a1, b0, b1 = t[:, 0], t[:, 1], t[:, 3], t[:, 4]
    assert np.all(a0 * b1 - a1 * b0 > 0)  # orientation kept: no left-right or up-down flip
    assert np.all(a0 > 0) and np.all(b1 > 0)
    area = a0 * b1 - a1 * b0  # source area per output area
    assert area.min() < 0.4 and area.max() > 1.9 and area.min() >= 0.3 - 1e-6 and area.max() <= 2.25 + 1e-6


def test_identity_framing_returns_the_image():
    config = TrainConfig(crop_area_min=1.0, crop_area_max=1.0, aspect_jitter=1.0, shift=0.0, rotation=0.0)
    x = batch(4)
    out = random_framing(x, config, seed=3).numpy()
    assert np.abs(out - x.numpy()).max() < 1e-3


def test_zoom_out_fills_the_border_with_edge_reflection_or_black():
    config = TrainConfig(crop_area_min=2.25, crop_area_max=2.25, aspect_jitter=1.0, shift=0.0, rotation=0.0)
    x = batch(64) + 40.0  # no black pixel in the films themselves
    out = random_framing(x, config, seed=5).numpy()[..., 0]
    border = out[:, :4, :4].reshape(len(out), -1)
    black = (border.max(axis=1) == 0).sum()
    assert 0 < black < len(out)  # some films padded with black, most with film-like content
    centre = out[:, SIZE // 2 - 4 : SIZE // 2 + 4, SIZE // 2 - 4 : SIZE // 2 + 4]
    assert centre.min() > 0


def test_bands_blacken_edges_of_the_chosen_share():
    x = batch(200) + 60.0
    out = random_bands(x, probability=1.0, seed=7).numpy()[..., 0]
    dark_edge = (out[:, 0, :].max(axis=1) < 30) | (out[:, -1, :].max(axis=1) < 30)
    dark_edge |= (out[:, :, 0].max(axis=1) < 30) | (out[:, :, -1].max(axis=1) < 30)
    assert 0.7 < dark_edge.mean() <= 1.0
    assert out[:, SIZE // 2, SIZE // 2].min() > 30  # the centre stays
    untouched = random_bands(x, probability=0.0, seed=7).numpy()
    assert np.array_equal(untouched, x.numpy())


def test_glyphs_are_pasted_in_corners_on_the_chosen_share():
    x = tf.fill([200, SIZE, SIZE, 1], 100.0)
    out = paste_glyphs(x, "letter", 0.5, (0.15, 0.15), seed=9).numpy()[..., 0]
    changed = np.abs(out - 100.0) > 30
    marked = changed.any(axis=(1, 2))
    assert 0.35 < marked.mean() < 0.65
    q = SIZE // 2
    corners = [changed[:, :q, :q], changed[:, :q, q:], changed[:, q:, :q], changed[:, q:, q:]]
    per_corner = [c.any(axis=(1, 2)).sum() for c in corners]
    assert min(per_corner) > 10  # every corner gets letters
    centre = changed[:, q - 8 : q + 8, q - 8 : q + 8]
    assert not centre.any()


def test_noise_reaches_the_chosen_share_with_sigmas_up_to_the_maximum():
    from train.pipeline import NOISE_SIGMA_MAX

    x = tf.fill([400, SIZE, SIZE, 1], 128.0)
    out = random_noise(x, probability=0.5, seed=11).numpy()[..., 0]
    sigma = out.reshape(len(out), -1).std(axis=1)
    noisy = sigma > 0  # the others are left exactly as they were
    assert 0.4 < noisy.mean() < 0.6
    assert sigma.max() > 0.8 * NOISE_SIGMA_MAX and sigma.max() < 1.1 * NOISE_SIGMA_MAX
    assert abs(float(out.mean()) - 128.0) < 0.5  # zero-mean: exposure is not changed
    assert np.array_equal(random_noise(x, probability=0.0, seed=11).numpy(), x.numpy())


def _edge_energy(images: np.ndarray) -> np.ndarray:
    """Mean absolute difference between neighbouring pixels, per image."""
    return np.abs(np.diff(images, axis=2)).mean(axis=(1, 2))


def test_sharpen_raises_edge_contrast_on_the_chosen_share_and_keeps_the_mean():
    x = tf.tile(batch(8), [50, 1, 1, 1])
    out = random_sharpen(x, probability=0.5, seed=11).numpy()[..., 0]
    before, after = _edge_energy(x.numpy()[..., 0]), _edge_energy(out)
    changed = ~np.all(out == x.numpy()[..., 0], axis=(1, 2))  # the others are left exactly as they were
    assert 0.4 < changed.mean() < 0.6
    assert np.all(after[changed] > 1.05 * before[changed])  # edges stronger wherever it was applied
    assert abs(float(out.mean()) - float(x.numpy().mean())) < 1.0  # exposure is not changed
    assert np.array_equal(random_sharpen(x, probability=0.0, seed=11).numpy(), x.numpy())


def test_percentile_stretch_matches_the_device_normalisation():
    x = batch(4).numpy()[..., 0] * 0.5 + 30.0
    ours = percentile_stretch(tf.constant(x[..., None])).numpy()[..., 0]
    for film, out in zip(x, ours):
        device = normalize_intensity(film, 255.0, "percentile").astype(np.float32)
        assert np.abs(out - device).mean() < 1.5


def test_central_percentile_stretch_matches_the_device_normalisation():
    x = batch(4).numpy()[..., 0] * 0.5 + 30.0
    x[:, :6, :6] = 255.0  # a bright corner the central window must not see
    ours = percentile_stretch(tf.constant(x[..., None]), central=True).numpy()[..., 0]
    for film, out in zip(x, ours):
        device = normalize_intensity(film, 255.0, "central-percentile").astype(np.float32)
        assert np.abs(out - device).mean() < 1.5


def test_augmenter_ignores_labels_and_keeps_range():
    config = TrainConfig(
        image_size=SIZE, crop_area_min=0.3, crop_area_max=2.25, aspect_jitter=1.25,
        marker_probability=0.5, band_probability=0.3, blur_probability=0.5, noise_probability=0.5,
        sharpen_probability=0.5,
    )
    images, labels = make_augmenter(config)(batch(8), tf.zeros([8]))
    assert images.shape == (8, SIZE, SIZE, 1) and float(tf.reduce_min(images)) >= 0 and float(tf.reduce_max(images)) <= 255
    assert np.array_equal(labels.numpy(), np.zeros(8))


def test_paired_views_are_two_different_augmentations_of_the_same_films():
    config = TrainConfig(
        image_size=SIZE, batch_size=8, crop_area_min=0.3, crop_area_max=2.25, aspect_jitter=1.25,
        marker_probability=0.5, consistency=0.5,
    )
    films = batch(8).numpy()[..., 0].astype(np.uint8)
    images, labels = next(iter(make_dataset(films, np.arange(8) % 2, config, training=True)))
    assert images.shape[0] == 8 and labels.shape[0] == 8  # 4 films x 2 views
    assert np.array_equal(labels[:4].numpy(), labels[4:].numpy())
    assert not np.allclose(images[:4].numpy(), images[4:].numpy())


def test_mixup_blends_films_labels_and_class_weights_alike():
    films = batch(16)
    labels = tf.constant(np.arange(16) % 2, tf.float32)
    weights = {0: 2.0, 1: 0.5}
    mixed, soft, sample_weight = mix_films(0.4, weights, seed=3)(films, labels)
    x, y, w, m = films.numpy()[..., 0], labels.numpy(), np.array([2.0, 0.5])[labels.numpy().astype(int)], mixed.numpy()[..., 0]
    for i in range(16):
        # Each blend is lam * own film + (1 - lam) * one partner of the batch, lam >= 0.5 ...
        fits = []
        for j in range(16):
            diff = x[i] - x[j]
            if i == j or not diff.any():
                continue
            lam = float(np.sum((m[i] - x[j]) * diff) / np.sum(diff * diff))
            if np.allclose(m[i], lam * x[i] + (1 - lam) * x[j], atol=1e-3):
                fits.append((j, lam))
        if not fits:  # partnered with itself: unchanged, hard label, own weight
            assert np.allclose(m[i], x[i], atol=1e-3) and soft[i] == y[i] and np.isclose(sample_weight[i], w[i])
            continue
        j, lam = fits[0]
        assert 0.5 - 1e-4 <= lam <= 1 + 1e-4
        # ... and its label and class weight are blended with the same lam.
        assert np.isclose(float(soft[i]), lam * y[i] + (1 - lam) * y[j], atol=1e-3)
        assert np.isclose(float(sample_weight[i]), lam * w[i] + (1 - lam) * w[j], atol=1e-3)
    assert not np.allclose(m, x)  # something was blended


def test_mixup_dataset_carries_weights_and_both_views_share_labels_and_weights():
    config = TrainConfig(image_size=SIZE, batch_size=16, consistency=0.5, mixup=0.4)
    films = batch(8).numpy()[..., 0].astype(np.uint8)
    images, labels, weights = next(iter(make_dataset(films, np.arange(8) % 2, config, training=True, weights={0: 2.0, 1: 0.5})))
    assert images.shape[0] == labels.shape[0] == weights.shape[0] == 16  # 8 films x 2 views
    assert np.array_equal(labels[:8].numpy(), labels[8:].numpy())
    assert np.array_equal(weights[:8].numpy(), weights[8:].numpy())
    assert np.all((weights.numpy() >= 0.5 - 1e-6) & (weights.numpy() <= 2.0 + 1e-6))
    assert np.any((labels.numpy() > 0) & (labels.numpy() < 1))  # soft labels
    # Validation batches are never blended and carry no weights.
    assert len(next(iter(make_dataset(films, np.arange(8) % 2, config, training=False)))) == 2
