"""Reading images into what the model sees, and writing the result back in the source's own terms.

The model takes 8-bit RGB. Photos come as 1, L, LA, P, RGB, RGBA, 16-bit grey, CMYK, with EXIF
rotations and ICC profiles. The rule everywhere: the network sees an RGB view of the image, and
the result is put back *into the source's representation* only where the mask says so; every
pixel outside the mask keeps its original value (palette index, 16-bit level, CMYK ink, alpha)
bit for bit.

| source mode | model sees | written back as |
| --- | --- | --- |
| RGB, RGBA | the RGB channels | RGB / RGBA, alpha untouched |
| L, LA, 1 | grey replicated to RGB | luma of the result (ITU-R 601, Pillow's) into L; 1 thresholds at 128 |
| P (with transparency) | the palette colours | nearest opaque palette entry, same palette; transparent pixels keep their index |
| I;16, and I (32-bit) in 0..65535 | round(v / 257) as grey | luma × 257 in masked pixels, other pixels keep every bit; I stays 32-bit in TIFF |
| CMYK | Pillow's CMYK→RGB | Pillow's RGB→CMYK in masked pixels, other pixels keep their inks |
| 16-bit RGB, RGBA, grey+alpha PNG (RGB;16, RGBA;16, LA;16) | round(v / 257) per channel | a 16-bit PNG of the same colour type: the result × 257 (luma × 257 for LA;16) in masked pixels, other pixels and alpha keep all 16 bits |

Pillow decodes 16-bit RGB, RGBA and grey+alpha PNGs to their top 8 bits, so those are read and
written with pypng (`DeepImage`) when the output is a PNG; everything else goes through Pillow.
What cannot be put back whole is refused, not written lossy (`LossyInputError`), unless the
caller allows it: more than one frame or page (only the first is restored), and more than 8 bits
per colour channel where they cannot be kept (a 16-bit colour PNG written as another format, a
16-bit colour TIFF). GIF is read (its first frame, palette kept) but written only as another
format: Pillow's GIF writer may reorder the palette.

Metadata (EXIF, ICC, XMP, PNG chunks, TIFF tags, JPEG tables...) is captured on read and
written back by runtime/image_metadata.py; `encode_image` names what an output format cannot hold.

Torch-free: numpy, pillow and pypng only.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import png  # pypng: 16-bit colour PNGs, which Pillow decodes to 8 bits
from PIL import Image, ImageOps, UnidentifiedImageError

from restore_toolkit.messages import one_line
from runtime import image_metadata as meta
from runtime import jpeg_blocks, jpeg_pictures, xmp_thumbnail
from runtime.image_metadata import JPEG_FORMATS, JpegCoding

# Pillow's format names for the formats we read and write, and their file suffixes.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF", "tif": "TIFF"}
SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
# Modes each writer stores as they are; anything else is converted by `writable`.
WRITABLE_MODES = {
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
    "BMP": {"1", "L", "P", "RGB", "RGBA"},
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"},
}
# Formats we decode: every writable one, and GIF (read only, see the module docstring).
READ_FORMATS = (*WRITABLE_MODES, "GIF")
# TIFF compressions that lose colour: such a TIFF's pixels are not the exact ones it was saved
# from (the fill and the solid check treat it as a lossy file).
LOSSY_TIFF_COMPRESSION = ("jpeg", "tiff_jpeg", "webp")
# Refused from the header above this (a decompression bomb), per call: a phone's largest photos
# (200 Mpx, 16320 x 12240) pass. What an image may hold in memory is bounded apart (runtime/memory.py).
DEFAULT_MAX_PIXELS = 250_000_000
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# PNG IHDR colour types of the 16-bit files read and written with pypng: grey+alpha, RGB, RGBA.
PNG16_COLOUR_TYPES = (2, 4, 6)
DEEP_MODES = {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}  # channels → our name for the mode
# Pillow's transposition for each EXIF orientation, as numpy does it on (H, W, C) arrays.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
# And back: the source's own grid from the turned pixels, (H, W[, C]).
_UNTURN = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


class ImageError(ValueError):
    """An input that cannot be restored; the message is the reason, for the report."""


class TooManyPixels(ImageError):
    """An input over `max_pixels`; `header` says what it is, so a caller can add what else it needs."""

    def __init__(self, message: str, header: "Header"):
        super().__init__(message)
        self.header = header


class LossyInputError(ImageError):
    """An input that could be restored only by dropping part of it (frames, pages, low bits)."""


@dataclass
class SourceInfo:
    """What the writer needs to know about where the pixels came from."""

    format: Optional[str] = None  # the format Pillow detected in the file
    lossless: bool = True  # False for JPEG and lossy WebP sources
    exif: Optional[bytes] = None  # EXIF with the orientation removed (it has been applied)
    icc_profile: Optional[bytes] = None
    dpi: Optional[Tuple[float, float]] = None
    notes: list = field(default_factory=list)  # things the report should mention
    dropped: List[str] = field(default_factory=list)  # what a lossy write (when allowed) leaves out
    deep: Optional["DeepImage"] = None  # a 16-bit colour PNG's own values, kept whole
    # The rest of the metadata, carried to the output where its format can hold it
    # (runtime/image_metadata.py; what it cannot hold is named by `encode_image`).
    xmp: Optional[bytes] = None  # the XMP packet (orientation reset, like EXIF's)
    comment: Optional[bytes] = None  # a JPEG's COM segment
    jpeg_segments: List[Tuple[str, bytes]] = field(default_factory=list)  # other APPn (IPTC...) as they were
    jpeg: Optional[JpegCoding] = None  # a JPEG's quantization tables and subsampling
    png_chunks: List[Tuple[bytes, bytes]] = field(default_factory=list)  # text, gAMA, cHRM, sRGB... as they were
    grey_bits: Optional[int] = None  # 1, 2 or 4: a low-bit grey PNG, written back at that depth
    tiff_tags: Dict[int, object] = field(default_factory=dict)  # a TIFF's tags other than its pixel layout
    digest: Optional[bytes] = None  # the file's fingerprint: a copy of it is checked against it
    orientation: int = 1  # the EXIF orientation the pixels were turned by (1: not turned)
    permissions: Optional[int] = None  # the file's permission bits, which its outputs keep
    pictures: Optional[jpeg_pictures.Pictures] = None  # what a JPEG holds after its photo, written back after it
    exif_thumbnail: Optional[bytes] = None  # a JPEG's EXIF thumbnail (IFD1), made again when it changed
    photoshop_thumbnail: Optional[bytes] = None  # a JPEG's Photoshop thumbnail (APP13), likewise
    xmp_thumbnail: Optional[bytes] = None  # a JPEG's XMP thumbnail (xmp:Thumbnails), likewise


@dataclass
class DeepImage:
    """A 16-bit colour image Pillow cannot hold (it keeps only the top 8 bits), read and written with pypng."""

    array: np.ndarray  # (H, W, C) uint16; C = 2 (grey+alpha), 3 (RGB) or 4 (RGBA)
    transparent: Optional[tuple] = None  # the tRNS colour key, in 16-bit values

    @property
    def mode(self) -> str:
        return DEEP_MODES[self.array.shape[2]]

    @property
    def size(self) -> Tuple[int, int]:
        return self.array.shape[1], self.array.shape[0]  # (W, H) like Pillow

    def to_8bit(self) -> Image.Image:
        """The nearest 8-bit Pillow image (round(v / 257) per channel): LA, RGB or RGBA."""
        view = ((self.array.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(view), self.mode.split(";")[0])


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
    has_alpha = "A" in mode or "a" in mode or transparency is not None
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


def _webp_lossless(data: Union[bytes, BinaryIO]) -> bool:
    """True when a WebP file's image chunk is VP8L (lossless), walking the RIFF chunks (bytes or a file)."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    pos = 12
    while True:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return False
        tag = head[:4]
        if tag in (b"VP8L", b"VP8 "):
            return tag == b"VP8L"
        size = int.from_bytes(head[4:8], "little")
        pos += 8 + size + (size & 1)


