"""Large marks on large photos: the mask and the fill from the photo seen smaller as well.

The network sees 137 pixels around each pixel and was trained on 128-pixel crops, so it finds a
mark whole only when the mark is at most about that size. Painted on a 12 Mpx photo, shapes are
60 to 600 pixels across: the network finds their rims and takes their flat insides for the
photo (camera-size selection photos, JPEG 75 and 90: mask IoU 0.07-0.45). Seen at 1/4 or 1/8 of
the size, the same shapes are back in its range, and the downscale (an average of f x f pixels)
also smooths away the JPEG blocks that hide paint at full size.

So a large image is run again at each power-of-two scale 1/f whose short side lies between
`MIN_SIDE` and `MAX_SIDE` (a 12 Mpx photo: 1/4 and 1/8; a 640x427 photo: 1/2; crops: none),
and the results are merged finest first:

- a mark of a smaller copy (a connected region of its mask) that the finer passes already found
  whole (they cover `SEEN_WHOLE` of its inside) keeps their outline, drawn at finer pixels,
  which is better than the copy's f-pixel one; it adds only its core (`CORE`), where they left
  a hole;
- any other mark is enlarged (bilinearly, cut at half, so a round mark stays round) and added to
  the mask; its pixels that no finer pass found take the copy's restored image, enlarged
  bilinearly; the pixels a finer pass found keep that pass's fill.

Where nothing is found at any scale the image is untouched, byte for byte. An image in which
the full-size pass found nothing is not run again: a clean photo costs that pass alone, and on
the selection photos no painted file's result changed for it (a large mark shows its rim at
full size).

Chosen on the selection photos (chelsea, rocket; 12 Mpx and whole, JPEG 75 and 90, painted and
clean; runs of `restore-run`'s default path): at 1/16 of a 12 Mpx photo (187 pixels high) the
model flagged regions that are not paint; 1/2 found nothing that 1/4 and 1/8 did not, at a
quarter of the full pass's cost; 1/8 alone missed the outline of mid-size marks that 1/4 draws
(IoU 0.89 against 0.96 on one draw); a plain union of the scales' masks (no `SEEN_WHOLE`) drew
small marks with the coarse scale's steps (IoU 0.89-0.97 against 0.96-0.99). For a 12 Mpx
photo the two extra passes cost 1/16 + 1/64 of the full one, plus the merge.

A mark seen whole still adds its core (`CORE`, of its paint only): on a 12 Mpx selection JPEG
the full-size pass and the 1/4 copy left a stripe 60 to 115 pixels wide down the middle of a
430-pixel square, 8 % of it, so the 1/8 copy's mark counted as seen whole and was dropped, and
the grow over the square's paint (runtime/paint_grow.py) reaches 32 pixels into such a hole: a
patch of paint stayed at the square's top. With the core, +0.26 and +0.22 dB on the two 12 Mpx
selection photos that had such a hole, the other three unchanged (benchmarks/results/
selection20-rims.md against selection20-base.md, with the rims of runtime/paint_grow.py).
Without the paint test the core also filled the photo between two marks the copy saw as one
(a whole selection photo 0.07 dB further).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from runtime.image_pixels import PILLOW_BAND, in_bands

# The short side of a smaller copy: at least MIN_SIDE (smaller, the photo's own detail is gone
# and its flat regions look like paint), at most MAX_SIDE (larger, the copy costs much and finds
# little the full-size pass does not).
MIN_SIDE = 200
MAX_SIDE = 800
# A mark of a smaller copy whose inside the finer passes already cover this much of was seen whole
# by them: their outline, drawn at finer pixels, is kept rather than the copy's f-pixel steps.
SEEN_WHOLE = 0.9
# Such a mark still adds its core, this many copy pixels in from its outline: a hole the finer
# passes left inside it (a 12 Mpx JPEG's square found at 1/4 with a 60-pixel stripe missing down
# its middle, which the grow over its paint, runtime/paint_grow.py, reaches only 32 pixels into).
CORE = 2
# ... and adds there only the pixels of the paint the finer passes found of it (within PAINT_LEVELS
# of its median, which three quarters of those lie within FLAT_LEVELS of): where two marks lie close,
# the copy sees them as one, and the photo between them is a hole in what the finer passes found.
# The levels of runtime/paint_grow.py (TOLERANCE, FLAT), which grows a mark over its paint.
PAINT_LEVELS = 16
FLAT_LEVELS = 12
# A smaller copy's mark narrower than this (full-size pixels, either side of its box) is left to
# the full-size pass, which sees marks of that size whole: on the selection photos such marks
# were the smaller copies' false finds (a 17x10 patch of a rocket's white body, at 1/2).
MIN_MARK = 64

# (H, W, 3) uint8 -> restored (H, W, 3) uint8, mask (H, W) uint8 0/255
RunFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]
Box = Tuple[int, int, int, int]  # rows r0:r1, columns c0:c1
# What a smaller copy added to the mask: (region (y0, y1, x0, x1), the pixels it added there
# ((y1 - y0, x1 - x0) bool, packed along rows by np.packbits), the copy's factor f); see
# `add_coarse(..., added=)`.
Added = Tuple[Box, np.ndarray, int]


def coarse_factors(height: int, width: int) -> List[int]:
    """The downscale factors f (powers of two) at which an image of this size runs again, coarsest first."""
    short = min(height, width)
    factors = []
    f = 2
    while short // f >= MIN_SIDE:
        if short // f <= MAX_SIDE:
            factors.append(f)
        f *= 2
    return factors[::-1]


def shrink(rgb: np.ndarray, factor: int, band: int = PILLOW_BAND) -> np.ndarray:
    """(H, W, 3) -> (H // f, W // f, 3), each pixel the average of the f x f pixels it covers;
    a band of rows at a time (runtime/image_pixels.py, `in_bands`)."""
    h, w = rgb.shape[0] // factor * factor, rgb.shape[1] // factor * factor
    return in_bands(rgb[:h, :w], lambda img: img.reduce(factor), factor, band)


def _smaller_copies(rgb: np.ndarray, factors: List[int]) -> Dict[int, np.ndarray]:
    """{f: shrink(rgb, f)}, each from the next finer copy (one pass over the full image)."""
    copies, source, at = {}, rgb, 1
    for f in sorted(factors):
        copies[f] = shrink(source, f // at)
        source, at = copies[f], f
    return copies


def _enlarged_region(small: np.ndarray, height: int, width: int, region: Tuple[int, int, int, int]) -> np.ndarray:
    """The rows y0:y1 and columns x0:x1 of `small` (h, w[, 3]) enlarged bilinearly to (H, W[, 3]),
    without enlarging the rest (the same pixels as enlarging all of it and cutting them out)."""
    y0, y1, x0, x1 = region
    sy, sx = small.shape[0] / height, small.shape[1] / width
    box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    return np.asarray(Image.fromarray(small).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box))


def _region_of(box: Tuple[int, int, int, int], small: Tuple[int, int], height: int, width: int) -> Tuple[int, int, int, int]:
    """The full-size rows and columns (y0, y1, x0, x1) that a copy's box (rows r0:r1, columns c0:c1
    of a copy of shape `small`) can reach when enlarged bilinearly."""
    r0, r1, c0, c1 = box
    fy, fx = -(-height // small[0]), -(-width // small[1])  # full-size pixels per copy pixel, and a margin
    return (max(0, r0 * height // small[0] - fy), min(height, r1 * height // small[0] + fy),
            max(0, c0 * width // small[1] - fx), min(width, c1 * width // small[1] + fx))


def label(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    """Connected components (8-connected) of a bool (h, w) mask: (labels (h, w), count); 0 is
    the background; the labels are uint8, uint16 or int32, the narrowest that holds `count`
    (`label_with_boxes`)."""
    labels, count, _boxes = label_with_boxes(mask)
    return labels, count


def marks_in_boxes(marked: np.ndarray, margin: Union[int, Callable[[int, int], int]],
                   max_box: Optional[int] = None) -> Iterator[Tuple[Tuple[slice, slice], np.ndarray]]:
    """Each mark (8-connected) of `marked` ((H, W) bool) in its box grown by `margin` pixels on
    every side (within the picture): (the box as rows and columns, the mark in it, (h, w) bool).
    `margin` may be a function of the mark's own box (rows, columns); a box of more than
    `max_box` pixels with its margin is passed over.

    Each mark is drawn from its own row runs: no labels of the whole picture (1 to 4 bytes a
    pixel, the peak of the full-size steps around the graph that call this)."""
    (run_y, run_s, run_e, ids), count, boxes = _joined_runs(marked)
    order = np.argsort(ids, kind="stable")  # by mark: the runs of mark i are first[i - 1]:first[i]
    first = np.searchsorted(ids[order], np.arange(1, count + 2)).tolist()
    ys, starts, ends = (a[order].tolist() for a in (run_y, run_s, run_e))
    h, w = marked.shape
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:].tolist(), start=1):
        m = margin(r1 - r0, c1 - c0) if callable(margin) else margin
        y0, y1, x0, x1 = max(0, r0 - m), min(h, r1 + m), max(0, c0 - m), min(w, c1 + m)
        if max_box is not None and (y1 - y0) * (x1 - x0) > max_box:
            continue
        mark = np.zeros((y1 - y0, x1 - x0), bool)
        for k in range(first[i - 1], first[i]):
            mark[ys[k] - y0, starts[k] - x0:ends[k] - x0] = True
        yield (slice(y0, y1), slice(x0, x1)), mark


def mark_boxes(mask: np.ndarray) -> np.ndarray:
    """Each mark's (8-connected) box, as `label_with_boxes` gives them, without the labels."""
    return _joined_runs(mask)[2]


