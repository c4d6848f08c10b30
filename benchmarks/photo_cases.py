"""The files `benchmarks/photo_eval.py` restores: for each of its formats, pictures of one
held-out group, painted (or clean), cut, framed or laid out as collages, then saved as a user's
file is (`make_cases`).

Apart from the evaluation (running `restore-run`, scoring, the report) because other benchmarks
and tests read the same files: the shares of the graphic and gutter checks, the fill sweep and
the mark counts draw exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from restore_core.degrade import DegradeConfig
from restore_core.graphics import graphics
from restore_core.heldout import (
    HELDOUT_CORRUPTION,
    SAVES,
    Case,
    heldout_photos,
    heldout_set,
    saved_case,
    unpainted,
    whole_set,
)
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng

EVAL_SEED = 20261204
TOLERANCE = DegradeConfig().tolerance
# name -> (how it is saved: a key of heldout.SAVES, what is cut from each photo)
FORMATS = {
    "png": ("png", "crops"),
    "jpeg-75-420": ("jpeg-75-420", "crops"),
    "jpeg-90-420": ("jpeg-90-420", "crops"),
    "jpeg-95-420": ("jpeg-95-420", "crops"),
    "jpeg-95-444": ("jpeg-95-444", "crops"),
    "jpeg-95-422": ("jpeg-95-422", "crops"),
    "png-resized": ("png", "crops-resized"),
    "jpeg-90-resized": ("jpeg-90-420", "crops-resized"),
    "webp-75": ("webp-75", "crops"),
    "webp-90": ("webp-90", "crops"),
    "whole-jpeg-90": ("jpeg-90-420", "whole"),
    "whole-png": ("png", "whole"),  # the same whole photos, saved exactly
    "framed-jpeg-90": ("jpeg-90-420", "framed"),  # the whole photos above, each in a white or black frame
    "framed-crops-jpeg-90": ("jpeg-90-420", "framed-crops"),  # the crops, in frames of 4 colours and 3 widths
    "framed-crops-jpeg-75": ("jpeg-75-420", "framed-crops"),
    "collage-jpeg-90": ("jpeg-90-420", "collage"),  # two crops with a gutter between them, then painted
    "collage3-jpeg-90": ("jpeg-90-420", "collage3"),  # three: one beside two stacked, then painted
    "camera-12mp-jpeg-90": ("jpeg-90-420", "camera"),
    "clean-jpeg-90": ("jpeg-90-420", "clean"),
    "clean-png": ("png", "clean"),
    "clean-webp-90": ("webp-90", "clean"),
    "clean-jpeg-75": ("jpeg-75-420", "clean"),
    "clean-camera-12mp-jpeg-90": ("jpeg-90-420", "clean-camera"),
    "clean-crops-jpeg-90": ("jpeg-90-420", "clean-crops"),
    "clean-framed-crops-jpeg-90": ("jpeg-90-420", "clean-framed-crops"),  # the framed crops, nothing painted
    "clean-framed-crops-jpeg-75": ("jpeg-75-420", "clean-framed-crops"),
    "clean-collage-jpeg-90": ("jpeg-90-420", "clean-collage"),
    "clean-collage-jpeg-75": ("jpeg-75-420", "clean-collage"),
    "clean-collage3-jpeg-90": ("jpeg-90-420", "clean-collage3"),
    "clean-collage3-jpeg-75": ("jpeg-75-420", "clean-collage3"),
    "clean-graphics-png": ("png", "clean-graphics"),  # charts, screens, documents: not photos (restore_core/graphics.py)
    "clean-graphics-jpeg-90": ("jpeg-90-420", "clean-graphics"),
    "clean-graphics-jpeg-75": ("jpeg-75-420", "clean-graphics"),
    "clean-graphics-webp-90": ("webp-90", "clean-graphics"),
}
# the kinds cut from the photos themselves, painted and clean (none laid out, framed or drawn)
PHOTO_KINDS = ("crops", "crops-resized", "clean-crops", "whole", "clean")
SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
CAMERA = (3000, 4000)  # (H, W): a 12-megapixel camera photo
RESIZED = 0.75  # the scale of the resized kinds (saved as PNG, or as JPEG 90)
FRAME = 0.04  # of the long side: the width of the framed kind's border, on every side
FRAMES = (0.02, 0.04, 0.08)  # of the long side: the framed crops' widths, in turn
FRAME_COLOURS = ((255, 255, 255), (0, 0, 0), (128, 128, 128), (238, 232, 216))  # white, black, grey, cream
GUTTERS = (0.01, 0.02, 0.03)  # of the long side: the collages' gutters, in turn
CAMERA_PAINT = CorruptionConfig(count=(1, 6), size=(0.02, 0.15), shapes=("square", "circle"), fill="random")


@dataclass
class FileCase:
    """One file to restore: its bytes and the case as the file holds it (`heldout.saved_case`)."""

    case: Case
    data: bytes
    suffix: str
    paint: Optional[np.ndarray] = None  # (H, W) bool: where the shapes were painted, before the save


def camera_photo(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`photo` scaled up to 12 MP with a little sensor noise: a camera-size file's pixel count."""
    h, w = CAMERA if photo.shape[0] <= photo.shape[1] else CAMERA[::-1]
    big = np.asarray(Image.fromarray(photo).resize((w, h), Image.LANCZOS), dtype=np.float32)
    big += rng.standard_normal(big.shape).astype(np.float32) * 2.0
    return np.clip(big, 0, 255).round().astype(np.uint8)