HEAD_BYTES = 1 << 16  # what is read to tell the format; every header field we look at lies in it
# Most Pillow may read while parsing a header, before the image's size is known and checked: a TIFF
# tag or a PNG chunk can claim gigabytes, and Pillow reads what it claims.
HEADER_READ_LIMIT = 64 << 20


class _HeaderTooLarge(ImageError):
    pass


class _CappedFile:
    """A file whose reads stop at `cap` bytes in all until `cap` is lifted (set to None).

    Pillow parses headers by reading what they claim; capped, a header can cost at most `cap`
    bytes of memory whatever it says. Everything but `read` is the file's own.
    """

    def __init__(self, f: BinaryIO, size: int, cap: Optional[int]):
        self._f, self._size, self.cap, self.taken = f, size, cap, 0

    def read(self, n: Optional[int] = -1) -> bytes:
        if self.cap is not None:
            want = self._size - self._f.tell() if n is None or n < 0 else n
            if self.taken + want > self.cap:
                raise _HeaderTooLarge(f"its header claims more than {self.cap >> 20} MiB before the image data")
            self.taken += want
        return self._f.read(n)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _kind(mode: int) -> str:
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return word
    return "a special file"


def _open_file(path: Path) -> BinaryIO:
    """`path` opened for reading, refused unless it is a regular file.

    Nothing is read here. O_NONBLOCK keeps the open of a FIFO from waiting for a writer forever
    (on a regular file it changes nothing); a device such as /dev/zero is never read at all.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageError(f"{_kind(mode)}, not a regular file: not opened")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _webp_size(head: bytes) -> Optional[Tuple[int, int]]:
    """A WebP canvas's (width, height) from the file's first 30 bytes, as Pillow's plugin reads it."""
    from PIL import WebPImagePlugin

    return WebPImagePlugin._get_size(head) if len(head) >= 30 else None