def label_with_boxes(mask: np.ndarray) -> Tuple[np.ndarray, int, np.ndarray]:
    """`label`, and each label's box from the same row runs: (count + 1, 4) int, rows r0:r1 and
    columns c0:c1 (row 0, the background, unused). The labels take one byte a pixel for up to
    255 marks, two for up to 65,535: a step that reads one mark at a time takes
    `marks_in_boxes`, which holds none."""
    (run_y, run_s, run_e, ids), count, boxes = _joined_runs(mask)
    labels = np.zeros(mask.shape, np.uint8 if count < 256 else np.uint16 if count < 65536 else np.int32)
    for y, s0, e0, i in zip(run_y.tolist(), run_s.tolist(), run_e.tolist(), ids.tolist()):
        labels[y, s0:e0] = i
    return labels, count, boxes


def _joined_runs(mask: np.ndarray) -> Tuple[Tuple[np.ndarray, ...], int, np.ndarray]:
    """The row runs of a bool (h, w) mask, each with its mark (8-connected): ((row, start, end
    exclusive, mark 1..count), each (n,)), count, and each mark's box as in `label_with_boxes`.

    Row runs (found a band of rows at a time, so that the search costs a few MB whatever the
    mask's size) are joined by union-find with the runs of the row above that touch them,
    diagonals included: a 12 Mpx mask has a few ten thousand runs.
    """
    h, w = mask.shape
    run_y, run_s, run_e = _row_runs(mask)  # row-major: by row, then left to right
    first = np.searchsorted(run_y, np.arange(h + 1))  # runs of row y: first[y]:first[y + 1]
    starts, ends = run_s.tolist(), run_e.tolist()
    parent = list(range(len(starts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for y in np.flatnonzero(first[1:] - first[:-1]).tolist():  # rows that have runs
        above = range(first[y - 1], first[y]) if y > 0 else range(0)
        k = above.start  # the first run above that may still touch this row's next runs
        for r in range(first[y], first[y + 1]):
            while k < above.stop and ends[k] < starts[r]:  # ends left of this run, diagonal too
                k += 1
            j = k
            while j < above.stop and starts[j] <= ends[r]:  # touching it, diagonals included
                a, b = root(r), root(j)
                parent[max(a, b)] = min(a, b)
                j += 1
    roots = np.array([root(r) for r in range(len(starts))], np.int64)
    _unique, ids = np.unique(roots, return_inverse=True)  # numbered by each mark's first run
    ids = ids.astype(np.int32) + 1
    count = int(ids.max()) if ids.size else 0
    boxes = np.zeros((count + 1, 4), np.int64)
    boxes[:, 0], boxes[:, 2] = h, w  # minima start high
    np.minimum.at(boxes[:, 0], ids, run_y)
    np.maximum.at(boxes[:, 1], ids, run_y + 1)
    np.minimum.at(boxes[:, 2], ids, run_s)
    np.maximum.at(boxes[:, 3], ids, run_e)
    return (run_y, run_s, run_e, ids), count, boxes


def _row_runs(mask: np.ndarray, band: int = 256) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True in each row of a bool (h, w) mask: (row, start, end exclusive), each (n,)
    int64, row-major; found `band` rows at a time."""
    mask = np.asarray(mask, bool)
    ys, starts, ends = [], [], []
    for y0 in range(0, mask.shape[0], band):
        rows = np.pad(mask[y0:y0 + band], ((0, 0), (1, 1))).view(np.int8)
        edges = np.diff(rows, axis=1)  # +1 where a run starts, -1 one past where it ends
        y, s = np.nonzero(edges == 1)
        ys.append(y + y0)
        starts.append(s)
        ends.append(np.nonzero(edges == -1)[1])
    empty = np.zeros(0, np.int64)
    return tuple(np.concatenate(parts) if parts else empty for parts in (ys, starts, ends))


def _eroded(mask: np.ndarray) -> np.ndarray:
    """`mask` (h, w) bool without the pixels that have a background neighbour (3x3)."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    out = mask.copy()
    for dy in range(3):
        for dx in range(3):
            out &= padded[dy:dy + h, dx:dx + w]
    return out


def _inside_covered(labels: np.ndarray, count: int, covered: np.ndarray) -> np.ndarray:
    """(count + 1,): the share of each mark's inside (its pixels less its 3x3 rim; all its pixels
    when it has no inside) that `covered` (h, w, values 0 to 1) covers."""
    marked = labels > 0
    inside = _eroded(marked)
    has_inside = np.bincount(labels[inside], minlength=count + 1) > 0
    use = inside | marked & ~has_inside[labels]
    pixels = np.bincount(labels[use], minlength=count + 1)
    return np.bincount(labels[use], weights=covered[use], minlength=count + 1) / np.maximum(pixels, 1)


def _marks_to_add(small_mask: np.ndarray, known: np.ndarray) -> Tuple[np.ndarray, List[Tuple[Box, bool]]]:
    """The pixels of a smaller copy's mask (h, w) bool to add to the finer passes' (`known`, (H, W)),
    and for each mark they belong to its box (r0, r1, c0, c1) and whether it adds only its core.

    A mark the finer passes found whole (they cover `SEEN_WHOLE` of its inside) adds only its
    core, `CORE` copy pixels in from its outline, and there only its paint (`add_coarse`): the
    finer outline is kept, and a hole they left inside it is filled. A mark under `MIN_MARK`
    full-size pixels on either side of its box adds nothing (the full-size pass sees such a mark
    whole, and judged it). Any other adds all of itself.
    """
    labels, count, boxes = label_with_boxes(small_mask)
    if count == 0:
        return small_mask, []
    h, w = small_mask.shape
    covered = np.asarray(Image.fromarray(known.astype(np.uint8) * 255).resize((w, h), Image.Resampling.BOX)) / 255.0
    full_size = np.minimum((boxes[:, 1] - boxes[:, 0]) * known.shape[0] / h, (boxes[:, 3] - boxes[:, 2]) * known.shape[1] / w)
    large = full_size >= MIN_MARK
    whole = _inside_covered(labels, count, covered) >= SEEN_WHOLE
    keep, core = large & ~whole, large & whole
    keep[0] = core[0] = False
    marks = keep[labels]
    if core.any():  # the marks never touch (8-connected): eroding them together erodes each alone
        inner = small_mask
        for _ in range(CORE):
            inner = _eroded(inner)
        marks |= core[labels] & inner
    return marks, [(tuple(int(v) for v in boxes[i]), bool(core[i])) for i in np.flatnonzero(keep | core)]


def _its_paint(rgb: np.ndarray, found: np.ndarray) -> Optional[np.ndarray]:
    """(h, w) bool: the pixels of `rgb` (h, w, 3) within `PAINT_LEVELS` of the paint of what the
    finer passes `found` ((h, w) bool) of one mark; None where that is not one flat colour (three
    quarters of it within `FLAT_LEVELS` of its median), or nothing was found."""
    pixels = rgb[found]
    if len(pixels) == 0:
        return None
    paint = np.median(pixels, axis=0)
    if np.percentile(np.abs(pixels.astype(np.float32) - paint).max(axis=1), 75) > FLAT_LEVELS:
        return None
    return np.abs(rgb.astype(np.float32) - paint).max(axis=-1) <= PAINT_LEVELS


def add_coarse(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, run: RunFn,
               added: Optional[List[Added]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Add what smaller copies of `rgb` find to a full-size pass's result.

    Args:
        rgb: the image (H, W, 3) uint8.
        restored, mask: the full-size pass's outputs, (H, W, 3) uint8 and (H, W) uint8 0/255;
            `restored` is updated in place.
        run: runs the model on a smaller copy (itself without smaller copies).
        added: if given, each enlarged mark's region, the pixels it added and its copy's factor
            are appended (the even fill reads less of the rim around such a mark, whose edge is
            drawn at the copy's coarser pixels: runtime/fill.py, `coarse_rim`).

    Returns:
        (restored, mask): the image with the smaller copies' fill where only they found
        something, and the union of what every pass kept (H, W) uint8 0/255.
    """
    h, w = rgb.shape[:2]
    factors = coarse_factors(h, w)
    if not factors or not mask.any():
        return restored, mask
    copies = _smaller_copies(rgb, factors)
    found = {f: run(copies.pop(f)) for f in factors}  # f -> (restored (h, w, 3), mask (h, w) 0/255)
    known = mask > 0  # (H, W): what the full-size pass and the finer copies kept
    merged = mask.copy()
    for f in sorted(factors):  # finest first: a mark a finer pass saw whole keeps that pass's outline
        small_restored, small_mask = found.pop(f)
        marks, boxes = _marks_to_add(small_mask > 0, known)
        marks = marks.astype(np.uint8) * 255
        copy_mask = np.where(small_mask > 0, np.uint8(255), np.uint8(0))  # all the copy found: a core's mark whole
        for box, core in boxes:  # only the rows and columns each mark reaches are enlarged
            y0, y1, x0, x1 = region = _region_of(box, marks.shape, h, w)
            # Bilinearly and cut at half, so a round mark's edge is round, not f-pixel steps.
            take = _enlarged_region(marks, h, w, region) >= 128  # (y1 - y0, x1 - x0)
            if core:  # a hole in what the finer passes found: only the paint they found
                seen = known[y0:y1, x0:x1] & (_enlarged_region(copy_mask, h, w, region) >= 128)
                paint = _its_paint(rgb[y0:y1, x0:x1], seen)
                take = take & paint if paint is not None else np.zeros_like(take)
            take &= ~known[y0:y1, x0:x1]  # a finer pass's own pixels stay
            filled = _enlarged_region(small_restored, h, w, region)  # (y1 - y0, x1 - x0, 3)
            np.copyto(restored[y0:y1, x0:x1], filled, where=take[..., None])
            np.copyto(merged[y0:y1, x0:x1], 255, where=take)
            known[y0:y1, x0:x1] |= take
            if added is not None and take.any():  # kept cut to the pixels added, 8 to a byte, till the fill
                rows, cols = np.flatnonzero(take.any(axis=1)), np.flatnonzero(take.any(axis=0))
                r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                added.append(((y0 + r0, y0 + r1, x0 + c0, x0 + c1), np.packbits(take[r0:r1, c0:c1], axis=1), f))
    return restored, merged
