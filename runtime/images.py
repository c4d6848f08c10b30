"""What the runtime knows of an image and its file: the formats it reads and writes, the errors
that refuse an input, and what the writer must know of the source (`SourceInfo`).

An image goes through five modules, each one step:

| module | step |
| --- | --- |
| runtime/image_read.py | a file to a decoded Pillow image and its `SourceInfo`, the header checked before any pixel is decoded |
| runtime/image_pixels.py | the image to the model's RGB view (`prepare`) and the result back into the source's own mode (`finish`) |
| runtime/image_write.py | the result encoded in the source's terms: a JPEG's tables and blocks, metadata (`encode_image`) |
| runtime/image_metadata.py | EXIF, ICC, XMP, PNG chunks, TIFF tags, JPEG tables: captured on read, written back |
| runtime/metadata_lost.py | the written file read back: what it lost of the source's metadata, and why |

The rule everywhere: the network sees an RGB view of the image, and the result is put back *into
the source's representation* only where the mask says so; every pixel outside the mask keeps its
original value (palette index, 16-bit level, CMYK ink, alpha) bit for bit.

Torch-free: numpy, pillow and pypng only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from runtime import jpeg_pictures
from runtime.image_metadata import JpegCoding

# Pillow's format names for the formats we read and write, and their file suffixes.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF", "tif": "TIFF"}
SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
FORMAT_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
# Modes each writer stores as they are; anything else is converted by `image_write.writable`.
WRITABLE_MODES = {
    "PNG": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"},
    "JPEG": {"L", "RGB", "CMYK"},
    "WEBP": {"RGB", "RGBA"},
    "BMP": {"1", "L", "P", "RGB", "RGBA"},
    "TIFF": {"1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"},
}
# Formats we decode: every writable one, and GIF (read only: runtime/image_read.py says why).
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
ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
# And back: the source's own grid from the turned pixels, (H, W[, C]).
UNTURN = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


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
    exif_raw: Optional[bytes] = None  # an EXIF block Pillow cannot read whole, as it came (runtime/exif_raw.py)
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



# Lossy WebP (VP8) codes chroma at half size both ways, as a 4:2:0 JPEG does (Pillow's JPEG code 2).
LOSSY_WEBP_SUBSAMPLING = 2


def chroma_subsampling(fmt: Optional[str], lossless: bool, jpeg_subsampling: Optional[int]) -> Optional[int]:
    """How a file of format `fmt` subsampled its chroma, in Pillow's JPEG codes (0: 4:4:4, 1: 4:2:2,
    2: 4:2:0): a JPEG's own (`jpeg_subsampling`), 4:2:0 for a WebP not known to be lossless; for
    any other file None, none known (a TIFF compressed as JPEG does not say)."""
    if fmt == "WEBP" and not lossless:
        return LOSSY_WEBP_SUBSAMPLING
    return jpeg_subsampling
