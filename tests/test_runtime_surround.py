"""In a lossy file, a mark the colour of its surroundings is dropped (runtime/surround.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime import mirrored, surround
from runtime.surround import FAR, MIN_RING, NEAR, SAME, ring_contrast, same_as_surroundings

RNG = np.random.default_rng(5)


def test_the_ring_distance_by_hand():
    """A 4x4 mark of (100, 100, 100) in a window of (110, 100, 95): every ring pixel is 10 levels
    off at most (its largest channel), so the median is 10; the ring starts NEAR + 1 pixels out,
    skips other marks, and a mark with no room around it is not judged."""
    rgb = np.full((20, 20, 3), (110, 100, 95), np.uint8)
    rgb[8:12, 8:12] = 100
    mark = np.zeros((20, 20), bool)
    mark[8:12, 8:12] = True
    assert ring_contrast(rgb, mark, mark) == 10
    near = mark.copy()
    near[8 - NEAR:12 + NEAR, 8 - NEAR:12 + NEAR] = True  # the band the ring skips
    rgb[near & ~mark] = 0  # far off, but not in the ring
    assert ring_contrast(rgb, mark, mark) == 10
    other = mark.copy()
    other[:, :6] = True  # another mark over the ring's left part, painted far off too
    rgb[:, :6] = 255
    assert ring_contrast(rgb, other, mark) == 10
    assert np.isinf(ring_contrast(rgb, np.ones_like(mark), mark))  # no ring left: kept
    assert MIN_RING > 0 and NEAR < FAR


def _sky():
    """A (60, 90) picture: a flat sky of (70, 110, 180) with sensor noise over its top two
    thirds, texture below."""
    rgb = RNG.integers(0, 256, (60, 90, 3)).astype(np.int16)
    rgb[:40] = np.array([70, 110, 180]) + RNG.integers(-3, 4, (40, 90, 3))
    return rgb.clip(0, 255).astype(np.uint8)


def test_a_mark_of_the_skys_colour_is_dropped_and_paint_is_not():
    rgb = _sky()
    rgb[10:22, 50:62] = (230, 200, 40)  # paint on the sky
    mask = np.zeros((60, 90), np.uint8)
    mask[10:22, 10:22] = 255  # the sky itself: its colour all round
    mask[10:22, 50:62] = 255  # the paint: the sky around it is another colour
    drop = same_as_surroundings(rgb, mask)
    assert drop[10:22, 10:22].all() and not drop[:, 40:].any()
    assert not same_as_surroundings(rgb, mask, same=0)[10:22, 10:22].any()  # 0 levels: the sky's noise keeps it
    rgb[10:22, 50:62] = (78, 116, 190)  # paint within SAME of the sky: the colour of its surroundings
    assert same_as_surroundings(rgb, mask)[10:22, 50:62].all()
    assert not same_as_surroundings(rgb, np.zeros_like(mask)).any()


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu")


def test_a_clean_jpeg_whose_marks_are_the_colour_of_its_sky_comes_back_as_it_was(restorer, monkeypatch):
    """The selection's clean `rocket` photo at JPEG 75 (photo_eval's `clean-jpeg-75`), the graph's
    mask with two 49-pixel patches of its evening sky added (the full-range int8 graph marked two
    such patches there; the shipped graph marks none): each ring lies within SAME of the patch's
    colour, so both are dropped and the file comes back as it was; with the rule at 0 levels they
    are painted. A painted selection crop's marks, whose rings are the photo, are all kept."""
    from benchmarks.photo_cases import make_cases
    from runtime.restorer import Restorer

    full_size = Restorer._full_size

    def with_sky_marks(self, rgb, *args, **kwargs):
        restored, mask, raw, tiles = full_size(self, rgb, *args, **kwargs)
        for y, x in SKY:
            mask[y:y + 7, x:x + 7] = 255
            restored[y:y + 7, x:x + 7] = rgb[y:y + 7, x:x + 7] // 2  # a fill the rule would have painted
        return restored, mask, raw, tiles

    case = next(c for c in make_cases("clean-jpeg-75", "selection", 4) if c.case.name == "rocket_clean")
    rgb = np.asarray(Image.open(io.BytesIO(case.data)).convert("RGB"))
    assert all(rgb[y:y + 7, x:x + 7].std(axis=(0, 1)).max() < 3 for y, x in SKY)  # smooth sky
    monkeypatch.setattr(Restorer, "_full_size", with_sky_marks)
    out = restorer.restore(Image.open(io.BytesIO(case.data)))
    assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb)
    monkeypatch.setattr(surround, "SAME", 0)
    monkeypatch.setattr(mirrored, "MAX_SIDE", 0)  # nor read in a mirror (runtime/mirrored.py): painted
    out = restorer.restore(Image.open(io.BytesIO(case.data)))
    assert (np.asarray(out.mask) > 0).sum() >= 2 * 49
    painted = next(c for c in make_cases("jpeg-75-420", "selection", 4) if c.case.name == "rocket_01")
    monkeypatch.undo()
    kept = restorer.restore(Image.open(io.BytesIO(painted.data)))
    found = np.asarray(kept.mask) > 0
    assert (found & painted.case.mask).sum() > 0.5 * painted.case.mask.sum()
    assert SAME == 16


SKY = ((30, 40), (60, 400))  # (row, column) of two 7 x 7 patches of the rocket photo's evening sky
