"""File degradation after painting: what happens to a painted photo on its way to a user's disk.

A user's photo is painted first and saved afterwards, so the paint is compressed together with
the photo: its edge rings, its colour bleeds across the edge through chroma subsampling and its
fill carries block noise. `degrade_pair` plays that chain on a training sample. One random chain
(resize, sensor noise, JPEG once or twice or lossy WebP) is drawn per sample and applied, with
the same random numbers, to the painted image and to the clean image, so the pair differs only
by what the paint did.

The target of the mask head is then the *damage*: every pixel whose value in the saved file
differs from what the same file would hold had nothing been painted by more than
`DegradeConfig.tolerance` levels in some channel, together with the painted shapes themselves.
Ringing and colour bleed strong enough to see are therefore inside the mask and get filled,
while the faint tail of the ringing (at most `tolerance` levels) stays as it is, because a
network's fill is not closer than that to the truth. The image target is the clean image after
the same chain: outside the mask the output is the input file's pixels, so inside it the best
answer is the file the user would have had without the paint. MODEL_CARD.md gives the figures
that chose the tolerance.

Every step draws from the sample's own generator, and only when the step is on, so a sample is
reproducible from (seed, stream, epoch, index) as everywhere else in `data.py`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from PIL import Image

# Pillow's `subsampling` codes: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 (cameras and most software).
SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
_RESAMPLE = (Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX)


@dataclass
class DegradeConfig:
    """The odds and ranges of each step of the chain.

    Attributes:
        resize: odds that the painted image is scaled down (by `scale`) before it is saved.
        scale: (min, max) of that scale factor.
        noise: odds of sensor noise (Gaussian, sigma `sigma` levels, stronger in the dark).
        sigma: (min, max) noise level in 8-bit levels.
        webp: odds that the file is lossy WebP instead of JPEG.
        quality: (min, max) JPEG or WebP quality, inclusive.
        subsampling: odds of 4:2:0, 4:2:2 and 4:4:4 for a JPEG, in that order.
        twice: odds that a JPEG is saved a second time at another quality (an edited photo).
        tolerance: levels above which a changed pixel counts as damage (see the module doc).
    """

    resize: float = 0.25
    scale: Tuple[float, float] = (0.5, 0.95)
    noise: float = 0.3
    sigma: Tuple[float, float] = (0.5, 4.0)
    webp: float = 0.15
    quality: Tuple[int, int] = (50, 100)
    subsampling: Tuple[float, float, float] = (0.6, 0.15, 0.25)
    twice: float = 0.2
    tolerance: int = 8

    def __post_init__(self):
        for name in ("resize", "noise", "webp", "twice"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"degrade.{name} must lie in [0, 1], got {getattr(self, name)}")
        self.scale, self.sigma = tuple(self.scale), tuple(self.sigma)
        self.quality, self.subsampling = tuple(self.quality), tuple(self.subsampling)
        if not 0.0 < self.scale[0] <= self.scale[1] <= 1.0:
            raise ValueError(f"degrade.scale must be 0 < min <= max <= 1, got {list(self.scale)}")
        if not 1 <= self.quality[0] <= self.quality[1] <= 100:
            raise ValueError(f"degrade.quality must be 1 <= min <= max <= 100, got {list(self.quality)}")
        if len(self.subsampling) != 3 or min(self.subsampling) < 0 or sum(self.subsampling) <= 0:
            raise ValueError(f"degrade.subsampling must be three non-negative odds, got {list(self.subsampling)}")
        if not 0 <= self.tolerance <= 255:
            raise ValueError(f"degrade.tolerance must lie in [0, 255], got {self.tolerance}")


def encode_jpeg(img: np.ndarray, quality: int, subsampling: str = "4:2:0") -> bytes:
    """The bytes of `img` (uint8 (H, W, 3)) saved as a baseline JPEG, as cameras and editors save it."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling])
    return buf.getvalue()


