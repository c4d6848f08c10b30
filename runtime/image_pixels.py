"""An image to the model's RGB view, and the model's result back into the image's own mode.

The model takes 8-bit RGB. Photos come as 1, L, LA, P, RGB, RGBA, 16-bit grey, CMYK, with EXIF
rotations (applied on read). `prepare` keeps the source's own values beside the view; `finish`
puts the result back into them only where the mask says so, every other value kept bit for bit:

| source mode | model sees | written back as |
| --- | --- | --- |
| RGB, RGBA | the RGB channels | RGB / RGBA, alpha untouched |
| L, LA, 1 | grey replicated to RGB | luma of the result (ITU-R 601, Pillow's) into L; 1 thresholds at 128 |
| P (with transparency) | the palette colours | nearest opaque palette entry, same palette; transparent pixels keep their index |
| I;16, and I (32-bit) in 0..65535 | round(v / 257) as grey | luma × 257 in masked pixels, other pixels keep every bit; I stays 32-bit in TIFF |
| CMYK | Pillow's CMYK→RGB | Pillow's RGB→CMYK in masked pixels, other pixels keep their inks |
| 16-bit RGB, RGBA, grey+alpha PNG (RGB;16, RGBA;16, LA;16) | round(v / 257) per channel | a 16-bit PNG of the same colour type: the result × 257 (luma × 257 for LA;16) in masked pixels, other pixels and alpha keep all 16 bits |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple, Union

import numpy as np
from PIL import Image

from runtime.images import DEEP_MODES, SIXTEEN_BIT, DeepImage, ImageError


@dataclass
class Prepared:
    """An image split into the model's RGB view and everything needed to put the result back."""

    rgb: np.ndarray  # (H, W, 3) uint8: what the model sees
    mode: str  # the mode the result will have
    native: np.ndarray  # the source's own values: (H, W) for 1/L/P/I;16, (H, W, C) for RGB/CMYK
    alpha: Optional[np.ndarray] = None  # (H, W), kept verbatim
    palette: Optional[list] = None  # P: the RGB palette, flat
    opaque: Optional[np.ndarray] = None  # P: (entries,) bool, entries a restored pixel may take
    transparency: object = None  # Pillow's info['transparency'] to carry over
    notes: list = field(default_factory=list)

    @property
    def size(self) -> Tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]  # (W, H) like Pillow


PILLOW_BAND = 1024  # rows handed to Pillow at a time (`in_bands`)


