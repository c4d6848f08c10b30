"""In a lossy file, a small mark no mirrored view finds again is dropped (runtime/mirrored.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime import mirrored
from runtime.mirrored import MAX_SIDE, PAD, not_found_mirrored

RED = (255, 0, 0)


def _finds_red(calls):
    """A stand-in graph: each view's mask is where the view is pure red (paint found in any view)."""
    def masks(views):
        calls.append(views.shape)
        return (views == RED).all(axis=-1)
    return masks


def test_a_mark_found_again_mirrored_is_kept_and_one_not_is_dropped():
    """Two 6x9 marks near the picture's left edge (their boxes clipped there, so a view not
    flipped back would miss them): the red one is found again in both mirrored views and kept,
    the grey one (photo the graph took for paint once) is dropped. Each mark costs one call of
    two views, its box PAD pixels around."""
    rgb = np.full((140, 160, 3), 90, np.uint8)
    rgb[10:16, 2:11] = RED
    rgb[70:76, 3:12] = (120, 120, 120)
    mask = np.zeros((140, 160), np.uint8)
    mask[10:16, 2:11] = 255
    mask[70:76, 3:12] = 255
    calls = []
    drop = not_found_mirrored(rgb, mask, _finds_red(calls))
    assert drop.sum() == 54 and drop[70:76, 3:12].all() and not drop[10:16].any()
    assert calls == [(2, 6 + 2 * PAD - (PAD - 10), 9 + 2 + PAD, 3), (2, 6 + 2 * PAD, 9 + 3 + PAD, 3)]


def test_the_views_are_flipped_back_before_they_are_read():
    """A stand-in graph that finds the left half of whatever it is shown: in the view flipped
    left to right that is the picture's right half, which holds none of a mark at the left edge;
    in the view flipped top to bottom, the left half again. Flipped back, only the second view
    finds the mark, and it is kept; a graph that finds nothing in either view drops it."""
    rgb = np.full((40, 200, 3), 90, np.uint8)
    mask = np.zeros((40, 200), np.uint8)
    mask[18:22, 0:5] = 255

    def left_half(views):
        found = np.zeros(views.shape[:3], bool)
        found[:, :, : views.shape[2] // 2] = True
        return found

    assert not not_found_mirrored(rgb, mask, left_half).any()
    assert not_found_mirrored(rgb, mask, lambda v: np.zeros(v.shape[:3], bool)).sum() == 20


def test_a_large_mark_is_kept_unread(monkeypatch):
    """A mark MAX_SIDE + 1 pixels wide is not read (the graph is never called); one MAX_SIDE
    wide is; MAX_SIDE = 0 reads none."""
    rgb = np.full((40, MAX_SIDE + 20, 3), 90, np.uint8)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[10:20, 5:6 + MAX_SIDE] = 255
    calls = []
    assert not not_found_mirrored(rgb, mask, _finds_red(calls)).any() and calls == []
    mask[10:20, 5 + MAX_SIDE] = 0
    assert not_found_mirrored(rgb, mask, _finds_red(calls)).sum() == 10 * MAX_SIDE and len(calls) == 1
    monkeypatch.setattr(mirrored, "MAX_SIDE", 0)
    assert not not_found_mirrored(rgb, mask, _finds_red(calls)).any() and len(calls) == 1


def test_no_more_than_max_read_marks_are_read(monkeypatch):
    """Three grey marks the stand-in graph never finds: with MAX_READ 2 the first two (in the
    order of their rows) are read and dropped, the third kept unread."""
    rgb = np.full((90, 40, 3), 90, np.uint8)
    mask = np.zeros((90, 40), np.uint8)
    for y in (5, 40, 75):
        mask[y:y + 6, 10:20] = 255
    monkeypatch.setattr(mirrored, "MAX_READ", 2)
    calls = []
    drop = not_found_mirrored(rgb, mask, _finds_red(calls))
    assert len(calls) == 2 and drop[5:11, 10:20].all() and drop[40:46, 10:20].all() and drop.sum() == 120


@pytest.fixture(scope="module")
def restorer():
    from runtime import Restorer

    return Restorer(device="cpu")


def test_the_masks_alone_are_the_graphs_mask(restorer):
    """`Restorer.masks` (the CPU graph's first half alone) gives the mask `infer` gives, bit for bit."""
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (2, 72, 88, 3), dtype=np.uint8)
    batch[:, 20:40, 30:60] = (250, 20, 200)
    before = restorer.inference_seconds
    full = restorer.infer(batch, predicted=False)[1][..., 0] > 0
    after_infer = restorer.inference_seconds
    assert full.any() and np.array_equal(restorer.masks(batch), full)
    assert before < after_infer < restorer.inference_seconds  # both counted as time inside the session


def test_the_clean_selection_photo_whose_scissors_read_as_paint_comes_back_as_it_was(restorer, monkeypatch):
    """The selection's clean `arc2017` photo at JPEG 90 (photo_eval's `clean-jpeg-90`): the
    shipped graph marks two small patches of the pink scissors' handle, which neither mirrored
    view marks again, so both are dropped and the file comes back as it was; with the rule off
    (MAX_SIDE 0) they are painted. A painted selection crop keeps what it found."""
    from benchmarks.photo_cases import make_cases

    case = next(c for c in make_cases("clean-jpeg-90", "selection", 1) if c.case.name == "arc2017_clean")
    rgb = np.asarray(Image.open(io.BytesIO(case.data)).convert("RGB"))
    out = restorer.restore(Image.open(io.BytesIO(case.data)), predicted=False)
    assert not np.asarray(out.mask).any() and np.array_equal(np.asarray(out.image), rgb)
    painted = next(c for c in make_cases("jpeg-90-420", "selection", 1) if c.case.name == "arc2017_00")
    kept = np.asarray(restorer.restore(Image.open(io.BytesIO(painted.data)), predicted=False).mask) > 0
    monkeypatch.setattr(mirrored, "MAX_SIDE", 0)
    out = restorer.restore(Image.open(io.BytesIO(case.data)), predicted=False)
    assert (np.asarray(out.mask) > 0).sum() > 100
    unchecked = np.asarray(restorer.restore(Image.open(io.BytesIO(painted.data)), predicted=False).mask) > 0
    assert np.array_equal(kept, unchecked) and (kept & painted.case.mask).sum() > 0.8 * painted.case.mask.sum()


def test_marks_already_dropped_are_not_read_and_the_drop_grows_in_place():
    """Given the marks another rule dropped, the check reads only the others (one call for the
    second grey mark) and adds what it drops to that same array."""
    rgb = np.full((90, 40, 3), 90, np.uint8)
    mask = np.zeros((90, 40), np.uint8)
    mask[5:11, 10:20] = 255
    mask[70:76, 10:20] = 255
    dropped = np.zeros((90, 40), bool)
    dropped[5:11, 10:20] = True
    calls = []
    out = not_found_mirrored(rgb, mask, _finds_red(calls), drop=dropped)
    assert out is dropped and len(calls) == 1 and out.sum() == 120 and out[70:76, 10:20].all()