def encode_webp(img: np.ndarray, quality: int) -> bytes:
    """The bytes of `img` saved as lossy WebP."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="WEBP", quality=int(quality), method=4)
    return buf.getvalue()


def encode_file(img: np.ndarray, container: str, quality: Optional[int] = None, subsampling: Optional[str] = None) -> bytes:
    """`img` saved as "png", "jpeg" (at `quality`, `subsampling`) or lossy "webp" (at `quality`)."""
    if container == "jpeg":
        return encode_jpeg(img, quality, subsampling)
    if container == "webp":
        return encode_webp(img, quality)
    if container != "png":
        raise ValueError(f"unknown container {container!r}")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """uint8 (H, W, 3) RGB pixels of an encoded image."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def damage_mask(painted: np.ndarray, clean: np.ndarray, shapes: np.ndarray, tolerance: int) -> np.ndarray:
    """The mask target: the painted shapes and every pixel that differs by more than `tolerance`.

    Args:
        painted, clean: uint8 (H, W, 3), both after the same degradation.
        shapes: bool (H, W), where paint landed (after any resize).
        tolerance: levels of difference, in any channel, that still count as unchanged.

    Returns:
        bool (H, W).
    """
    diff = np.abs(painted.astype(np.int16) - clean.astype(np.int16)).max(axis=2)  # (H, W)
    return shapes | (diff > tolerance)


def _resize(img: np.ndarray, size: int, resample: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), resample))


def source_side(size: int, rng: np.random.Generator, cfg: DegradeConfig) -> int:
    """The side to paint at so that the chain's resize (when drawn) ends at `size`.

    Drawn before the sample is cut, so `degrade_pair` must be given the same generator next.
    """
    if cfg.resize and rng.random() < cfg.resize:
        return int(round(size / rng.uniform(*cfg.scale)))
    return size


def degrade_pair(clean: np.ndarray, painted: np.ndarray, shapes: np.ndarray, size: int,
                 rng: np.random.Generator, cfg: DegradeConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play one random save chain on a (clean, painted) pair.

    Args:
        clean, painted: uint8 (S, S, 3), S from `source_side`.
        shapes: bool (S, S), where paint landed.
        size: side of the result.
        rng: the sample's generator.
        cfg: the chain's odds and ranges.

    Returns:
        (clean, painted, mask) after the chain: uint8 (size, size, 3) twice and bool (size, size).
    """
    if clean.shape[0] != size:  # the resize after painting, drawn in `source_side`
        resample = _RESAMPLE[int(rng.integers(len(_RESAMPLE)))]
        clean, painted = _resize(clean, size, resample), _resize(painted, size, resample)
        shapes = _resize(shapes.astype(np.uint8) * 255, size, Image.BILINEAR) >= 128
    if cfg.noise and rng.random() < cfg.noise:
        sigma = rng.uniform(*cfg.sigma)
        # Shot noise grows with the signal, read noise does not: a mix of both, one field for both.
        field = rng.standard_normal(clean.shape).astype(np.float32) * sigma  # (size, size, 3)
        clean, painted = (np.clip(x + field, 0, 255).round().astype(np.uint8) for x in (clean, painted))
    if cfg.webp and rng.random() < cfg.webp:
        q = int(rng.integers(cfg.quality[0], cfg.quality[1] + 1))
        clean, painted = decode(encode_webp(clean, q)), decode(encode_webp(painted, q))
    else:
        p = np.asarray(cfg.subsampling, np.float64)
        sub = ("4:2:0", "4:2:2", "4:4:4")[int(rng.choice(3, p=p / p.sum()))]
        saves = 2 if cfg.twice and rng.random() < cfg.twice else 1
        for _ in range(saves):
            q = int(rng.integers(cfg.quality[0], cfg.quality[1] + 1))
            clean, painted = decode(encode_jpeg(clean, q, sub)), decode(encode_jpeg(painted, q, sub))
    return clean, painted, damage_mask(painted, clean, shapes, cfg.tolerance)
