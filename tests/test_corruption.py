"""Synthetic corruption and source photos: exact masks, reproducibility, config fields honoured."""

import math

import numpy as np
import pytest

from restore_core.photos import BUNDLED, BUNDLED_VAL, ZOOM, bundled_photos, random_crop, split_sources
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng


def _photo_crop(seed=0, size=48):
    return random_crop(bundled_photos()["astronaut"], size, sample_rng(seed, 99), augment=False)


@pytest.mark.parametrize("fill", ["random", "image", "mixed"])
def test_mask_is_exactly_the_changed_pixels(fill):
    cfg = CorruptionConfig(count=(1, 8), fill=fill)
    nonempty = 0
    for i in range(20):
        clean = _photo_crop(i)
        before = clean.copy()
        corrupted, mask = corrupt(clean, sample_rng(3, i), cfg)
        assert corrupted.dtype == np.uint8 and mask.dtype == bool and mask.shape == clean.shape[:2]
        assert np.array_equal(clean, before), "the clean image was modified"
        assert np.array_equal(mask, np.any(corrupted != clean, axis=2))
        assert np.array_equal(corrupted[~mask], clean[~mask])  # bit-exact outside the mask
        nonempty += bool(mask.any())
    # A fill taken from the image can land on a flat patch of that very colour: no change.
    assert nonempty == 20 if fill == "random" else nonempty >= 15


def test_fill_equal_to_clean_is_not_a_change():
    # A flat image whose only colour is the fill: every shape is drawn, nothing changes.
    clean = np.full((32, 32, 3), 77, np.uint8)
    corrupted, mask = corrupt(clean, sample_rng(0, 0), CorruptionConfig(count=(5, 5), fill="image"))
    assert not mask.any() and np.array_equal(corrupted, clean)


def test_reproducible_per_sample():
    clean = _photo_crop()
    a = corrupt(clean, sample_rng(5, 1))
    b = corrupt(clean, sample_rng(5, 1))
    c = corrupt(clean, sample_rng(5, 2))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_count_zero_leaves_image_alone():
    clean = _photo_crop()
    corrupted, mask = corrupt(clean, sample_rng(0, 0), CorruptionConfig(count=(0, 0)))
    assert not mask.any() and np.array_equal(corrupted, clean)


def test_square_size_and_shape():
    # Black image, one square of 0.5 x 64 = 32 px: a filled axis-aligned square where not clipped.
    clean = np.zeros((64, 64, 3), np.uint8)
    cfg = CorruptionConfig(count=(1, 1), size=(0.5, 0.5), shapes=("square",))
    for i in range(10):
        _, mask = corrupt(clean, sample_rng(1, i), cfg)
        ys, xs = np.nonzero(mask)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert mask.sum() == h * w, "a square is a filled rectangle"
        assert h <= 33 and w <= 33
        if 0 < ys.min() and ys.max() < 63 and 0 < xs.min() and xs.max() < 63:  # not clipped
            assert abs(h - 32) <= 1 and abs(w - 32) <= 1


def test_circle_area():
    clean = np.zeros((128, 128, 3), np.uint8)
    cfg = CorruptionConfig(count=(1, 1), size=(0.25, 0.25), shapes=("circle",))
    checked = 0
    for i in range(20):
        _, mask = corrupt(clean, sample_rng(2, i), cfg)
        ys, xs = np.nonzero(mask)
        if ys.min() > 0 and ys.max() < 127 and xs.min() > 0 and xs.max() < 127:
            r = 0.25 * 128 / 2
            assert abs(mask.sum() - math.pi * r * r) < 0.06 * math.pi * r * r
            assert mask.sum() < (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)  # not a square
            checked += 1
    assert checked >= 3


def test_image_fill_uses_image_colours():
    clean = np.zeros((40, 40, 3), np.uint8)
    clean[:20] = (10, 200, 30)
    clean[20:] = (250, 5, 90)
    corrupted, mask = corrupt(clean, sample_rng(0, 4), CorruptionConfig(count=(6, 6), fill="image"))
    colours = {tuple(c) for c in corrupted.reshape(-1, 3)}
    assert colours <= {(10, 200, 30), (250, 5, 90)}


@pytest.mark.parametrize("kwargs,key", [
    ({"count": (3, 1)}, "corruption.count"),
    ({"size": (0.0, 0.5)}, "corruption.size"),
    ({"shapes": ("triangle",)}, "corruption.shapes"),
    ({"fill": "plaid"}, "corruption.fill"),
])
def test_bad_config_names_the_field(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CorruptionConfig(**kwargs)


def test_bundled_photos_and_crops():
    photos = bundled_photos()
    assert set(photos) == set(BUNDLED)
    for name, img in photos.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
    train, val = split_sources(list(photos.items()), bundled=True)
    assert {n for n, _ in val} == set(BUNDLED_VAL) and not {n for n, _ in train} & set(BUNDLED_VAL)

    img = photos["coffee"]
    a = random_crop(img, 40, sample_rng(0, 1))
    b = random_crop(img, 40, sample_rng(0, 1))
    assert a.shape == (40, 40, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    # Without augmentation, a crop is an exact window of the photo.
    plain = random_crop(img, 40, sample_rng(0, 2), augment=False)
    windows = np.lib.stride_tricks.sliding_window_view(img, (40, 40, 3))[..., 0, :, :, :]
    assert (windows == plain).all(axis=(-3, -2, -1)).any()
    # Augmented crops vary in colour statistics, not only in position.
    means = [random_crop(img, 40, sample_rng(0, i)).mean(axis=(0, 1)) for i in range(30)]
    assert np.std(means, axis=0).min() > 5.0


def test_zoom_sets_the_scale_of_an_augmented_crop():
    """A crop whose source window is an eighth of its side is the photo scaled up eight times:
    neighbouring pixels differ far less than in crops at the default scales (0.5 to 3)."""
    img = bundled_photos()["astronaut"]

    def roughness(zoom, seed):
        crop = random_crop(img, 64, sample_rng(seed, 3), zoom=zoom).astype(np.float64)
        return np.abs(np.diff(crop, axis=1)).mean()

    up = [roughness((0.125, 0.125), s) for s in range(12)]
    default = [roughness(ZOOM, s) for s in range(12)]
    assert ZOOM == (0.5, 3.0)
    assert np.median(up) < 0.5 * np.median(default), (np.median(up), np.median(default))
    # The same seed and zoom give the same crop; another zoom gives another.
    a = random_crop(img, 64, sample_rng(0, 3), zoom=(0.125, 0.125))
    assert np.array_equal(a, random_crop(img, 64, sample_rng(0, 3), zoom=(0.125, 0.125)))
    assert not np.array_equal(a, random_crop(img, 64, sample_rng(0, 3)))
