"""Large marks on large photos: smaller copies of the image find what the full-size pass cannot see whole."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from restore_core.heldout import heldout_photos, iou
from runtime.pyramid import (
    CORE,
    MAX_SIDE,
    MIN_SIDE,
    add_coarse,
    coarse_factors,
    label,
    label_with_boxes,
    mark_boxes,
    marks_in_boxes,
    shrink,
)


@pytest.mark.parametrize("shape, factors", [
    ((3000, 4000), [8, 4]),     # 12 Mpx: 375 and 750 pixels high
    ((4330, 5774), [16, 8]),    # 25 Mpx
    ((866, 1155), [4, 2]),      # 1 Mpx
    ((427, 640), [2]),          # a small photo: 213 high at 1/2
    ((300, 451), []),           # 150 at 1/2: too small to tell paint from the photo
    ((320, 320), []),           # crops
    ((2000, 20000), [8, 4]),    # a panorama: by its short side
])
def test_scales_keep_the_short_side_between_the_bounds(shape, factors):
    assert coarse_factors(*shape) == factors
    assert all(MIN_SIDE <= min(shape) // f <= MAX_SIDE for f in factors)


def _fake_run(found: dict, calls: list):
    """A model stand-in: at each scale it "finds" the rectangle given for that scale (in full-size
    pixels) and restores it to a flat colour of its own."""
    def run(small):
        h, w = small.shape[:2]
        f = {2: 2, 4: 4}[round(1000 / h)]
        calls.append(f)
        mask = np.zeros((h, w), np.uint8)
        restored = small.copy()
        if f in found:
            y0, y1, x0, x1 = (v // f for v in found[f])
            mask[y0:y1, x0:x1] = 255
            restored[y0:y1, x0:x1] = (10 * f, 0, 0)
        return restored, mask
    return run


@pytest.mark.parametrize("height, width", [(1000, 1333), (203, 307), (41, 9)])
def test_shrink_in_bands_is_pillows_box_average_of_the_whole(height, width):
    """A band of rows at a time, cut to whole blocks (a multiple of the factor): the same pixels as
    Pillow's reduce of the whole picture, its last rows and columns that fill no block dropped."""
    rgb = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for factor in (2, 3, 4, 8):
        h, w = height // factor * factor, width // factor * factor
        whole = np.asarray(Image.fromarray(rgb[:h, :w]).reduce(factor))
        for band in (1, 7, 64, 1024):
            assert np.array_equal(shrink(rgb, factor, band), whole), (factor, band)


def test_only_what_smaller_copies_alone_found_takes_their_fill():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    restored = rgb.copy()
    mask = np.zeros((1000, 1200), np.uint8)
    restored[100:200, 100:200] = (1, 2, 3)  # the full-size pass found and filled this
    mask[100:200, 100:200] = 255
    calls = []
    run = _fake_run({4: (0, 400, 0, 400), 2: (300, 600, 300, 600)}, calls)
    before = restored.copy()
    out, merged = add_coarse(rgb, restored, mask, run)
    assert calls == [4, 2]  # coarsest first
    assert (out[100:200, 100:200] == (1, 2, 3)).all()  # the full-size pass's own pixels stay
    assert (out[20:90, 20:90] == (40, 0, 0)).all()  # found at 1/4 only
    assert (out[320:580, 320:580] == (20, 0, 0)).all()  # found at 1/2 (and at 1/4): the finer copy wins
    assert np.array_equal(out[700:, 700:], rgb[700:, 700:])  # nothing found: the input, bit for bit
    assert merged[:400, :400].all() and merged[300:600, 300:600].all()
    assert not merged[650:, :].any() and not merged[:, 650:].any()
    # What each copy added, with its factor, for the even fill (runtime/fill.py, coarse_rim).
    added = []
    again, merged_again = add_coarse(rgb, before, mask, run, added)
    assert np.array_equal(merged_again, merged) and np.array_equal(again, out)
    assert sorted(f for _, _, f in added) == [2, 4]
    drawn = np.zeros(mask.shape, bool)
    for (y0, y1, x0, x1), packed, _f in added:
        take = np.unpackbits(packed, axis=1, count=x1 - x0).view(bool)
        assert take.shape == (y1 - y0, x1 - x0) and take.any()
        assert not (drawn[y0:y1, x0:x1] & take).any()  # each pixel added once, by one copy
        drawn[y0:y1, x0:x1] |= take
    assert np.array_equal(drawn, (merged > 0) & (mask == 0))  # exactly what the copies added