def _resized(case: Case, scale: float = RESIZED) -> Case:
    """`case` scaled after it was painted, as a picture shared or exported smaller is (LANCZOS);
    its mask: the shapes where they land (`saved_case` adds the ring the resampling left)."""
    h, w = case.clean.shape[:2]
    size = (round(w * scale), round(h * scale))
    clean, painted = (np.asarray(Image.fromarray(a).resize(size, Image.LANCZOS)) for a in (case.clean, case.corrupted))
    shapes = np.asarray(Image.fromarray(case.mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR)) >= 128
    return Case(case.name + "_small", case.source, clean, painted, shapes)


def framed_case(case: Case, index: int, width: float = FRAME, colour: Optional[Tuple[int, int, int]] = None) -> Case:
    """`case` in a frame of one colour, `width` of its long side wide on every side: a print's
    border, a shared photo's matte; `colour` None: white, black for every second case. The frame
    is not damage."""
    b = max(4, round(width * max(case.clean.shape[:2])))
    colour = colour or ((255, 255, 255) if index % 2 == 0 else (0, 0, 0))

    def pad(a: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0] + 2 * b, a.shape[1] + 2 * b) + a.shape[2:], a.dtype)
        if a.ndim == 3:
            out[:] = np.asarray(colour, a.dtype)
        out[b:-b, b:-b] = a
        return out

    return Case(case.name + "_framed", case.source, pad(case.clean), pad(case.corrupted), pad(case.mask))


def _scaled(img: np.ndarray, across: int, side: int) -> np.ndarray:
    """`img` scaled (LANCZOS) to `side` pixels high (`across` 0) or wide (1), its shape kept."""
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((side, round(h * side / w)) if across else (round(w * side / h), side),
                                                  Image.LANCZOS))


def _joined(photos: List[np.ndarray], across: int, g: int, colour: Tuple[int, int, int]) -> np.ndarray:
    """`photos` (each scaled to `side`, the first's side) side by side (`across` 0) or one above
    the other (1), a gutter `g` pixels wide of `colour` between each two."""
    side = photos[0].shape[across]
    gutter = np.empty((side, g, 3) if not across else (g, side, 3), np.uint8)
    gutter[:] = colour
    parts = [photos[0]]
    for p in photos[1:]:
        parts += [gutter, p if p.shape[across] == side else _scaled(p, across, side)]
    return np.concatenate(parts, axis=1 - across)


def _as_collage(name: str, source: str, clean: np.ndarray, index: int, g: int, seed: int, painted: bool) -> Case:
    """A collage's case: every third `index` also framed in its gutters' colour, painted over as a
    whole where `painted`."""
    case = Case(name, source, clean, clean, np.zeros(clean.shape[:2], bool))
    if index % 3 == 2:
        case = framed_case(case, 0, g / max(clean.shape[:2]), FRAME_COLOURS[index % len(FRAME_COLOURS)])
    if not painted:
        return Case(name + "_clean", case.source, case.clean, case.clean, case.mask)
    return Case(name, case.source, case.clean, *corrupt(case.clean, sample_rng(seed, 2000 + index), HELDOUT_CORRUPTION))


def _collage(a: Case, b: Case, index: int, seed: int, painted: bool) -> Case:
    """The clean crops of `a` and `b` side by side (one above the other for every second `index`),
    scaled to one height (width), with a gutter between them of `GUTTERS` and `FRAME_COLOURS` in
    turn (every third also framed in it), then painted over as a whole where `painted`."""
    across = index % 2  # 0: side by side, 1: one above the other
    side = min(x.clean.shape[across] for x in (a, b))
    photos = [_scaled(x.clean, across, side) for x in (a, b)]
    g = max(3, round(GUTTERS[index % len(GUTTERS)] * max(sum(p.shape[1 - across] for p in photos), side)))
    clean = _joined(photos, across, g, FRAME_COLOURS[index % len(FRAME_COLOURS)])
    return _as_collage(f"{a.name}_{b.name}_collage", a.source, clean, index, g, seed, painted)