def _open(f: BinaryIO, head: bytes, precheck=None) -> Image.ImageFile.ImageFile:
    """`Image.open` for READ_FORMATS on an open file, without Pillow's decompression-bomb check.

    Pillow checks sizes against its process-wide `Image.MAX_IMAGE_PIXELS` (a warning above it,
    an error above twice it). Our limit is per call (`max_pixels`), checked by the caller from
    the header; setting Pillow's global instead would change every other user of Pillow in the
    process, and its warning would print before our message with the wrong limit in it.
    This is `Image.open`'s own format loop (`Image.OPEN` holds each plugin's factory and
    header test), minus that one check. Only headers are read. WebP is the exception: Pillow's
    plugin reads the whole file and sizes its canvas when it opens it, so `precheck(width,
    height)` is called first with the size from the file's first bytes, and may raise.
    """
    Image.init()
    prefix = head[:16]
    for fmt in READ_FORMATS:
        if fmt not in Image.OPEN:  # a Pillow built without this codec
            continue
        factory, accept = Image.OPEN[fmt]
        result = not accept or accept(prefix)
        if not result or isinstance(result, str):  # a str is a "looks like it, but unsupported" note
            continue
        if fmt == "WEBP" and precheck is not None and _webp_size(head):
            precheck(*_webp_size(head))
        try:
            f.seek(0)
            return factory(f, None)
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all: Pillow's own rule
    raise UnidentifiedImageError("not an image of a supported format")


def _deep_channels(img: Image.Image, data: bytes) -> Optional[int]:
    """Bits per channel when the file holds more than Pillow keeps in `img.mode`, else None."""
    if img.mode in SIXTEEN_BIT or img.mode == "F":
        return None  # kept whole (or refused by `prepare`)
    if img.format == "PNG" and len(data) >= 26 and data[12:16] == b"IHDR" and data[24] > 8:
        return data[24]  # 16-bit truecolour or grey+alpha, decoded by Pillow to 8 bits
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = max(bits) if isinstance(bits, tuple) else int(bits)
        return bits if bits > 8 else None
    return None


def _png16_colour(img: Image.Image, data: bytes) -> bool:
    """True for a still 16-bit grey+alpha, RGB or RGBA PNG: the files pypng reads and writes whole."""
    return (img.format == "PNG" and len(data) >= 26 and data[12:16] == b"IHDR" and data[24] == 16
            and data[25] in PNG16_COLOUR_TYPES and getattr(img, "n_frames", 1) == 1)


