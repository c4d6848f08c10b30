"""Procedural scenes and the crop-level changes (JPEG, vivid colours, hue turns): reproducible and camera-like."""

from __future__ import annotations

import numpy as np

from restore_core.data import SyntheticDataset
from restore_core.photos import bundled_photos, hue_rotate, vivid
from restore_core.scenes import _gradient, jpeg, render_scene
from restore_toolkit.corruption import sample_rng


def _grad(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def test_scenes_are_reproducible_and_vary():
    a, b = render_scene(64, sample_rng(3, 1)), render_scene(64, sample_rng(3, 1))
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_scene(64, sample_rng(3, 2)))


def test_gradient_runs_from_one_colour_to_the_other_across_the_canvas():
    a, b = (10, 200, 30), (250, 0, 90)
    for i in range(8):  # eight random directions
        g = _gradient(40, 56, a, b, sample_rng(7, i)).astype(np.int64)  # (40, 56, 3)
        corners = [g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]]
        # The ramp starts at one corner and ends at another: both end colours appear there.
        assert min(np.abs(c - a).max() for c in corners) <= 1
        assert min(np.abs(c - b).max() for c in corners) <= 1
        # Linear: every pixel lies between a and b, and neighbours differ by a small step.
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        assert ((g >= lo) & (g <= hi)).all()
        assert np.abs(np.diff(g, axis=0)).max() <= 12 and np.abs(np.diff(g, axis=1)).max() <= 12


def test_open_skies_are_smooth_but_never_one_exact_colour():
    skies = [render_scene(96, sample_rng(5, i), sky=1.0) for i in range(6)]
    towns = [render_scene(96, sample_rng(5, i), sky=0.0) for i in range(6)]
    assert np.mean([_grad(s) for s in skies]) < np.mean([_grad(t) for t in towns])
    for s in skies:  # a drawn shape is one colour; a sky, even after JPEG, never is
        assert len(np.unique(s.reshape(-1, 3), axis=0)) > 20


def test_jpeg_share_recompresses_photo_crops_only_when_asked():
    photos = [bundled_photos()["astronaut"]]
    plain = SyntheticDataset(photos, 48, 4, seed=0, jpeg=0.0)
    squeezed = SyntheticDataset(photos, 48, 4, seed=0, jpeg=1.0)
    for i in range(4):
        _, clean0, _ = plain.sample(i)
        _, clean1, _ = squeezed.sample(i)
        assert not np.array_equal(clean0, clean1)
        assert np.abs(clean0.astype(int) - clean1.astype(int)).mean() < 12  # the same crop, re-encoded
    x = bundled_photos()["coffee"][:64, :64]
    assert np.abs(jpeg(x, 95).astype(int) - x).mean() < np.abs(jpeg(x, 40).astype(int) - x).mean()



def _spread(img: np.ndarray) -> float:
    x = img.astype(np.float64)
    return float((x.max(axis=2) - x.min(axis=2)).mean())  # mean chroma, 0 for grey


def test_vivid_share_saturates_photo_crops_and_leaves_other_configs_alone():
    photos = [bundled_photos()["astronaut"], bundled_photos()["coffee"]]
    default = SyntheticDataset(photos, 48, 6, seed=0)
    unset = SyntheticDataset(photos, 48, 6, seed=0, vivid=0.0)
    bright = SyntheticDataset(photos, 48, 6, seed=0, vivid=1.0)
    spreads = []
    for i in range(6):
        # vivid = 0 draws nothing from the sample's generator: older configs keep their samples.
        assert all(np.array_equal(a, b) for a, b in zip(default.sample(i), unset.sample(i)))
        _, plain, _ = default.sample(i)
        _, sat, _ = bright.sample(i)
        assert _spread(sat) >= _spread(plain)
        spreads.append((_spread(plain), _spread(sat)))
        assert ((sat == 0) | (sat == 255)).any(axis=2).mean() >= ((plain == 0) | (plain == 255)).any(axis=2).mean()
    plain, sat = np.mean(spreads, axis=0)
    assert sat > 1.4 * plain
    grey = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 3, axis=2)  # (1, 64, 3)
    assert np.array_equal(vivid(grey, sample_rng(0, 0)), grey)  # no colour to raise
    pure = vivid(np.array([[[10, 70, 70]]], np.uint8), np.random.default_rng(0))
    assert pure[0, 0, 0] == 0 and pure[0, 0, 1] == pure[0, 0, 2] > 70  # dark teal clips to a pure hue



def test_hue_turns_keep_brightness_and_chroma_and_reach_other_hues():
    photos = [bundled_photos()["coffee"]]
    default = SyntheticDataset(photos, 48, 4, seed=0)
    unset = SyntheticDataset(photos, 48, 4, seed=0, hue=0.0)
    turned = SyntheticDataset(photos, 48, 4, seed=0, hue=1.0)
    for i in range(4):
        assert all(np.array_equal(a, b) for a, b in zip(default.sample(i), unset.sample(i)))
        assert not np.array_equal(default.sample(i)[1], turned.sample(i)[1])
    # A turn about the grey axis is a rotation: for colours far from the cube's walls the
    # channel mean (brightness) and the distance from grey (chroma) stay, within rounding.
    rng = np.random.default_rng(4)
    x = rng.integers(90, 166, size=(32, 32, 3)).astype(np.uint8)
    hues = set()
    for k in range(8):
        y = hue_rotate(x, sample_rng(k, 0)).astype(np.float64)
        xf = x.astype(np.float64)
        assert np.abs(y.mean(axis=2) - xf.mean(axis=2)).max() <= 1.0
        chroma = lambda a: np.linalg.norm(a - a.mean(axis=2, keepdims=True), axis=2)  # noqa: E731
        assert np.abs(chroma(y) - chroma(xf)).max() <= 1.5
        hues.add(int(np.argmax(y[0, 0] - y[0, 0].mean())))
    assert len(hues) >= 2  # the strongest channel of a pixel changes with the angle
    grey = np.full((4, 4, 3), 77, np.uint8)
    assert np.array_equal(hue_rotate(grey, sample_rng(0, 0)), grey)

