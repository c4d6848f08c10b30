"""A file cut short and closed again is refused, not restored with what it lacks filled in.

Two codecs take such a file as whole, and neither says so to Python:

- **PNG.** A PNG's pixels are one zlib stream split over its IDAT chunks. Pillow stops at the end
  of that stream and takes the image as whole even when the stream ends before the last row, so
  a file cut short and closed again (an upload stopped and its chunks written out, a tool that
  wrote the first rows only) decoded with its missing rows as zeros, and came back "restored"
  with a black band where the photo was. A 429-byte file saying 12000×12000 decoded to 144 Mpx of
  black and was run through the model for seven minutes. `missing_bytes` inflates the stream
  again, counting what it holds without keeping it, and compares that with what the header's
  size, bit depth, colour type and interlacing need (filter bytes included): one more inflate of
  the file's data, a fraction of its decode, and no memory beyond a block of output at a time.
- **JPEG.** libjpeg, meeting the end of the data before the last block ("premature end of data
  segment", a warning written to the C library's stderr, never raised), decodes every block left
  with zero coefficients: exactly mid-grey, 128 in every channel. `grey_tail` reads the bottom
  `TAIL_ROWS` rows as decoded (before any EXIF turn): a sequential JPEG cut anywhere above its last
  block row leaves them all exactly 128. A photo's last rows are never one exact level; a graphic
  whose whole bottom strip is exactly #808080 would be refused too, which is why the strip is the
  full width and not a corner. A progressive JPEG cut short keeps its earlier scans' coarse picture
  and is not caught.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, Optional

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type: grey, RGB, palette, grey + alpha, RGBA
# Adam7's seven passes: (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
BLOCK = 1 << 20  # bytes of inflated output held at a time
TAIL_ROWS = 8  # a JPEG's bottom rows read for libjpeg's mid-grey fill: one block row
MID_GREY = 128  # what a block of zero coefficients decodes to, in every channel


def needed_bytes(width: int, height: int, bit_depth: int, colour_type: int, interlaced: bool) -> int:
    """The bytes the inflated stream must hold: each row of each pass, with its filter byte."""
    bits = CHANNELS[colour_type] * bit_depth  # per pixel
    passes = ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        cols, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)  # ceil, 0 where the pass is empty
        if cols > 0 and rows > 0:
            total += rows * (1 + (cols * bits + 7) // 8)
    return total


def missing_bytes(f: BinaryIO) -> int:
    """How many bytes the PNG in `f` lacks of its pixel data (0 when it holds them all, or when
    its chunks cannot be walked: Pillow, which read them first, says what is wrong then). The
    file's position is kept."""
    start = f.tell()
    try:
        f.seek(0)
        if f.read(8) != SIGNATURE:
            return 0
        need, inflate, got = None, zlib.decompressobj(), 0
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            body = f.read(length)
            f.seek(4, 1)  # the CRC
            if kind == b"IHDR" and len(body) == 13:
                width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
                if colour not in CHANNELS:
                    return 0
                need = needed_bytes(width, height, depth, colour, interlace == 1)
            elif kind == b"IDAT":
                got += _inflated(inflate, body)
                if inflate.eof:
                    break
            elif kind == b"IEND":
                break
        return max(0, need - got) if need is not None else 0
    except (OSError, zlib.error, struct.error):
        return 0
    finally:
        f.seek(start)


def _inflated(inflate, data: bytes) -> int:
    """The bytes `data` inflates to, in blocks of BLOCK (a small chunk can inflate to gigabytes)."""
    n = 0
    while data and not inflate.eof:
        n += len(inflate.decompress(data, BLOCK))
        data = inflate.unconsumed_tail
    return n


def grey_tail(img: Image.Image) -> bool:
    """Whether a decoded JPEG's bottom `TAIL_ROWS` rows are all exactly mid-grey, as libjpeg fills
    a file whose data ends early (module docstring). Grey and colour JPEGs; False for others."""
    if img.mode not in ("L", "RGB") or img.height < 2 * TAIL_ROWS:
        return False
    tail = np.asarray(img.crop((0, img.height - TAIL_ROWS, img.width, img.height)))
    return bool((tail == MID_GREY).all())


def problem(img: Image.Image, f: BinaryIO) -> Optional[str]:
    """Why a decoded PNG or JPEG (before any EXIF turn) was cut short, or None."""
    if img.format == "PNG" and (short := missing_bytes(f)):
        return f"truncated image data: its pixels end {short:,} bytes before its last row"
    if img.format == "JPEG" and grey_tail(img):
        return (f"truncated image data: its last {TAIL_ROWS} rows are exactly mid-grey, as a JPEG whose data "
                "ends early decodes")
    return None
