"""The fill inside each mark, evened out: the network's fill averaged with a smooth fill.

The network's fill of a mark is sharp but noisy: far from the mark's edge it guesses texture
that is not there. A smooth fill is blurred but unbiased. Their errors are not the same errors,
so their average is closer to the photo than either. The smooth fill is the membrane through
the pixels around the mark (each filled pixel the mean of its 4 neighbours: Laplace's equation,
the interpolation diffusion inpainting converges to), solved coarse to fine (`smooth_fill`).
Given the true mask it is closer to the photo than OpenCV's Telea, the reference the reports
compare with, on every kind of selection file (1.1 dB on PNG crops, 0.5-0.8 on JPEG crops; the
second table of benchmarks/results/fill-sweep.md). It replaced a push-pull pyramid (2x2 means,
enlarged back), which it beats through the real `restore-run` by 0.2 to 0.8 dB on every kind of
selection crop and on whole photos, level at 12 Mpx (benchmarks/results/selection5-harmonic-fill.md
against selection5-phase10.md).

How much of each, and whether the pixels just around the mask are read, is chosen on the
selection photos by `benchmarks/fill_sweep.py` (benchmarks/results/fill-sweep.md): the network's
share `BLEND` 0.25 and the rim `CLEAR` 0 (every pixel outside the mask is read) gave the highest
mean gain over the network's fill alone, +0.82 dB over the seven kinds of painted file, and made
no file worse; lower and higher shares gained less. A rim of 1 or 2 (a JPEG's paint rings and
bleeds past the mark's edge) gained more on 12 Mpx photos only. The smooth fill never reads a
pocket the mark encloses (paint the mask missed inside a mark: on one whole selection photo such
pockets tinted the fill of a magenta mark and cost 2.4 dB until they were left out), nor a
photo's frame (`unread`, runtime/frame.py), which is not the photo: a shape painted across the
photo's edge into a white frame was filled half white (on the selection's framed crops at JPEG
90, +0.25 dB with the frame unread, benchmarks/results/selection12-band-same32.md against
selection12-band-fill-reads-frame.md). Only the mask's own pixels change; every pixel outside it
stays the input's, bit for bit.

Near the edge: in a file whose colours are exact at full resolution (lossless, or a JPEG whose
chroma is not subsampled), the masked pixels within `EXACT_EDGE` steps of an unmasked pixel take
the smooth fill alone: drawn through the photo's own pixels a few steps away, it is closer to the
photo there than the network's noisier fill. In a 4:2:0 file the paint's colour bleeds past the
mask and the smooth fill reads some of it, so the network's share helps near the edge too. On the
selection photos the best share by distance from the edge, fitted on the two fills, was below 0
within 16 pixels on PNG and 4:4:4 crops and 0.1-0.5 throughout on 4:2:0 ones; widths 6 to 16 gained
most on PNG crops, and 8 was taken: +0.36 dB on PNG crops and +0.05 on 4:4:4 crops through the real
`restore-run`, every other kind unchanged (benchmarks/results/selection5-exact-edge.md against
selection5-grow16.md).

Around a mark a smaller copy of a large photo drew (runtime/pyramid.py), whose edge is the copy's
enlarged and so up to about f / 2 pixels off, a rim of f // `COARSE_RIM` pixels is not read
(`coarse_rim`): paint the edge missed lies there. Chosen on the selection photos against uniform
rims of 1 to 6 pixels: as much gained at 12 Mpx (+0.82 dB through the real `restore-run`,
benchmarks/results/selection5-coarse-rim.md against selection5-exact-edge.md) with whole photos,
whose copies are 1/2, unchanged (uniform rims of 1 and 2 took 0.01 and 0.03 dB off them).

Each mark (an 8-connected region of the mask) is filled from a box around it, grown by half
its longer side (between `MIN_MARGIN` and `MAX_MARGIN` pixels) so the smooth fill sees the
mark's surroundings; a mark whose box would exceed `MAX_BOX` pixels keeps the network's fill
(the marks of a camera-size photo, filled from its smaller copies, runtime/pyramid.py), which
bounds the memory this step takes to a few bytes per pixel of such a box.

The mask of a JPEG with subsampled chroma, or of a lossy WebP, is grown by a pixel before the
compositing (`GROWN_SUBSAMPLING`, `grow_masks`; docs/restoring.md, "A JPEG's mask, grown").
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from runtime.pyramid import Added, label, marks_in_boxes

# Chroma subsampling (Pillow's codes: 1 = 4:2:2, 2 = 4:2:0; a lossy WebP counts as 4:2:0,
# `images.chroma_subsampling`) under which a file's mask is grown by a pixel before the
# compositing (`Restorer(grow_subsampled=...)`): there a mark's colour bleeds over its edge by a
# chroma pixel, and the mask stops short of it.
GROWN_SUBSAMPLING = (1, 2)
BLEND = 0.25  # the network's share of a masked pixel; the smooth fill has the rest
# In a file whose colours are exact at full resolution (not a JPEG or WebP with subsampled
# chroma), masked pixels this close to the mask's edge (8-connected steps from an unmasked pixel)
# take the smooth fill alone (`even_fill(..., edge=)`): see "Near the edge" in the docstring.
EXACT_EDGE = 8
CLEAR = 0  # pixels within this many of the mask (8-connected) are not read by the smooth fill
MIN_MARGIN, MAX_MARGIN = 8, 128
# A mark a smaller copy added (runtime/pyramid.py), enlarged f times, has its edge drawn at the
# copy's pixels, up to about f / 2 full-size pixels off: the smooth fill leaves a rim of f //
# COARSE_RIM pixels around it unread (`coarse_rim`), so it does not draw in paint the edge missed.
COARSE_RIM = 4
# The smooth fill's relaxation: sweeps at full size and at each coarser level, and the
# over-relaxation. The full-size level only settles detail (the coarse levels carried the rest),
# so it takes few sweeps: a plane through a 50x70 hole comes back within 0.2 of a level
# (tests/test_runtime_fill.py); with 16 at full size too, the fill of a 12 Mpx photo with five
# 400-pixel discs took 2.2 times as long, for a plane 0.04 of a level closer.
SWEEPS, COARSE_SWEEPS, OMEGA = 4, 16, 1.8
MAX_BOX = 1 << 20  # pixels of a mark's box and margin, above which the mark keeps the network's fill


def _sum_2x2(a: np.ndarray) -> np.ndarray:
    """(h, w[, c]) -> (ceil(h / 2), ceil(w / 2)[, c]): the sum of each 2x2 block (zeros beyond the edge)."""
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, [(0, h % 2), (0, w % 2)] + [(0, 0)] * (a.ndim - 2))
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]


def _twice(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """`a` enlarged 2x along `axis` (0 or 1), bilinearly between pixel centres (edges clamped),
    cut to `n`: each new pixel is 3/4 of the one it lies in and 1/4 of its neighbour on its side."""
    a = np.moveaxis(a, axis, 0)
    before = np.concatenate([a[:1], a[:-1]])  # each pixel's neighbour towards 0
    after = np.concatenate([a[1:], a[-1:]])  # and towards the end
    out = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
    out[0::2] = 0.75 * a + 0.25 * before
    out[1::2] = 0.75 * a + 0.25 * after
    return np.moveaxis(out[:n], 0, axis)


def _relax(u: np.ndarray, unknown: np.ndarray, sweeps: int) -> None:
    """`sweeps` red-black sweeps of Laplace's equation over the `unknown` (h, w) pixels of `u`
    (h, w, 3) float32, in place: each moves `OMEGA` times the way to the mean of its 4 neighbours
    (the image's edge repeated; over-relaxed, which converges many times faster than a plain
    average). Pixels of one colour of the checkerboard have no neighbour of their own colour, so
    each half-sweep updates all of them at once."""
    h, w = unknown.shape
    ys, xs = np.nonzero(unknown)
    colours = []
    for colour in (0, 1):
        y, x = ys[(ys + xs) % 2 == colour], xs[(ys + xs) % 2 == colour]
        around = (np.maximum(y - 1, 0) * w + x, np.minimum(y + 1, h - 1) * w + x,
                  y * w + np.maximum(x - 1, 0), y * w + np.minimum(x + 1, w - 1))
        colours.append((y * w + x, around))
    # One channel after another: gathering single floats is about twice as fast as pixels of 3.
    planes = np.moveaxis(u, -1, 0).reshape(3, h * w)  # (3, h*w), a copy
    for _ in range(sweeps):
        for here, (up, down, left, right) in colours:
            for p in planes:
                p[here] += OMEGA * (0.25 * (p[up] + p[down] + p[left] + p[right]) - p[here])
    u[...] = planes.reshape(3, h, w).transpose(1, 2, 0)


def smooth_fill(rgb: np.ndarray, known: np.ndarray, sweeps: int = SWEEPS) -> np.ndarray:
    """Membrane (harmonic) interpolation: (h, w, 3) values and (h, w) bool `known` -> (h, w, 3)
    float32 equal to `rgb` where known and, elsewhere, the smoothest surface through the known
    pixels around it (each unknown pixel the mean of its 4 neighbours: Laplace's equation).

    Solved coarse to fine: the image halved (each pixel the mean of the known pixels of its 2x2
    block, known if any of them is) until no hole is left, then each level starts from the
    coarser one's solution, enlarged bilinearly, and relaxes its unknown pixels (`sweeps` times at
    full size, `COARSE_SWEEPS` at each coarser level).
    The coarse levels carry the solution across a hole, the sweeps settle the detail, so the cost
    is a few passes over the hole's pixels whatever its size.
    """
    value = rgb.astype(np.float32)  # a copy: the known pixels stay exact
    if known.all():
        return value
    if not known.any():
        return np.zeros_like(value)  # nothing to fill from
    cover = known.astype(np.float32)
    total = _sum_2x2(cover)  # (h/2, w/2)
    coarse = smooth_fill(_sum_2x2(value * cover[..., None]) / np.maximum(total, 1e-6)[..., None], total > 0,
                         COARSE_SWEEPS)
    h, w = known.shape
    unknown = ~known
    value[unknown] = _twice(_twice(coarse, h, 0), w, 1)[unknown]
    _relax(value, unknown, sweeps)
    return value


def dilated(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """`mask` (h, w) bool grown by `steps` pixels (8-connected)."""
    h, w = mask.shape
    out = mask
    for _ in range(steps):
        p = np.pad(out, 1)
        grown = out.copy()
        for dy in range(3):
            for dx in range(3):
                grown |= p[dy:dy + h, dx:dx + w]
        out = grown
    return out


def _reachable(free: np.ndarray) -> np.ndarray:
    """The pixels of `free` (h, w) bool connected to the box's edge: a pocket the mark encloses
    (paint the mask missed inside it) is not read as the photo around it."""
    labels, _count = label(free)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    outside = np.zeros(labels.max() + 1, bool)
    outside[edge] = True
    outside[0] = False
    return outside[labels]


def coarse_rim(mark: np.ndarray, box: Tuple[int, int, int, int], coarse: Sequence[Added]) -> int:
    """The rim (pixels) the smooth fill leaves unread around a mark, (h, w) bool within `box`
    (y0, y1, x0, x1), from the smaller copies that added pixels of it: f // COARSE_RIM for the
    largest such factor f, 0 when none did."""
    y0, y1, x0, x1 = box
    rim = 0
    for (r0, r1, c0, c1), packed, f in coarse:
        a0, a1, b0, b1 = max(y0, r0), min(y1, r1), max(x0, c0), min(x1, c1)
        if f // COARSE_RIM <= rim or a0 >= a1 or b0 >= b1:
            continue
        take = np.unpackbits(packed[a0 - r0:a1 - r0], axis=1, count=c1 - c0).view(bool)[:, b0 - c0:b1 - c0]
        if (take & mark[a0 - y0:a1 - y0, b0 - x0:b1 - x0]).any():
            rim = f // COARSE_RIM
    return rim


def _margin(rows: int, columns: int) -> int:
    """How far around a mark of this box the smooth fill reads: half its longer side, within
    MIN_MARGIN..MAX_MARGIN."""
    return min(MAX_MARGIN, max(MIN_MARGIN, max(rows, columns) // 2))


def even_fill(rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, blend: float = BLEND,
              clear: int = CLEAR, smooth_only: Optional[np.ndarray] = None, edge: int = 0,
              coarse: Sequence[Added] = (), unread: Optional[np.ndarray] = None) -> np.ndarray:
    """Average the network's fill inside each mark with a smooth fill (module docstring).

    Args:
        rgb: the input (H, W, 3) uint8.
        restored: the restored image (H, W, 3) uint8, updated in place inside the mask.
        mask: (H, W) uint8 0/255 (or bool): the pixels that were restored.
        blend, clear: the network's share of a masked pixel, and how many pixels around the mask
            the smooth fill does not read (`BLEND`, `CLEAR`; benchmarks/fill_sweep.py tries others).
        smooth_only: (H, W) bool, masked pixels that take the smooth fill alone: they hold paint,
            not a network fill (a mark grown over its paint, runtime/paint_grow.py).
        edge: masked pixels within this many steps (8-connected) of an unmasked pixel take the
            smooth fill alone (`EXACT_EDGE` for a file whose colours are exact; 0: none). At most
            `MIN_MARGIN`, so every such unmasked pixel lies in the mark's box.
        coarse: what smaller copies added to the mask (`pyramid.add_coarse(..., added=)`): around
            a mark they added pixels to, a rim of `coarse_rim` pixels is not read either.
        unread: (H, W) bool, pixels the smooth fill never reads: a photo's frame, which is not
            the photo (runtime/frame.py).

    Returns:
        `restored`; pixels outside the mask are not touched.
    """
    if not 0 <= edge <= MIN_MARGIN:
        raise ValueError(f"edge must lie in 0..{MIN_MARGIN}, got {edge}")
    marked = mask > 0
    if not marked.any():
        return restored
    # A box of more than MAX_BOX pixels is too large to fill here: the network's fill stays.
    for (rows, cols), mine in marks_in_boxes(marked, _margin, MAX_BOX):
        y0, y1, x0, x1 = rows.start, rows.stop, cols.start, cols.stop
        # The masked pixels of this mark that take the smooth fill alone: grown paint, and those
        # within `edge` of an unmasked pixel (the box reaches MIN_MARGIN >= edge past the mark).
        alone = np.zeros(mine.shape, bool) if smooth_only is None else smooth_only[y0:y1, x0:x1] & mine
        if edge:
            alone |= mine & dilated(~marked[y0:y1, x0:x1], edge)
        if blend >= 1.0 and not alone.any():
            continue  # nothing in it takes the smooth fill
        # Not read: the mask and the rim a JPEG's paint reaches past it (grown within the box and
        # CLEAR pixels around it, so the box's edge sees marks just outside it), and pockets.
        c = max(clear, coarse_rim(mine, (y0, y1, x0, x1), coarse)) if coarse else clear
        g0, g1, h0, h1 = max(0, y0 - c), min(marked.shape[0], y1 + c), max(0, x0 - c), min(marked.shape[1], x1 + c)
        skip = dilated(marked[g0:g1, h0:h1], c)[y0 - g0:y1 - g0, x0 - h0:x1 - h0]
        if unread is not None:
            skip |= unread[y0:y1, x0:x1]
        known = _reachable(~skip)
        if not known.any():
            continue  # nothing around it to fill from
        smooth = smooth_fill(rgb[y0:y1, x0:x1], known)  # (h, w, 3) float32
        window = restored[y0:y1, x0:x1]
        # float32 throughout: a float64 share would double the transient arrays of a large mark.
        share = np.where(alone[mine], np.float32(0.0), np.float32(blend))[:, None]
        mixed = share * window[mine].astype(np.float32) + (1.0 - share) * smooth[mine]
        window[mine] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return restored


def grow_masks(tensors: Dict[str, np.ndarray], grow: Optional[Sequence[bool]],
               condition: Optional[str]) -> Optional[np.ndarray]:
    """Grow by one pixel (8-connected) the mask of each image of the batch whose `grow` is True
    (`GROWN_SUBSAMPLING`): `tensors["mask"]` (uint8 0/255, a graph's output) and, when a split
    graph's second half composites with a carried `condition` (bool), that too, so the second
    half restores the grown pixels itself. Returns the grown masks (N, H, W, 1) bool where some
    image grew, for a caller whose graph has already composited to take the grown pixels from
    its prediction (runtime/session.py, runtime/split.py); else None."""
    if grow is None or not any(grow) or not tensors["mask"].any():
        return None
    mask = tensors["mask"].copy()
    grown = mask > 0
    for j, g in enumerate(grow):
        if g:
            grown[j, ..., 0] = dilated(grown[j, ..., 0])
    mask[grown] = 255
    tensors["mask"] = mask
    if condition is not None:
        tensors[condition] = grown.astype(tensors[condition].dtype)
    return grown