def _lossy_parts(img: Image.Image, data: bytes, keep_deep: bool = False,
                 extras: Optional[jpeg_pictures.Pictures] = None, carried: bool = False) -> List[str]:
    """What restoring and writing this file back would drop, in words; [] when nothing.

    `keep_deep`: a 16-bit colour PNG will be read and written whole with pypng. `extras`: what a
    JPEG holds after its photo, written back after it when `carried` (the output is a JPEG).
    """
    parts = []
    frames = max(getattr(img, "n_frames", 1), 1 + len(extras.data) if extras else 1)  # Pillow counts no gain map
    if frames > 1 and not (carried and extras and extras.data):
        unit = "pages" if img.format == "TIFF" else "frames"
        extra = f"{unit[:-1]} 2" if frames == 2 else f"{unit} 2-{frames}"
        parts.append(f"{extra} of {frames} dropped (only the first is restored)")
    if extras and extras.tail and not carried:
        parts.append(f"{len(extras.tail):,} bytes after the JPEG picture dropped (a motion photo's video or a phone's "
                     "data: only a JPEG keeps them)")
    bits = None if keep_deep else _deep_channels(img, data)
    if bits:
        parts.append(f"{bits}-bit {img.mode} written as 8-bit (Pillow decodes only the top 8 bits)")
    return parts


def _read_png16(f: BinaryIO, orientation: Optional[int]) -> DeepImage:
    """A 16-bit colour PNG's values through pypng, turned as its EXIF orientation says."""
    f.seek(0)
    width, height, rows, meta = png.Reader(file=f).read()
    # Row by row into one array of the final size: pypng's read_flat grows one array of all the
    # values as it goes, and its last growth holds it twice over (12 bytes a pixel for RGB).
    array = np.empty((height, width * meta["planes"]), np.uint16)
    for y, row in enumerate(rows):
        array[y] = row
    array = array.reshape(height, width, meta["planes"])
    turn = _ORIENT.get(orientation or 1)
    array = np.ascontiguousarray(turn(array) if turn else array)
    transparent = meta.get("transparent")
    return DeepImage(array, tuple(transparent) if transparent is not None else None)


@dataclass(frozen=True)
class Header:
    """What an image will hold in memory, as its header tells it before any pixel is decoded
    (runtime/memory.py turns it into bytes)."""

    width: int
    height: int
    mode: str = "RGBA"  # the mode it decodes to ("RGB;16"...: 16-bit colour kept whole); a WebP checked early: RGBA
    format: str = ""  # Pillow's name for the file's format
    held: int = 0  # bytes the decoder holds besides the pixels (a WebP's whole file)
    file_bytes: int = 0  # the file's size
    coefficients: float = 0.0  # a JPEG written back as JPEG: its DCT coefficients per pixel (3 at 4:4:4, 1.5 at 4:2:0)
    turned: bool = False  # that JPEG is turned by its EXIF orientation (its write turns the pixels back)


# Header -> None, or ImageError: the caller's say on whether an image of that size may be decoded
# now (runtime.memory.MemoryGate).
Admit = Callable[[Header], None]


def read_image(path: str | os.PathLike, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               allow_lossy: bool = False, write_format: Optional[str] = None,
               admit: Optional[Admit] = None) -> Tuple[Image.Image, SourceInfo]:
    """Read and decode one image, EXIF orientation applied.

    Only the header is read before the size is checked against `max_pixels` (and `admit`), so a
    decompression bomb, a huge sparse file or a device costs nothing: a file is never read whole
    into memory (except a WebP, which Pillow decodes from memory, and an arithmetic-coded JPEG,
    which its decoder gets whole: their size is checked first), a
    header may claim at most HEADER_READ_LIMIT bytes, and anything but a regular file is refused
    unread.

    Args:
        path: the file.
        max_pixels: refuse images with more pixels than this (None: no limit).
        allow_lossy: restore files that cannot be written back whole (extra frames or pages,
            16-bit colour) from what can be; `SourceInfo.dropped` says what is left out.
        write_format: the Pillow format the result will be written as (None: the source's).
            A 16-bit RGB, RGBA or grey+alpha PNG written as PNG is kept whole: its values are
            in `SourceInfo.deep` (pass them to `prepare`), and the returned image is Pillow's
            8-bit view of it.
        admit: called with the image's `Header` once it is read and checked, before any pixel
            is decoded; raises ImageError to refuse, and may wait until memory is free.

    Returns:
        (decoded image, SourceInfo).

    Raises:
        ImageError: with the reason (empty, unreadable, not an image, too large, truncated...).
        LossyInputError: the file cannot be written back whole and `allow_lossy` is off.
    """
    try:
        f = _open_file(Path(path))
    except FileNotFoundError:
        raise ImageError("no such file (removed since it was listed or named?)") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as e:
        raise ImageError(f"cannot read the file ({e.strerror or type(e).__name__})") from None
    with f:
        img, info = _read_open(f, max_pixels, allow_lossy, write_format, admit)
        info.permissions = stat.S_IMODE(os.fstat(f.fileno()).st_mode)  # of the file read, not of a name
    return img, info


