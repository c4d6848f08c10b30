"""The restored image encoded in its source's terms.

A JPEG source is written with its own quantization tables and subsampling, and block by block
where it can be (runtime/jpeg_blocks.py: the blocks the restoration did not touch keep their
coefficients); a mode the output format cannot store is converted to the nearest it can, and
said; the source's metadata is written back by runtime/image_metadata.py, and `encode_image`
names what the output format cannot hold.
"""

from __future__ import annotations

import io
import struct
from dataclasses import replace
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import png  # pypng: 16-bit colour and 2- and 4-bit grey PNGs
from PIL import Image

from runtime import image_metadata as meta
from runtime import jpeg_blocks, jpeg_pictures, metadata_lost, xmp_thumbnail
from runtime.image_metadata import JPEG_FORMATS
from runtime.images import UNTURN, WRITABLE_MODES, DeepImage, SourceInfo


def writable(image: Image.Image, fmt: str) -> Tuple[Image.Image, Optional[str]]:
    """Convert `image` to a mode `fmt` can store, closest first; returns (image, note or None)."""
    mode = image.mode
    has_alpha = mode in ("LA", "RGBA") or (mode == "P" and "transparency" in image.info)
    # Only PNG stores a palette's transparency; elsewhere a transparent P image becomes RGBA.
    if mode in WRITABLE_MODES[fmt] and not (mode == "P" and has_alpha and fmt != "PNG"):
        return image, None
    if mode in ("I;16", "I"):
        return _writable_deep_grey(image, fmt)
    if mode == "1" and "L" in WRITABLE_MODES[fmt]:
        return image.convert("L"), f"1-bit written as L ({fmt} cannot store 1-bit)"
    if has_alpha:
        return _writable_alpha(image, fmt)
    if mode == "L" and "RGB" in WRITABLE_MODES[fmt]:
        return image.convert("RGB"), f"L written as RGB ({fmt} has no greyscale mode)"
    return image.convert("RGB"), f"{mode} written as RGB ({fmt} cannot store {mode})"


def _writable_alpha(image: Image.Image, fmt: str) -> Tuple[Image.Image, str]:
    if image.mode == "LA" and "RGBA" not in WRITABLE_MODES[fmt] and "L" in WRITABLE_MODES[fmt]:
        return image.convert("L"), f"alpha dropped ({fmt} cannot store it)"
    if "RGBA" in WRITABLE_MODES[fmt]:
        return image.convert("RGBA"), f"{image.mode} written as RGBA"
    return image.convert("RGBA").convert("RGB"), f"alpha dropped ({fmt} cannot store it)"