def in_bands(rgb: np.ndarray, step: Callable[[Image.Image], Image.Image], factor: int = 1,
             band: int = PILLOW_BAND) -> np.ndarray:
    """`step` (a Pillow image to one `factor` times smaller, each output pixel from its own
    factor x factor block of the input) on (H, W, 3) uint8 `rgb`, whose sides are multiples of
    `factor`, a band of about `band` rows at a time (a multiple of `factor`: the result is the
    same as on the whole). Pillow holds what it is given at 4 bytes a pixel, beside the
    contiguous copy a cut array needs: whole, 1.4 GB more at 200 Mpx (a run's peak)."""
    rows = max(1, band // factor) * factor
    out = None
    for y in range(0, rgb.shape[0], rows):
        part = np.asarray(step(Image.fromarray(np.ascontiguousarray(rgb[y:y + rows]))))
        if out is None:
            out = np.empty((rgb.shape[0] // factor, *part.shape[1:]), np.uint8)
        out[y // factor:y // factor + len(part)] = part
    return out if out is not None else np.asarray(step(Image.fromarray(np.ascontiguousarray(rgb))))


def _luma(rgb: np.ndarray, band: int = PILLOW_BAND) -> np.ndarray:
    """Pillow's RGB→L (ITU-R 601, fixed point): grey (v, v, v) maps back to v exactly; a band of
    rows at a time (`in_bands`: whole, it was a grey photo's peak at its write)."""
    return in_bands(rgb, lambda img: img.convert("L"), band=band)


def prepare(img: Image.Image, deep: Optional[DeepImage] = None) -> Prepared:
    """Split a decoded image into the model's RGB view and the source representation.

    Args:
        img: the decoded image.
        deep: the file's 16-bit values when `read_image` kept them (`SourceInfo.deep`); they
            replace `img`'s 8-bit view.

    Raises:
        ImageError: a mode we cannot restore (floating point, out-of-range 32-bit integers).
    """
    if deep is not None:
        return _prepare_deep(deep)
    mode = img.mode
    transparency = img.info.get("transparency")
    if mode == "RGB":
        rgb = np.asarray(img)
        return Prepared(rgb, "RGB", rgb, transparency=transparency)
    if mode == "RGBA":
        arr = np.asarray(img)
        return Prepared(np.ascontiguousarray(arr[..., :3]), "RGBA", arr[..., :3], alpha=arr[..., 3].copy())
    if mode in ("L", "1"):
        grey = np.asarray(img.convert("L"))  # 1 → 0 / 255
        return Prepared(np.repeat(grey[..., None], 3, axis=2), mode, grey, transparency=transparency if mode == "L" else None)
    if mode == "LA":
        arr = np.asarray(img)
        grey = arr[..., 0]
        return Prepared(np.repeat(grey[..., None], 3, axis=2), "LA", grey, alpha=arr[..., 1].copy())
    if mode == "P":
        return _prepare_palette(img)
    if mode in SIXTEEN_BIT:
        return _prepare_grey16(img)
    if mode == "CMYK":
        return Prepared(np.asarray(img.convert("RGB")), "CMYK", np.asarray(img))
    if mode in ("F",):
        raise ImageError("32-bit floating-point images are not supported")
    # Rare modes (PA, La, RGBa, YCbCr, LAB, HSV, RGBX, ...): restore an RGB(A) view, say so.
    has_alpha = mode in ("PA", "La", "RGBa", "RGBA", "LA") or transparency is not None  # not LAB's A
    converted = img.convert("RGBA" if has_alpha else "RGB")
    prep = prepare(converted)
    prep.notes.append(f"mode {mode} restored and written as {prep.mode}")
    return prep


def _prepare_grey16(img: Image.Image) -> Prepared:
    """16-bit grey, and 32-bit integer grey holding 16-bit levels (kept 32-bit: mode I)."""
    values = np.asarray(img).astype(np.int64)
    if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
        raise ImageError(f"mode {img.mode} with values outside 0..65535 is not supported")
    grey8 = ((values + 128) // 257).astype(np.uint8)  # nearest 8-bit level
    native = values.astype(np.int32) if img.mode == "I" else values.astype(np.uint16)
    return Prepared(np.repeat(grey8[..., None], 3, axis=2), "I" if img.mode == "I" else "I;16", native)


def _prepare_deep(deep: DeepImage) -> Prepared:
    a = deep.array
    alpha = a[..., -1].copy() if a.shape[2] in (2, 4) else None
    native = a[..., 0] if a.shape[2] == 2 else a[..., :3]  # (H, W) grey or (H, W, 3) RGB
    view = _nearest_8bit(native)
    rgb = np.repeat(view[..., None], 3, axis=2) if view.ndim == 2 else np.ascontiguousarray(view)
    return Prepared(rgb, deep.mode, np.ascontiguousarray(native), alpha=alpha, transparency=deep.transparent)


def _nearest_8bit(values: np.ndarray, band: int = 256) -> np.ndarray:
    """uint16 values -> the nearest 8-bit levels, (v + 128) // 257 as I;16 rounds, a band of rows
    at a time: on the whole image the uint32 steps took 12 bytes a pixel twice over."""
    out = np.empty(values.shape, np.uint8)
    for y in range(0, values.shape[0], band):
        wide = values[y:y + band].astype(np.uint32)
        wide += 128
        wide //= 257
        out[y:y + band] = wide
    return out


def _prepare_palette(img: Image.Image) -> Prepared:
    idx = np.asarray(img)  # (H, W) palette indices
    palette = img.getpalette() or []  # flat RGB
    entries = max(1, len(palette) // 3)
    entry_alpha = np.full(256, 255, dtype=np.uint8)
    transparency = img.info.get("transparency")
    if isinstance(transparency, int):
        entry_alpha[transparency] = 0
    elif isinstance(transparency, bytes):
        entry_alpha[: len(transparency)] = np.frombuffer(transparency, dtype=np.uint8)
    opaque = entry_alpha[:entries] == 255
    rgb = np.asarray(img.convert("RGB"))
    alpha = entry_alpha[idx] if transparency is not None else None
    return Prepared(rgb, "P", idx, alpha=alpha, palette=palette, opaque=opaque, transparency=transparency)


def finish(prep: Prepared, restored: np.ndarray, mask: np.ndarray,
           array: bool = False) -> Union[Image.Image, DeepImage, np.ndarray]:
    """Put the model's result back into the source's mode.

    Args:
        prep: from `prepare`.
        restored: (H, W, 3) uint8, the graph's composite (equal to `prep.rgb` outside the mask);
            for RGB and RGBA sources the result is put together in it when it is writeable (the
            source's pixels copied in outside the mask), not in a copy of it.
        mask: (H, W) bool, True where the model replaced the pixel.
        array: an RGB or L result as its (H, W, 3) or (H, W) uint8 array rather than a Pillow
            image, which holds 4 bytes a pixel more (`encode_image` takes either; a JPEG
            written back block by block never needs the Pillow image).

    Returns:
        A Pillow image of mode `prep.mode` whose unmasked pixels hold the source values exactly;
        a `DeepImage` for the 16-bit colour modes (RGB;16, RGBA;16, LA;16).
    """
    m = mask.astype(bool)
    mode = prep.mode
    if mode in DEEP_MODES.values():
        # The source's values, and the restored pixels scaled up where the mask is (only those
        # converted: whole-image uint16 temporaries cost 6 bytes a pixel each).
        out = prep.native.astype(np.uint16)  # a copy
        out[m] = (_luma(restored) if mode == "LA;16" else restored)[m].astype(np.uint16) * 257
        if prep.alpha is not None:
            out = np.dstack([out, prep.alpha])
        return DeepImage(np.ascontiguousarray(out.reshape(*out.shape[:2], -1)), prep.transparency)
    if array and mode in ("RGB", "L"):
        return _put_back(restored, prep.native, m) if mode == "RGB" else _grey_pixels(prep, restored, m)
    if mode in ("RGB", "RGBA"):
        out = _put_back(restored, prep.native, m)
        if mode == "RGBA":
            out = np.dstack([out, prep.alpha])
        image = Image.fromarray(np.ascontiguousarray(out, dtype=np.uint8), mode)
    elif mode in ("L", "LA", "1", "I;16", "I"):
        image = _finish_grey(prep, restored, m)
    elif mode == "CMYK":
        inks = np.asarray(Image.fromarray(restored, "RGB").convert("CMYK"))
        image = Image.fromarray(np.where(m[..., None], inks, prep.native).astype(np.uint8), "CMYK")
    elif mode == "P":
        image = _finish_palette(prep, restored, m)
    else:  # prepare never produces other modes
        raise ValueError(f"unexpected prepared mode {mode}")
    if prep.transparency is not None and mode in ("RGB", "L", "P"):
        image.info["transparency"] = prep.transparency
    return image


def _finish_grey(prep: Prepared, restored: np.ndarray, m: np.ndarray) -> Image.Image:
    mode = prep.mode
    if mode in ("I;16", "I"):
        out = np.where(m, _luma(restored).astype(np.int32) * 257, prep.native)
        return Image.fromarray(out.astype(np.uint16 if mode == "I;16" else np.int32))  # → I;16 or I
    out = _grey_pixels(prep, restored, m)
    if mode == "LA":
        return Image.fromarray(np.dstack([out, prep.alpha]), "LA")
    image = Image.fromarray(out, "L")
    if mode == "1":
        image = image.convert("1", dither=Image.Dither.NONE)  # 0/255 map to 0/1 exactly
    return image


def _put_back(restored: np.ndarray, native: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(H, W, 3): `restored` where `m`, `native` elsewhere, written into `restored` when it may be
    (a whole-image copy less: 36 MB at 12 Mpx, at the writer's peak)."""
    if not restored.flags.writeable or restored.shape != native.shape or restored.dtype != native.dtype:
        return np.where(m[..., None], restored, native)
    np.copyto(restored, native, where=~m[..., None])
    return restored


def _grey_pixels(prep: Prepared, restored: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(H, W) uint8: the source's grey values, the restored pixels' luma where `m` (0/255 for 1-bit)."""
    grey = _luma(restored)
    if prep.mode == "1":
        grey = np.where(grey >= 128, 255, 0).astype(np.uint8)
    return np.where(m, grey, prep.native).astype(np.uint8)


def _finish_palette(prep: Prepared, restored: np.ndarray, m: np.ndarray) -> Image.Image:
    idx = prep.native.copy()
    candidates = np.flatnonzero(prep.opaque)
    # Only opaque pixels take a new colour: a transparent pixel's colour is not shown, and taking
    # a transparent entry would change the alpha we promise to keep.
    change = m & prep.opaque[np.minimum(idx, len(prep.opaque) - 1)]
    if change.any() and len(candidates):
        pal = np.asarray(prep.palette, dtype=np.uint8).reshape(-1, 3)[candidates]  # (K, 3)
        # Pillow's nearest-colour search against a palette of only the opaque entries, padded
        # with copies of the first one (a palette image always has 256 entries).
        padded = np.concatenate([pal, np.repeat(pal[:1], 256 - len(pal), axis=0)]) if len(pal) < 256 else pal
        pal_img = Image.new("P", (1, 1))
        pal_img.putpalette(padded.reshape(-1).tolist())
        nearest = np.asarray(Image.fromarray(restored, "RGB").quantize(palette=pal_img, dither=Image.Dither.NONE))
        lookup = np.concatenate([candidates, np.full(256 - len(candidates), candidates[0])]).astype(np.uint8)
        idx[change] = lookup[nearest[change]]
    image = Image.fromarray(idx.astype(np.uint8), "P")
    image.putpalette(prep.palette)
    return image


def to_pil(array: np.ndarray) -> Image.Image:
    """A numpy image as Pillow sees it: (H, W) uint8 → L, uint16 → I;16, bool → 1,
    (H, W, 2) → LA, (H, W, 3) → RGB, (H, W, 4) → RGBA."""
    a = np.asarray(array)
    if a.dtype == bool:
        return Image.fromarray(a.astype(np.uint8) * 255, "L").convert("1", dither=Image.Dither.NONE)
    if a.ndim == 2 and a.dtype == np.uint16:
        return Image.fromarray(a)  # I;16
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (or uint16 greyscale) array, got {a.dtype}")
    if a.ndim == 2:
        return Image.fromarray(a, "L")
    if a.ndim == 3 and a.shape[2] in (2, 3, 4):
        return Image.fromarray(np.ascontiguousarray(a), {2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]])
    raise ValueError(f"expected (H, W), (H, W, 2), (H, W, 3) or (H, W, 4), got {a.shape}")