def _read_open(f: BinaryIO, max_pixels: Optional[int], allow_lossy: bool, write_format: Optional[str],
               admit: Optional[Admit]) -> Tuple[Image.Image, SourceInfo]:
    """`read_image` on the opened file: the header checked first, then the pixels and metadata."""
    img, head = _open_checked(f, max_pixels, admit, write_format)
    return img, _decode_source(img, f, head, allow_lossy, write_format)


def _open_checked(f: BinaryIO, max_pixels: Optional[int], admit: Optional[Admit],
                  write_format: Optional[str] = None) -> Tuple[Image.Image, bytes]:
    """The image opened from its header, its size checked (and admitted) before any pixel is
    decoded; returns (the lazily decoding image, the file's first HEAD_BYTES)."""
    size = os.fstat(f.fileno()).st_size
    if not size:
        raise ImageError("empty file (0 bytes)")
    try:
        head = f.read(HEAD_BYTES)
    except OSError as e:
        raise ImageError(f"cannot read the file ({e.strerror or type(e).__name__})") from None
    capped = _CappedFile(f, size, HEADER_READ_LIMIT)

    def check(header: Header) -> None:
        w, h = header.width, header.height
        if max_pixels is not None and w * h > max_pixels:
            raise TooManyPixels(f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} (--max-pixels)", header)
        if w < 1 or h < 1:
            raise ImageError(f"empty image ({w}x{h})")
        if admit is not None:
            admit(header)

    def check_webp(w: int, h: int) -> None:
        check(Header(w, h, format="WEBP", held=size, file_bytes=size))  # Pillow holds the whole file while decoding it
        capped.cap = None

    try:
        img = _open(capped, head, check_webp)
    except ImageError:
        raise
    except UnidentifiedImageError:
        precision = (jpeg_blocks.frame(head) or (0, 8))[1]
        raise ImageError(f"a {precision}-bit JPEG: only 8-bit JPEGs are read" if precision != 8
                         else "not a PNG, JPEG, WebP, BMP or TIFF image, nor a GIF") from None
    except Image.DecompressionBombError as e:  # a plugin's own check (GIF frames), above twice Pillow's limit
        raise ImageError(f"refused as a decompression bomb ({one_line(e, with_type=False)})") from None
    except Exception as e:  # Pillow raises SyntaxError, struct.error, ... for broken headers
        raise ImageError(f"unreadable image header ({one_line(e)})") from None
    if img.format != "WEBP" or capped.cap is not None:  # a WebP checked before it was opened is not checked twice
        check(_header(img, head, size, write_format))
    capped.cap = None  # the image data is read as the decoder needs it, into memory it has sized
    return img, head


def _header(img: Image.Image, head: bytes, size: int, write_format: Optional[str]) -> Header:
    """What `img`, opened but not decoded, will hold: the mode it decodes to, its file's size and,
    for a JPEG written back as JPEG (block by block), its coefficients per pixel."""
    mode = img.mode
    if write_format in (None, "PNG") and _png16_colour(img, head):
        mode = {"LA": "LA;16", "RGB": "RGB;16", "RGBA": "RGBA;16"}.get(mode, mode)
    coefficients, turned = 0.0, False
    layers = getattr(img, "layer", None) if img.format in JPEG_FORMATS else None
    if write_format in (None, "JPEG") and layers:
        h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
        coefficients = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
        turned = img.getexif().get(0x0112) in _ORIENT  # read from the header's APP1, nothing decoded
    whole = img.format == "WEBP" or (img.format in JPEG_FORMATS and jpeg_blocks.arithmetic(head))
    return Header(img.width, img.height, mode, img.format or "", held=size if whole else 0,
                  file_bytes=size, coefficients=coefficients, turned=turned)