def test_nothing_found_leaves_the_image_and_mask_as_they_were():
    rgb = np.random.default_rng(1).integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    restored, mask = rgb.copy(), np.zeros((1000, 1200), np.uint8)
    mask[10:20, 10:20] = 255  # something found at full size: the smaller copies run, and find nothing
    calls = []
    out, merged = add_coarse(rgb, restored, mask, _fake_run({}, calls))
    assert calls == [4, 2] and np.array_equal(out, rgb) and np.array_equal(merged, mask)
    # Nothing found at full size (a clean photo): the smaller copies are not run at all.
    out, merged = add_coarse(rgb, rgb.copy(), np.zeros((1000, 1200), np.uint8), _fake_run({2: (0, 500, 0, 500)}, calls))
    assert calls == [4, 2] and np.array_equal(out, rgb) and not merged.any()
    small = rgb[:320, :320]  # too small for smaller copies: the model is not run again
    out, merged = add_coarse(small, small.copy(), mask[:320, :320].copy(), _fake_run({}, calls))
    assert calls == [4, 2]


def _bfs_label(mask):
    """A plain flood fill, 8-connected: the reference `label` must agree with."""
    labels = np.zeros(mask.shape, np.int32)
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        stack = [(y, x)]
        labels[y, x] = count
        while stack:
            cy, cx = stack.pop()
            for ny in range(max(0, cy - 1), min(mask.shape[0], cy + 2)):
                for nx in range(max(0, cx - 1), min(mask.shape[1], cx + 2)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        stack.append((ny, nx))
    return labels, count


@pytest.mark.parametrize("seed", range(8))
def test_label_finds_the_8_connected_marks(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(tuple(rng.integers(1, 40, 2))) < rng.random()
    got, count = label(mask)
    want, want_count = _bfs_label(mask)
    assert count == want_count and ((got > 0) == mask).all()
    assert len(set(zip(got[mask].tolist(), want[mask].tolist()))) == count  # the same partition
    _labels, _count, boxes = label_with_boxes(mask)
    for i in range(1, count + 1):  # each mark's box: the rows and columns its pixels span
        ys, xs = np.nonzero(got == i)
        assert tuple(boxes[i]) == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    diagonal = np.eye(5, dtype=bool)  # touching at corners only: one mark
    assert label(diagonal)[1] == 1 and label(np.zeros((3, 3), bool))[1] == 0


def test_each_mark_in_its_box_with_a_margin_within_the_picture():
    mask = np.zeros((20, 30), bool)
    mask[1:4, 2:5] = True  # near the top-left corner: its margin is cut there
    mask[10:12, 20:29] = True
    mask[11, 12] = True  # a single pixel, its box (1, 1) grown by 3 on each side
    got = list(marks_in_boxes(mask, 3))
    assert [box for box, _ in got] == [(slice(0, 7), slice(0, 8)), (slice(7, 15), slice(17, 30)),
                                       (slice(8, 15), slice(9, 16))]
    for box, mark in got:  # each mark alone, the whole of it, in its box
        assert mark.shape == mask[box].shape and (mark <= mask[box]).all()
    assert sum(int(m.sum()) for _, m in got) == mask.sum() and [int(m.sum()) for _, m in got] == [9, 18, 1]
    assert list(marks_in_boxes(np.zeros((4, 4), bool), 2)) == []


@pytest.mark.parametrize("seed", range(6))
def test_marks_drawn_from_their_runs_are_the_labels_of_each(seed):
    """Each mark drawn from its row runs (no labels of the whole picture) is what the labels say of
    it in its box; a margin may be a function of the mark's box, and a box over `max_box` pixels
    is passed over; `mark_boxes` are the labels' boxes."""
    rng = np.random.default_rng(seed)
    mask = rng.random(tuple(rng.integers(1, 60, 2))) < rng.random() * 0.7
    labels, count, boxes = label_with_boxes(mask)
    assert np.array_equal(mark_boxes(mask), boxes)
    got = list(marks_in_boxes(mask, lambda rows, cols: max(rows, cols) // 2, max_box=150))
    want = []
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:].tolist(), start=1):
        m = max(r1 - r0, c1 - c0) // 2
        box = (slice(max(0, r0 - m), min(mask.shape[0], r1 + m)), slice(max(0, c0 - m), min(mask.shape[1], c1 + m)))
        if (box[0].stop - box[0].start) * (box[1].stop - box[1].start) <= 150:
            want.append((box, labels[box] == i))
    assert [b for b, _ in got] == [b for b, _ in want]
    assert all(np.array_equal(g, w) for (_, g), (_, w) in zip(got, want))


def test_a_mark_the_full_size_pass_found_whole_keeps_its_outline():
    rgb = np.random.default_rng(2).integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    restored, mask = rgb.copy(), np.zeros((1000, 1200), np.uint8)
    mask[402:502, 402:502] = 255  # found whole at full size: a 100-pixel square
    restored[402:502, 402:502] = (1, 2, 3)
    ring = np.zeros((1000, 1200), bool)  # a large disc of which the full-size pass found the rim
    yy, xx = np.mgrid[:1000, :1200]
    r2 = (yy - 700) ** 2 + (xx - 800) ** 2
    ring[(r2 <= 200 ** 2) & (r2 >= 180 ** 2)] = True
    mask[ring] = 255
    # Both copies find the square, with their coarser outlines (104 pixels).
    out, merged = add_coarse(rgb, restored, mask.copy(), _fake_run({4: (400, 504, 400, 504), 2: (400, 504, 400, 504)}, []))
    assert np.array_equal(merged > 0, mask > 0)  # the square was seen whole: its outline stays
    assert np.array_equal(out, restored)
    # A small mark that only a smaller copy finds is left to the full-size pass, which judged it.
    out, merged = add_coarse(rgb, restored, mask.copy(), _fake_run({2: (100, 140, 100, 140)}, []))
    assert np.array_equal(merged > 0, mask > 0) and np.array_equal(out, restored)

    def disc_run(small):  # finds the disc whole at each scale
        h, w = small.shape[:2]
        f = round(1000 / h)
        yy, xx = np.mgrid[:h, :w]
        found = ((yy - 700 / f) ** 2 + (xx - 800 / f) ** 2 <= (200 / f) ** 2)
        filled = small.copy()
        filled[found] = (9, 9, 9)
        return filled, found.astype(np.uint8) * 255

    out, merged = add_coarse(rgb, restored.copy(), mask.copy(), disc_run)
    inside = r2 <= 170 ** 2
    assert merged[inside].all() and (out[inside] == (9, 9, 9)).all()  # the disc's inside, from a copy
    assert np.array_equal(out[ring], restored[ring])  # its rim keeps the full-size pass's fill
    assert np.array_equal(merged[402:502, 402:502], mask[402:502, 402:502])


def test_a_hole_the_finer_passes_left_in_a_mark_seen_whole_is_filled_from_its_core():
    """A 400-pixel square of paint found at full size but for a 24-pixel stripe down its middle
    (over 90 % of it, so seen whole): the copies fill the stripe where it lies `CORE` copy pixels
    inside their outline, and add nothing past the full-size outline. Where the stripe is photo
    (two marks close together, which the copies see as one), nothing is added."""
    rgb = np.random.default_rng(3).integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    rgb[300:700, 400:800] = (200, 40, 160)
    restored, mask = rgb.copy(), np.zeros((1000, 1200), np.uint8)
    mask[300:700, 400:800] = 255
    mask[300:700, 588:612] = 0  # the stripe the full-size pass missed, from edge to edge
    out, merged = add_coarse(rgb, restored.copy(), mask.copy(), _fake_run({4: (300, 700, 400, 800), 2: (300, 700, 400, 800)}, []))
    added = (merged > 0) & (mask == 0)
    assert added[300 + 2 * CORE + 2:700 - 2 * CORE - 2, 588:612].all()  # the stripe, less the copy's core margin at f = 2
    assert not added[:300].any() and not added[700:].any()  # nothing past the full-size outline
    assert not added[:, :588].any() and not added[:, 612:].any()
    assert (out[added] == (20, 0, 0)).all()  # the finest copy's fill (f = 2) where it added
    assert np.array_equal(out[mask > 0], restored[mask > 0])  # what the full-size pass found keeps its fill
    photo = rgb.copy()
    photo[300:700, 588:612] = np.random.default_rng(4).integers(60, 141, (400, 24, 3), dtype=np.uint8)  # far from the paint
    _out, merged = add_coarse(photo, photo.copy(), mask.copy(), _fake_run({4: (300, 700, 400, 800), 2: (300, 700, 400, 800)}, []))
    assert np.array_equal(merged, mask)
    # With no hole, a mark seen whole adds nothing (its core lies within what was found).
    whole = np.zeros_like(mask)
    whole[300:700, 400:800] = 255
    _out, merged = add_coarse(rgb, rgb.copy(), whole.copy(), _fake_run({4: (300, 700, 400, 800), 2: (300, 700, 400, 800)}, []))
    assert np.array_equal(merged, whole)


def _camera_like(h: int, w: int, quality: int = 90):
    """A selection photo scaled up, with two large discs painted on it, saved as a JPEG."""
    photo = heldout_photos("selection")["chelsea"]
    clean = np.asarray(Image.fromarray(photo).resize((w, h), Image.Resampling.LANCZOS))
    painted = clean.copy()
    yy, xx = np.mgrid[:h, :w]
    truth = np.zeros((h, w), bool)
    for cy, cx, r, colour in ((h // 3, w // 3, h // 5, (200, 40, 220)), (2 * h // 3, 3 * w // 4, h // 6, (30, 90, 40))):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        painted[disc] = colour
        truth |= disc
    buf = io.BytesIO()
    Image.fromarray(painted).save(buf, "JPEG", quality=quality)
    return buf.getvalue(), truth


@pytest.fixture(scope="module")
def restorers():
    from runtime import Restorer

    return Restorer(device="cpu"), Restorer(device="cpu", coarse=False)


def test_large_discs_on_a_large_jpeg_are_found_whole(restorers):
    with_coarse, full_size_only = restorers
    data, truth = _camera_like(1200, 1600)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    restored, mask, _, _ = with_coarse.restore_rgb(rgb, predicted=False)
    alone, alone_mask, _, _ = full_size_only.restore_rgb(rgb, predicted=False)
    # At its own size the model finds the discs' rims and a part of them (IoU 0.51); at 1/2 to 1/8
    # it finds them whole.
    assert iou(alone_mask > 0, truth) < 0.6 < 0.85 < iou(mask > 0, truth)
    # Outside what was found the file's pixels are untouched; inside, the paint is gone.
    assert np.array_equal(restored[mask == 0], rgb[mask == 0])
    inside = truth & (mask > 0)
    assert np.abs(restored[inside].astype(int) - (200, 40, 220)).sum(axis=1).min() > 0
    # The same through tiles: the smaller copies are added to a tiled full-size pass too.
    tiled, tiled_mask, _, tiles = with_coarse.restore_rgb(rgb, tile=512, predicted=False)
    assert tiles > 1 and np.array_equal(tiled_mask, mask) and np.array_equal(tiled, restored)


def test_restore_run_adds_smaller_copies_in_batches_and_no_coarse_turns_them_off(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    data, truth = _camera_like(900, 1200)
    for name in ("a.jpg", "b.jpg"):  # one size: restored together, as one batch
        (src / name).write_bytes(data)
    shares = {}
    for flag in ((), ("--no-coarse",)):
        out = tmp_path / ("out" + "".join(flag))
        # Without the paint grow, which also reaches into large marks found in part at full size.
        cmd = [sys.executable, "-m", "runtime.cli", str(src), str(out), "--save-mask", "--quiet", "--no-paint-grow", *flag]
        subprocess.run(cmd, check=True, capture_output=True)
        masks = [np.asarray(Image.open(out / "masks" / f"{n}.png")) > 0 for n in ("a.jpg", "b.jpg")]
        assert np.array_equal(masks[0], masks[1])
        shares[flag] = iou(masks[0].reshape(truth.shape), truth)
    assert shares[("--no-coarse",)] < 0.5 < 0.85 < shares[()]
