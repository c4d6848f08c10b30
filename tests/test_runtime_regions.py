"""The image decoder run on crops around the masked pixels: the rectangles, their radius, and
outputs bit-identical to running it on the whole window."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from restore_core.heldout import heldout_photos
from runtime.default_model import SHIPPED_INT8
from runtime.regions import CALL_CELLS, Box, cell_grid, cover
from runtime.runner import Runner
from runtime.session import make_session
from runtime.split import SplitRunner
from runtime.tiling import decoder_radius, receptive_radius

SHIPPED_CONFIG = {"base_channels": 16, "blocks_per_stage": 1, "depth": 4, "in_channels": 3, "max_channels": 256}


def _inside(cell, rect) -> bool:
    y, x = cell
    y0, y1, x0, x1 = rect
    return y0 <= y < y1 and x0 <= x < x1


def test_cell_grid_marks_cells_holding_a_masked_pixel():
    mask = np.zeros((35, 20), dtype=bool)
    mask[0, 0] = mask[17, 19] = mask[34, 5] = True
    grid = cell_grid(mask, 16)
    assert grid.shape == (3, 2)
    assert grid.tolist() == [[True, False], [False, True], [True, False]]


def test_far_specks_get_a_box_each_and_near_ones_share_one():
    grid = np.zeros((60, 80), dtype=bool)
    grid[5, 5] = grid[50, 70] = True
    boxes = cover(grid, margin=3)
    assert sorted(b.own for b in boxes) == [(5, 6, 5, 6), (50, 51, 70, 71)]
    # Each is run grown by the margin, clipped to the grid.
    assert {b.run for b in boxes} == {(2, 9, 2, 9), (47, 54, 67, 74)}
    grid[:] = False
    grid[5, 5] = grid[6, 8] = True  # closer than a call's overhead is worth
    assert [b.own for b in cover(grid, margin=3)] == [(5, 7, 5, 9)]
    assert cover(np.zeros((4, 4), dtype=bool), margin=3) == []


@pytest.mark.parametrize("seed", range(6))
def test_boxes_cover_every_masked_cell_once_and_cost_no_more_than_one_box(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(5, 90, 2))
    grid = rng.random(shape) < rng.choice([0.002, 0.02, 0.2])
    grid[rng.integers(shape[0]), rng.integers(shape[1])] = True
    margin = int(rng.integers(0, 5))
    boxes = cover(grid, margin)
    for cell in zip(*np.nonzero(grid)):
        assert sum(_inside(cell, b.own) for b in boxes) == 1  # own rectangles never overlap
    for b in boxes:
        y0, y1, x0, x1 = b.own
        assert b.run == (max(0, y0 - margin), min(shape[0], y1 + margin), max(0, x0 - margin), min(shape[1], x1 + margin))
        assert grid[y0:y1, x0:x1].any()
    ys, xs = np.nonzero(grid)
    one = Box((ys.min(), ys.max() + 1, xs.min(), xs.max() + 1), (0, 0, 0, 0))
    one_cells = (min(shape[0], one.own[1] + margin) - max(0, one.own[0] - margin)) * (
        min(shape[1], one.own[3] + margin) - max(0, one.own[2] - margin))
    assert sum(b.cells for b in boxes) + CALL_CELLS * len(boxes) <= one_cells + CALL_CELLS


def test_decoder_radius_counts_the_decoder_part_of_the_receptive_radius():
    # Two 3x3 convs per stage at 1, 2, 4, 8 px (30), the upsamples into 1, 2, 4 px (2 + 4 + 8).
    assert decoder_radius(SHIPPED_CONFIG, upsamples=3) == 44
    assert decoder_radius(SHIPPED_CONFIG, upsamples=4) == 60  # the bottleneck's too
    assert decoder_radius(SHIPPED_CONFIG, upsamples=4) < receptive_radius(SHIPPED_CONFIG)


@pytest.fixture(scope="module")
def whole_and_split():
    session, info = make_session(SHIPPED_INT8, device="cpu")
    split = SplitRunner.for_model(SHIPPED_INT8, threads=info.threads)
    return Runner(session, info), split


class _Recording:
    """Wraps the second half's session and records the image size of each run."""

    def __init__(self, session):
        self.session, self.sizes = session, []

    def run(self, names, feeds):
        self.sizes.append(feeds["image"].shape[:3])
        return self.session.run(names, feeds)