def _writable_deep_grey(image: Image.Image, fmt: str) -> Tuple[Image.Image, Optional[str]]:
    """16-bit grey, or 32-bit integer grey, for a format without that mode."""
    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)  # prepare refuses values outside
    if image.mode == "I" and "I;16" in WRITABLE_MODES[fmt]:  # PNG: 16 bits hold every 16-bit level
        return Image.fromarray(values.astype(np.uint16)), f"32-bit integer grey written as 16-bit ({fmt} cannot store 32 bits; every value fits)"
    grey8 = ((values + 128) // 257).astype(np.uint8)  # scale, don't clip
    what = "16-bit grey" if image.mode == "I;16" else "32-bit integer grey"
    if "L" in WRITABLE_MODES[fmt]:
        return Image.fromarray(grey8, "L"), f"{what} written as 8-bit L ({fmt} cannot store 16 bits)"
    return Image.fromarray(grey8, "L").convert("RGB"), f"{what} written as 8-bit RGB ({fmt} has no greyscale mode)"


# Mode changes that lose pixel information: named with the lost metadata, not as a mere note.
LOSSY_CONVERSIONS = ("alpha dropped", "written as 8-bit", "CMYK written as RGB")


class Encoded(NamedTuple):
    """An encoded output and what it could not keep of its source."""

    data: bytes
    mode: str  # the mode written
    note: Optional[str]  # why the mode had to change (losing nothing), else None
    lost: List[str]  # what the output does not hold (alpha, bits, inks, metadata), and why
    kept_blocks: Optional[float] = None  # a JPEG written block by block: the share of blocks kept as they were


def encode_image(image: Union[Image.Image, DeepImage, np.ndarray], fmt: str, source: Optional[SourceInfo] = None,
                 quality: Optional[int] = None, original: Optional[bytes] = None,
                 changed: Optional[np.ndarray] = None) -> Encoded:
    """Encode `image` as `fmt` ('PNG', 'JPEG', 'WEBP', 'BMP', 'TIFF') with the source's metadata.

    A JPEG source is written with its own quantization tables and subsampling unless `quality`
    asks for another quality (sources without tables: `quality`, default 95). Given the source
    file's bytes (`original`) and the pixels the restoration replaced (`changed`, (H, W) bool),
    it is written block by block instead: the blocks holding no changed pixel keep their coded
    coefficients (runtime/jpeg_blocks.py). WebP is written lossless (colour under zero alpha
    kept) unless the source was lossy. A `DeepImage` is written as a 16-bit PNG (pypng), or as
    8 bits in other formats; a low-bit grey PNG source is written back at its own bit depth.
    An (H, W, 3) or (H, W) uint8 array is an RGB or L image (`finish(..., array=True)`): written
    block by block it never becomes a Pillow image.
    Metadata: see runtime/image_metadata.py; the written file is read back, and what it does not
    hold is listed in `Encoded.lost`.
    """
    source = source or SourceInfo()
    encoded = _encode_image(image, fmt, source, quality, original, changed)
    if fmt != "JPEG":
        return encoded
    # The photo's previews made again from it (decoded once for all), its other pictures after it.
    kept = source.pictures
    shown = set(kept.previews()) if kept else set()
    previews = [d if i in shown else None for i, d in enumerate(kept.data)] if kept else []
    exif, photoshop, xmp, *previews = jpeg_pictures.previews_of(
        encoded.data, [source.exif_thumbnail, source.photoshop_thumbnail, source.xmp_thumbnail, *previews])
    data = jpeg_pictures.with_exif_thumbnail(encoded.data, exif) if exif else encoded.data
    data = jpeg_pictures.with_photoshop_thumbnail(data, photoshop) if photoshop else data
    data = xmp_thumbnail.with_thumbnail(data, xmp) if xmp else data
    if kept is not None:
        data = jpeg_pictures.with_pictures(data, kept, previews)
    return encoded._replace(data=data)


def _encode_image(image: Union[Image.Image, DeepImage, np.ndarray], fmt: str, source: SourceInfo,
                  quality: Optional[int], original: Optional[bytes], changed: Optional[np.ndarray]) -> Encoded:
    """`encode_image`'s first picture."""
    if fmt == "JPEG" and quality is None and original is not None and changed is not None:
        done = _blockwise(image, changed, original, source)
        if done is not None:
            return done
    if isinstance(image, np.ndarray):  # not written block by block: the regular writer's file
        image = Image.fromarray(image, "RGB" if image.ndim == 3 else "L")
    before = image.mode
    image, note = _to_writable(image, fmt)
    keep_icc, icc_reason = _icc_decision(source, before, image.mode, fmt)
    data = _encode(image, fmt, source, keep_icc, quality, same_mode=note is None)
    lost = metadata_lost.lost(source, fmt, data, image.mode, icc_reason)
    if note and any(phrase in note for phrase in LOSSY_CONVERSIONS):  # pixels lost, not only re-laid out
        return Encoded(data, image.mode, None, [note, *lost])
    return Encoded(data, image.mode, note, lost)


def _blockwise(image: Union[Image.Image, DeepImage, np.ndarray], changed: np.ndarray, original: bytes,
               source: SourceInfo) -> Optional[Encoded]:
    """An RGB or L image (an array is never made a Pillow image) written as JPEG block by block;
    None when it cannot be (the caller encodes it whole)."""
    mode = ("RGB" if image.ndim == 3 else "L") if isinstance(image, np.ndarray) else image.mode
    if not _same_coding(source, mode):
        return None
    keep_icc, icc_reason = _icc_decision(source, mode, mode, "JPEG")
    pixels = image if isinstance(image, np.ndarray) else np.asarray(image)
    rewritten = _jpeg_blocks(pixels, changed, original, source, keep_icc)
    if rewritten is None:
        return None
    data, kept = rewritten
    return Encoded(data, mode, None, metadata_lost.lost(source, "JPEG", data, mode, icc_reason), kept)


def _same_coding(source: SourceInfo, mode: str) -> bool:
    """True when an image of `mode` can be coded in its JPEG source's blocks: the colour the
    source codes (YCbCr from RGB, grey from L; never CMYK)."""
    return source.jpeg is not None and source.format in JPEG_FORMATS and mode in ("RGB", "L")


def _jpeg_blocks(pixels: np.ndarray, changed: np.ndarray, original: bytes, source: SourceInfo,
                 keep_icc: bool) -> Optional[Tuple[bytes, float]]:
    """(the file, the share of blocks kept) written block by block (runtime/jpeg_blocks.py), or
    None when it cannot be. Its metadata segments are those the regular writer makes for the
    source, taken from an 8x8 image (the pixels are coded here). A photo its EXIF orientation
    turned goes back onto the source's own grid, where its blocks lie, and keeps that
    orientation tag: it shows the same."""
    mode = "RGB" if pixels.ndim == 3 else "L"
    tagged = source
    if source.orientation != 1:
        back = UNTURN[source.orientation]
        pixels, changed = np.ascontiguousarray(back(pixels)), np.ascontiguousarray(back(changed))
        tagged = replace(source, exif=meta.with_orientation(source.exif, source.orientation))
    header = _encode(Image.new(mode, (8, 8)), "JPEG", tagged, keep_icc, None, same_mode=True)
    return jpeg_blocks.rewrite(original, pixels, changed, header)


def _to_writable(image: Union[Image.Image, DeepImage], fmt: str) -> Tuple[Union[Image.Image, DeepImage], Optional[str]]:
    """`image` in a mode `fmt` stores, and why it changed; a DeepImage stays whole only in PNG."""
    if isinstance(image, DeepImage):
        if fmt == "PNG":
            return image, None
        deep_note = f"16-bit {image.mode.split(';')[0]} written as 8-bit ({fmt} cannot store 16 bits)"
        image, note = writable(image.to_8bit(), fmt)
        return image, "; ".join(n for n in (deep_note, note) if n)
    return writable(image, fmt)


def _icc_decision(source: SourceInfo, before: str, mode: str, fmt: str) -> Tuple[bool, Optional[str]]:
    """(write the source's ICC profile?, why not): a profile describes one colour space."""
    if not source.icc_profile:
        return False, None
    if meta.family(before) != meta.family(mode):
        return False, f"it describes {meta.family(before)} colour, the image is written as {mode}"
    if fmt == "BMP" and mode not in ("RGB", "RGBA"):
        return False, f"BMP embeds a profile only in RGB or RGBA images, not {mode}"
    return True, None


def _encode(image: Union[Image.Image, DeepImage], fmt: str, source: SourceInfo, keep_icc: bool,
            quality: Optional[int], same_mode: bool) -> bytes:
    if fmt == "PNG":
        return meta.splice_png(_png_pixels(image, source), meta.png_chunks(source, same_mode, keep_icc))
    if fmt == "BMP" and (image.mode == "RGBA" or (keep_icc and image.mode == "RGB")):
        return meta.encode_bmp_v5(image, source.icc_profile if keep_icc else None, source.dpi)
    params = meta.pillow_params(fmt, image.mode, source, keep_icc, quality)
    if fmt == "TIFF":
        return _encode_tiff(image, params, source)
    return _save(image, fmt, **params)


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _encode_tiff(image: Image.Image, params: Dict[str, object], source: SourceInfo) -> bytes:
    """Deflate (group 4 for 1-bit) through libtiff; uncompressed, through Pillow's own writer, when
    libtiff cannot keep the tags: an Exif or GPS sub-IFD, a type it refuses, a value it mangles."""
    tags = params["tiffinfo"]
    compression = "group4" if image.mode == "1" else "tiff_deflate"
    if not any(group in tags for group in meta.EXIF_GROUPS):
        try:
            data = _save(image, "TIFF", compression=compression, **params)
            if not any(x.startswith(("TIFF tag", "EXIF")) for x in metadata_lost.lost(source, "TIFF", data, image.mode)):
                return data
        except (RuntimeError, ValueError, TypeError, OSError):
            pass  # libtiff's "Error setting from dictionary"
    try:
        return _save(image, "TIFF", compression="raw", **params)
    except (RuntimeError, ValueError, TypeError, OSError, struct.error):
        # A tag not even Pillow's writer takes: written without tags; `lost` names them.
        return _save(image, "TIFF", compression=compression, **{**params, "tiffinfo": {}})


def _png_pixels(image: Union[Image.Image, DeepImage], source: SourceInfo) -> bytes:
    """A PNG of the pixels (and tRNS) alone; `meta.png_chunks` adds the metadata."""
    if isinstance(image, DeepImage):
        return _pypng(image.array, 16, image.transparent)
    if image.mode == "L" and source.grey_bits in (2, 4):
        return _low_bit_png(image, source.grey_bits)
    params: Dict[str, object] = {"compress_level": 6, "icc_profile": None}
    if "transparency" in image.info and image.mode in ("P", "L", "RGB"):
        params["transparency"] = image.info["transparency"]  # tRNS: a palette alpha or a colour key
    return _save(image, "PNG", **params)


def _low_bit_png(image: Image.Image, bits: int) -> bytes:
    """A 2- or 4-bit grey PNG: each 8-bit level to the nearest of the depth's levels (source
    pixels, read as level × 255 / top, come back exactly)."""
    top = (1 << bits) - 1
    levels = (np.asarray(image).astype(np.uint32) * top + 127) // 255
    transparent = image.info.get("transparency")  # Pillow keeps a grey colour key as the file's raw level
    return _pypng(levels.astype(np.uint16)[..., None], bits, transparent if isinstance(transparent, int) else None)


def _pypng(array: np.ndarray, bitdepth: int, transparent) -> bytes:
    """A PNG through pypng of (H, W, C) values: C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA."""
    h, w, c = array.shape
    writer = png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=bitdepth, transparent=transparent,
                        compression=6)
    buf = io.BytesIO()
    rows = array.reshape(h, w * c).astype(np.uint16 if bitdepth > 8 else np.uint8)  # pypng packs by item size
    writer.write(buf, rows)
    return buf.getvalue()
