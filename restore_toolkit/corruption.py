"""Synthetic corruption: random squares, rectangles, circles and ellipses drawn onto clean images.

`corrupt` returns the corrupted image and its mask, and the mask is *exactly* the set of pixels
whose value changed. It is computed as "drawn AND changed" (any channel differs from the clean
image) rather than by promising that every fill colour differs from what it covers: one flat
fill over a textured region almost always matches a few pixels by chance, and such a pixel is
not corrupted (the clean value is still there, compositing can keep it). Shapes may overlap;
the later one wins, and the mask still follows the final pixels.

Reproducibility: each sample draws from its own generator, `sample_rng(seed, index)`, so a
sample is the same whichever worker, process or epoch order produces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

SHAPES = ("square", "rectangle", "circle", "ellipse")
FILLS = ("random", "image", "mixed")


@dataclass
class CorruptionConfig:
    """What `corrupt` draws.

    Attributes:
        count: (min, max) number of shapes per image, inclusive.
        size: (min, max) extent of a shape (side, or diameter/axis length) as a fraction of the
            image's shorter side.
        shapes: the shapes to choose from, uniformly.
        fill: "random" a uniform random RGB colour per shape (the reference design's artifacts); "image" the
            colour of a random pixel of the same image (harder: colour alone gives the shape
            away less); "mixed" either, with equal odds per shape.
    """

    count: Tuple[int, int] = (1, 6)
    size: Tuple[float, float] = (0.05, 0.35)
    shapes: Tuple[str, ...] = SHAPES
    fill: str = "random"

    def __post_init__(self):
        self.count = tuple(self.count)
        self.size = tuple(self.size)
        self.shapes = tuple(self.shapes)
        if len(self.count) != 2 or not all(isinstance(c, int) for c in self.count) or not 0 <= self.count[0] <= self.count[1]:
            raise ValueError(f"corruption.count must be two integers 0 <= min <= max, got {list(self.count)}")
        if len(self.size) != 2 or not 0.0 < self.size[0] <= self.size[1] <= 1.0:
            raise ValueError(f"corruption.size must be two fractions 0 < min <= max <= 1, got {list(self.size)}")
        if not self.shapes or any(s not in SHAPES for s in self.shapes):
            raise ValueError(f"corruption.shapes must be a non-empty list from {list(SHAPES)}, got {list(self.shapes)}")
        if self.fill not in FILLS:
            raise ValueError(f"corruption.fill must be one of {list(FILLS)}, got {self.fill!r}")


def sample_rng(seed: int, *keys: int) -> np.random.Generator:
    """The generator of one sample, from (seed, index[, epoch, ...]): independent streams."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *(int(k) for k in keys)]))


def _shape_mask(shape: str, h: int, w: int, short: int, rng: np.random.Generator, cfg: CorruptionConfig):
    """Return (y0, x0, local bool mask) of one random shape, clipped to the image."""
    lo, hi = cfg.size

    def extent() -> float:
        return max(1.0, rng.uniform(lo, hi) * short)

    if shape == "square":
        eh = ew = extent()
    elif shape == "circle":
        eh = ew = extent()
    else:  # rectangle, ellipse: independent height and width
        eh, ew = extent(), extent()
    angle = rng.uniform(0.0, math.pi) if shape == "ellipse" else 0.0
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)  # centre; shapes may run off the border

    # Bounding box (a rotated ellipse fits in the circle of its longer semi-axis).
    r = max(eh, ew) / 2 if shape == "ellipse" else None
    ry, rx = (r, r) if r is not None else (eh / 2, ew / 2)
    y0, y1 = max(0, int(math.floor(cy - ry))), min(h, int(math.ceil(cy + ry)) + 1)
    x0, x1 = max(0, int(math.floor(cx - rx))), min(w, int(math.ceil(cx + rx)) + 1)
    # Pixel centres at +0.5, relative to the shape's centre.
    yy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - cy)[:, None]  # (bh, 1)
    xx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - cx)[None, :]  # (1, bw)
    if shape in ("square", "rectangle"):
        local = (np.abs(yy) <= eh / 2) & (np.abs(xx) <= ew / 2)
    else:
        c, s = math.cos(angle), math.sin(angle)
        u, v = xx * c + yy * s, -xx * s + yy * c
        local = (u / (ew / 2)) ** 2 + (v / (eh / 2)) ** 2 <= 1.0
    return y0, x0, local  # local: (bh, bw) bool


def corrupt(clean: np.ndarray, rng: np.random.Generator,
            cfg: CorruptionConfig | None = None) -> Tuple[np.ndarray, np.ndarray]:
    """Draw random shapes onto a copy of `clean`.

    Args:
        clean: uint8 (H, W, 3) RGB; not modified.
        rng: the sample's generator (see `sample_rng`).
        cfg: what to draw; `CorruptionConfig()` when None.

    Returns:
        corrupted uint8 (H, W, 3) and mask bool (H, W), True exactly where a pixel changed.
    """
    cfg = cfg or CorruptionConfig()
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[2] != 3:
        raise ValueError(f"corrupt expects uint8 (H, W, 3), got {clean.dtype} {clean.shape}")
    h, w = clean.shape[:2]
    short = min(h, w)
    out = clean.copy()
    n = int(rng.integers(cfg.count[0], cfg.count[1] + 1))
    for _ in range(n):
        shape = cfg.shapes[int(rng.integers(len(cfg.shapes)))]
        y0, x0, local = _shape_mask(shape, h, w, short, rng, cfg)
        fill_mode = cfg.fill if cfg.fill != "mixed" else ("random", "image")[int(rng.integers(2))]
        if fill_mode == "random":
            colour = rng.integers(0, 256, size=3, dtype=np.int64).astype(np.uint8)
        else:
            colour = clean[int(rng.integers(h)), int(rng.integers(w))].copy()
        region = out[y0 : y0 + local.shape[0], x0 : x0 + local.shape[1]]  # a view into `out`
        region[local] = colour
    mask = np.any(out != clean, axis=2)  # (H, W): drawn AND changed
    return out, mask