def _painted(h: int, w: int, marks) -> np.ndarray:
    photo = next(iter(heldout_photos("selection").values()))
    tiles = np.tile(photo, (-(-h // photo.shape[0]), -(-w // photo.shape[1]), 1))
    image = np.ascontiguousarray(tiles[:h, :w]).copy()
    for y, x, colour in marks:
        image[y:y + 24, x:x + 40] = colour
    return image[None]


def test_the_shipped_graph_runs_its_decoder_on_crops_with_its_own_radius(whole_and_split):
    _, split = whole_and_split
    assert split.crops is not None and split.crops.condition in split.second_inputs
    # The shipped graph's second half upsamples three times: 44 px, three 16-px cells.
    assert split.crops.stride == 16 and split.crops.margin == 3


@pytest.mark.parametrize("h, w, marks", [
    # Marks far apart: one crop each, the window's far edges included (sides not a multiple of 16).
    (421, 603, [(20, 30, (255, 0, 255)), (380, 550, (0, 255, 0)), (200, 300, (255, 255, 255))]),
    # Marks at the very corners.
    (300, 450, [(0, 0, (255, 255, 0)), (276, 410, (255, 0, 255))]),
])
def test_crops_give_the_whole_windows_output_byte_for_byte(whole_and_split, monkeypatch, h, w, marks):
    whole, split = whole_and_split
    images = _painted(h, w, marks)
    second = _Recording(split.second)
    monkeypatch.setattr(split, "second", second)
    restored, mask, predicted = split.run(images, predicted=False)
    want = whole.run(images)
    assert np.array_equal(restored, want[0]) and np.array_equal(mask, want[1]) and predicted is None
    assert not np.array_equal(restored, images)  # the marks were found and filled
    assert len(second.sizes) >= 2 and all(s[1] * s[2] < h * w / 2 for s in second.sizes)


def test_a_batch_mixes_crops_and_whole_runs(whole_and_split, monkeypatch):
    whole, split = whole_and_split
    speck = _painted(256, 320, [(100, 140, (255, 0, 255))])
    spread = _painted(256, 320, [(y, x, (255, 255, 255)) for y in range(0, 256, 48) for x in range(0, 320, 64)])
    images = np.concatenate([speck, spread])
    second = _Recording(split.second)
    monkeypatch.setattr(split, "second", second)
    restored = split.run(images, predicted=False)[0]
    assert np.array_equal(restored, whole.run(images)[0])
    assert (1, 256, 320) in second.sizes  # the spread marks: the whole window, the speck: a crop
    assert any(s[1] * s[2] < 256 * 320 / 2 for s in second.sizes)


def test_crops_without_the_margin_would_not_be_exact(whole_and_split, monkeypatch):
    # The margin is what makes the crops exact: cut to the masked cells alone, they differ.
    whole, split = whole_and_split
    images = _painted(300, 450, [(120, 200, (255, 0, 255))])
    monkeypatch.setattr(split, "crops", dataclasses.replace(split.crops, margin=0))
    assert not np.array_equal(split.run(images, predicted=False)[0], whole.run(images)[0])


def test_crops_tell_activations_from_the_image_by_name_not_shape(whole_and_split):
    # 384x48: the 384-channel activation at 1/8 is (1, 384, 48, 6), the image's own (H, W) again.
    _, split = whole_and_split
    images = _painted(384, 48, [(30, 4, (255, 0, 255))])
    tensors = dict(zip(split.first_outputs, split.first.run(split.first_outputs, {"image": images})))
    tensors["image"] = images
    box = Box(own=(1, 3, 0, 3), run=(0, 6, 0, 3))  # rows 0-95 of the padded 384x48
    feeds = split.crops.feeds(tensors, split.second_inputs, 0, box, 384, 48)
    for name, t in feeds.items():
        full = tensors[name]
        if name in ("image", split.crops.condition):
            assert t.shape == (1, 96, 48, full.shape[3])
        else:
            f = 384 // full.shape[2]
            assert t.shape == (1, full.shape[1], 96 // f, 48 // f)
    assert any(tensors[name].shape[1:3] == (384, 48) for name in feeds if name not in ("image", split.crops.condition))


def test_an_image_with_nothing_found_is_not_run_through_the_decoder(whole_and_split, monkeypatch):
    whole, split = whole_and_split
    clean = _painted(256, 320, [])
    speck = _painted(256, 320, [(100, 140, (255, 0, 255))])
    images = np.concatenate([clean, speck])
    assert not whole.run(clean)[1].any()  # the model finds nothing in the clean one
    second = _Recording(split.second)
    monkeypatch.setattr(split, "second", second)
    restored = split.run(images, predicted=False)[0]
    assert np.array_equal(restored, whole.run(images)[0]) and np.array_equal(restored[0], clean[0])
    assert second.sizes and all(s[0] == 1 and s[1] * s[2] < 256 * 320 / 2 for s in second.sizes)  # the speck's crops only