def lossless_source(img: Image.Image, f: Optional[BinaryIO] = None) -> bool:
    """Whether `img`'s pixels are exactly those its file was saved from: a PNG, BMP or GIF, a TIFF
    not compressed as JPEG, or a WebP whose file `f` says it is lossless (without `f`, not known:
    False)."""
    if img.format == "WEBP":
        return f is not None and _webp_lossless(f)
    if img.format == "TIFF":
        return img.info.get("compression") not in LOSSY_TIFF_COMPRESSION
    return img.format in ("PNG", "BMP", "GIF")


# Lossy WebP (VP8) codes chroma at half size both ways, as a 4:2:0 JPEG does (Pillow's JPEG code 2).
LOSSY_WEBP_SUBSAMPLING = 2


def chroma_subsampling(fmt: Optional[str], lossless: bool, jpeg_subsampling: Optional[int]) -> Optional[int]:
    """How a file of format `fmt` subsampled its chroma, in Pillow's JPEG codes (0: 4:4:4, 1: 4:2:2,
    2: 4:2:0): a JPEG's own (`jpeg_subsampling`), 4:2:0 for a WebP not known to be lossless; for
    any other file None, none known (a TIFF compressed as JPEG does not say)."""
    if fmt == "WEBP" and not lossless:
        return LOSSY_WEBP_SUBSAMPLING
    return jpeg_subsampling


def _decode_source(img: Image.Image, f: BinaryIO, head: bytes, allow_lossy: bool,
                   write_format: Optional[str]) -> SourceInfo:
    """Decode `img`'s pixels (orientation applied) and describe its source: what a write-back keeps."""
    info = SourceInfo(format=img.format)
    info.lossless = lossless_source(img, f)
    keep_deep = write_format in (None, "PNG") and _png16_colour(img, head)
    extras = None  # what a JPEG holds besides its photo, read before the EXIF is rewritten without
    if img.format in JPEG_FORMATS:  # its orientation (and its thumbnail)
        info.exif_thumbnail = jpeg_pictures.exif_thumbnail(img.info.get("exif"))
        info.photoshop_thumbnail = next(filter(None, (jpeg_pictures.photoshop_thumbnail(body) for app, body
                                                      in getattr(img, "applist", []) if app == "APP13")), None)
        info.xmp_thumbnail = xmp_thumbnail.read(img.info.get("xmp"))
        extras = jpeg_pictures.read(f, mpf="mp" in img.info)
    carried = extras is not None and write_format in (None, "JPEG")
    if carried:  # written back after the restored photo
        info.pictures = extras
        info.notes.append(extras.describe())
    info.dropped = _lossy_parts(img, head, keep_deep, extras, carried)
    if info.dropped and not allow_lossy:
        raise LossyInputError(f"cannot be written back whole: {'; '.join(info.dropped)}; refused (--allow-lossy writes it anyway)")
    info.notes.extend(f"lossy: {part}" for part in info.dropped)
    if img.format in JPEG_FORMATS and jpeg_blocks.arithmetic(head):
        # libjpeg's arithmetic decoder cannot wait for more data, and Pillow hands the decoder a
        # file 64 kB at a time: past that the stream read as broken. So it gets the whole file at
        # once (held while it decodes: counted in `_header`).
        img.decodermaxblock = max(img.decodermaxblock, os.fstat(f.fileno()).st_size + 1)
    try:
        img.load()
        if keep_deep:
            info.deep = _read_png16(f, img.getexif().get(0x0112))
        # Rotate/flip the pixels as EXIF says, and drop the tag so no viewer applies it twice.
        turn = img.getexif().get(0x0112)
        info.orientation = turn if turn in _ORIENT else 1  # the values Pillow turns by
        ImageOps.exif_transpose(img, in_place=True)  # no copy of untagged images
    except Exception as e:  # truncated streams raise OSError; broken chunks SyntaxError, ValueError...
        raise ImageError(f"truncated or corrupt image data ({one_line(e)})") from None
    meta.capture(img, f, info)  # EXIF, ICC, DPI, XMP, JPEG tables, PNG chunks, TIFF tags
    return info


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
    lost = meta.lost(source, fmt, data, image.mode, icc_reason)
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
    return Encoded(data, mode, None, meta.lost(source, "JPEG", data, mode, icc_reason), kept)


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
        back = _UNTURN[source.orientation]
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
            if not any(x.startswith(("TIFF tag", "EXIF")) for x in meta.lost(source, "TIFF", data, image.mode)):
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