def _collage3(a: Case, b: Case, c: Case, index: int, seed: int, painted: bool) -> Case:
    """Three clean crops: `b` above `c`, `a` beside them (for every second `index`, `b` beside
    `c`, `a` under them), the pair about as long as `a`, with gutters of `GUTTERS` and
    `FRAME_COLOURS` in turn: the gutter between `b` and `c` runs only part of the way across.
    Every third also framed in it, then painted over as a whole where `painted`."""
    across = index % 2  # 0: `a` beside the pair, 1: under it
    colour = FRAME_COLOURS[index % len(FRAME_COLOURS)]
    g = max(3, round(GUTTERS[index % len(GUTTERS)] * 2 * max(a.clean.shape[:2])))
    # `b` and `c` scaled to one width (height) at which, stacked, they are about as long as `a`
    length = a.clean.shape[across]  # the side of `a` that the pair runs along
    side = max(8, round((length - g) / sum(x.clean.shape[across] / x.clean.shape[1 - across] for x in (b, c))))
    pair = _joined([_scaled(x.clean, 1 - across, side) for x in (b, c)], 1 - across, g, colour)
    clean = _joined([pair, a.clean], across, g, colour)
    return _as_collage(f"{a.name}_{b.name}_{c.name}_collage3", a.source, clean, index, g, seed, painted)


def _laid_out(which: str, kind: str, per_photo: int, seed: int) -> Optional[List[Case]]:
    """The cases of a kind drawn or laid out from others (graphics, frames, collages), or None."""
    if kind == "clean-graphics":  # drawn, not photographed: the group's own generators
        return [Case(name, "graphics", img, img, np.zeros(img.shape[:2], bool))
                for name, img in graphics(which, per_photo).items()]
    if kind == "framed":  # the whole photos, the same paintings, each in a frame
        return [framed_case(c, i) for i, c in enumerate(painted_cases(which, "whole", per_photo, seed))]
    if kind in ("framed-crops", "clean-framed-crops"):  # the crops, each in a frame: widths and colours in turn
        crops = painted_cases(which, "crops" if kind == "framed-crops" else "clean-crops", per_photo, seed)
        return [framed_case(c, i, FRAMES[i % len(FRAMES)], FRAME_COLOURS[i % len(FRAME_COLOURS)]) for i, c in enumerate(crops)]
    if kind in ("collage", "clean-collage"):  # pairs of the crops, a gutter between them
        crops = heldout_set(per_photo, seed=seed, photos=which)
        return [_collage(crops[i], crops[i + 1], i // 2, seed, kind == "collage") for i in range(0, len(crops) - 1, 2)]
    if kind in ("collage3", "clean-collage3"):  # threes of the crops: a gutter that runs part of the way
        crops = heldout_set(per_photo, seed=seed, photos=which)
        return [_collage3(crops[i], crops[i + 1], crops[i + 2], i // 3, seed, kind == "collage3")
                for i in range(0, len(crops) - 2, 3)]
    return None


def painted_cases(which: str, kind: str, per_photo: int, seed: int) -> List[Case]:
    """The cases of one kind before the save: crops (as painted, resized after painting, or clean),
    whole photos, 12 MP photos, clean photos whole or at 12 MP, or those `_laid_out` makes."""
    laid_out = _laid_out(which, kind, per_photo, seed)
    if laid_out is not None:
        return laid_out
    if kind in ("crops", "clean-crops", "crops-resized"):
        crops = heldout_set(per_photo, seed=seed, photos=which)
        if kind == "crops-resized":  # painted, then the whole picture scaled to 3/4 (its mask: where the shapes land)
            return [_resized(c) for c in crops]
        return crops if kind == "crops" else [unpainted(c) for c in crops]  # clean: nothing painted
    if kind == "whole":  # whole photos, a few paintings each
        return whole_set(max(1, per_photo // 3), seed=seed, photos=which)
    out = []
    for p, (name, photo) in enumerate(heldout_photos(which).items()):  # the group's order: stable draws
        rng = sample_rng(seed, 1000 + p)
        if kind == "clean":
            out.append(Case(f"{name}_clean", name, photo, photo, np.zeros(photo.shape[:2], bool)))
        elif kind == "camera":
            clean = camera_photo(photo, rng)
            out.append(Case(f"{name}_12mp", name, clean, *corrupt(clean, rng, CAMERA_PAINT)))
        elif kind == "clean-camera":  # the camera kind's photo (the same noise), nothing painted
            clean = camera_photo(photo, rng)
            out.append(Case(f"{name}_12mp_clean", name, clean, clean, np.zeros(clean.shape[:2], bool)))
    return out


def make_cases(fmt: str, which: str, per_photo: int, seed: int = EVAL_SEED) -> List[FileCase]:
    """The files of one format: painted (or clean) photos of the group `which`, then saved."""
    save, kind = FORMATS[fmt]
    suffix = SUFFIX[SAVES[save][0]]
    return [FileCase(*saved_case(c, save, TOLERANCE), suffix, c.mask) for c in painted_cases(which, kind, per_photo, seed)]
