"""A PNG cut short and closed again is refused, not restored with the rows it lacks black.

Pillow takes such a file as whole and does not say so. A PNG's pixels are
one zlib stream split over its IDAT chunks. Pillow stops at the end of that stream and takes the
image as whole even when the stream ends before the last row, so a file cut short and closed
again (an upload stopped and its chunks written out, a tool that wrote the first rows only)
decoded with its missing rows as zeros, and came back "restored" with a black band where the
photo was. A 429-byte file saying 12000×12000 decoded to 144 Mpx of black and was run through the
model for seven minutes. `missing_bytes` inflates the stream again, counting what it holds
without keeping it, and compares that with what the header's size, bit depth, colour type and
interlacing need (filter bytes included), with no memory beyond a block of output at a time.
That inflate costs about 0.18 s on a 12 Mpx photo (0.30 s to decode it; AMD EPYC, AVX2), so it
runs only where a cut could be: where the last row decoded is all zero bytes (Pillow's image
starts zeroed, and a cut leaves the rows after it so) or the file is interlaced (a cut there
leaves later passes out, whose pixels are spread over every row).

A JPEG cut short and closed with an end marker is refused too. libjpeg decodes the blocks it
lacks with zero coefficients (exactly mid-grey) and warns only on the C library's own stderr, which
neither Pillow nor jpeglib hands to Python. Read from the pixels, that grey run to the end is also
what a collage on a mid-grey ground and a crop in a grey frame look like (14 of the 378 framed,
collage and clean JPEG files of benchmarks/photo_eval.py, selection and evaluation, 4 a photo, read
so, and none was cut). So `jpeg_problem` decodes the file once more with libjpeg-turbo through
simplejpeg, which raises libjpeg's warnings as errors, at an eighth of its size (the entropy
decoding, where data is found missing, is whole; the inverse transforms an eighth each way): about
0.03 s on a 12 Mpx photo (0.25 s for Pillow's decode; AMD EPYC, AVX2). It refuses only the
warnings that mean pixels are not in the file (DATA_LOST); the others (a few bytes left before
the end marker, as some cameras leave) leave the file to Pillow's decode, as before.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO, Optional

from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type: grey, RGB, palette, grey + alpha, RGBA
# Adam7's seven passes: (first column, first row, column step, row step).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
BLOCK = 1 << 20  # bytes of inflated output held at a time


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
            if kind == b"IHDR" and length == 13:
                width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", f.read(13))
                if colour not in CHANNELS:
                    return 0
                need = needed_bytes(width, height, depth, colour, interlace == 1)
            elif kind == b"IDAT":
                got += _chunk_inflated(f, inflate, length)
                if inflate.eof:
                    break
            elif kind == b"IEND":
                break
            else:
                f.seek(length, 1)  # another chunk: not read
            f.seek(4, 1)  # the CRC
        return max(0, need - got) if need is not None else 0
    except (OSError, zlib.error, struct.error):
        return 0
    finally:
        f.seek(start)


def _chunk_inflated(f: BinaryIO, inflate, length: int) -> int:
    """The bytes the next `length` bytes of `f` (an IDAT's data) inflate to, read and inflated a
    BLOCK at a time (one IDAT may hold a whole photo, and a few bytes can inflate to gigabytes);
    `f` is left at the chunk's end."""
    n, end = 0, f.tell() + length
    while f.tell() < end and not inflate.eof:
        data = f.read(min(BLOCK, end - f.tell()))
        if not data:
            break
        while data and not inflate.eof:
            n += len(inflate.decompress(data, BLOCK))
            data = inflate.unconsumed_tail
    f.seek(end)
    return n


def problem(img: Image.Image, f: BinaryIO) -> Optional[str]:
    """Why a decoded PNG or JPEG was cut short, or None (any other format: None)."""
    if img.format == "PNG" and _could_be_cut(img) and (short := missing_bytes(f)):
        return f"truncated image data: its pixels end {short:,} bytes before its last row"
    if img.format in ("JPEG", "MPO"):
        return jpeg_problem(f)
    return None


# libjpeg's warnings that mean the coded data of some blocks is not in the file (jerror.h:
# JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE, JWRN_ARITH_BAD_CODE, JWRN_MUST_RESYNC), with what to call it.
DATA_LOST = {"premature end of data segment": "truncated image data", "bad Huffman code": "corrupt image data",
             "bad arithmetic code": "corrupt image data", "instead of RST": "corrupt image data"}


def jpeg_problem(f: BinaryIO) -> Optional[str]:
    """Why the JPEG in `f` lacks coded data (libjpeg's own words), or None: whole, or a problem
    Pillow's decode already answers, or simplejpeg not installed (no wheel for the platform). The
    file's position is kept."""
    try:
        import simplejpeg
    except ImportError:
        return None
    start = f.tell()
    try:
        f.seek(0)
        data = f.read()
        space = simplejpeg.decode_jpeg_header(data)[2]
        simplejpeg.decode_jpeg(data, colorspace="CMYK" if space in ("CMYK", "YCCK") else "GRAY",
                               min_factor=8, min_height=1, min_width=1, strict=True)
    except ValueError as e:
        said = str(e)
        for words, kind in DATA_LOST.items():
            if words in said:
                return f"{kind}: libjpeg reads \"{said}\""
    except Exception:  # noqa: BLE001 - anything else is Pillow's to answer (it decoded the file)
        pass
    finally:
        f.seek(start)
    return None


def _could_be_cut(img: Image.Image) -> bool:
    """A decoded PNG whose last row is all zero bytes, or an interlaced one (module docstring)."""
    if img.info.get("interlace"):
        return True
    return not img.crop((0, img.height - 1, img.width, img.height)).tobytes().strip(b"\0")
