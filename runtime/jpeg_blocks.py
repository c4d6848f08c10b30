"""A restored JPEG written back block by block: what the restoration did not touch keeps its bytes.

A JPEG stores each 8×8 block of each component as quantized DCT coefficients. Re-encoding a
whole restored photo, even with the source's own tables and subsampling, quantizes every block
again: the pixels far from any damage drift by a level or two, and the colour planes, which a
decoder smooths when it scales them up and an encoder box-averages when it scales them down,
drift further. On the selection photos that cost 0.25–1.1 dB of whole-image PSNR, most of it on
photos with little damage (`benchmarks/results/jpeg-blocks.md`).

So a JPEG source is written back the way lossless JPEG editors (jpegtran) work: its coefficients
are read as they are (jpeglib, libjpeg's coefficient interface), the blocks whose pixels the
restoration changed are replaced by the restored pixels' own coefficients, computed here with the
source's quantization tables and sampling factors, and the coefficients are entropy-coded again.
Every other block decodes exactly as it did in the source; only pixels next to a replaced colour
block can move, by the decoder's smoothing of the colour plane across the block edge.

The rest of the file (EXIF, ICC, XMP, comments, other APPn segments) is whatever the regular
writer made of the source's metadata: its segments are spliced in front of the new coefficients.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

try:  # x86-64 and macOS wheels; elsewhere the whole image is re-encoded (runtime/images.py)
    import jpeglib
except ImportError:  # pragma: no cover - exercised only where jpeglib has no wheel
    jpeglib = None

# The orthonormal 8-point DCT-II: JPEG's forward DCT of a block B is D @ B @ D.T.
_N = np.arange(8)
DCT = np.sqrt(2 / 8) * np.cos(np.pi * (2 * _N[None, :] + 1) * _N[:, None] / 16)
DCT[0] /= np.sqrt(2)

# JFIF's full-range RGB → YCbCr (ITU-R BT.601), rows Y, Cb, Cr.
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
YCC_OFFSET = np.array([0.0, 128.0, 128.0])

# Markers that hold metadata rather than pixels: APP0-APP15 and COM.
_META = set(range(0xE0, 0xF0)) | {0xFE}


def available() -> bool:
    return jpeglib is not None


def rewrite(source: bytes, image: np.ndarray, changed: np.ndarray, written: bytes) -> Optional[Tuple[bytes, float]]:
    """The JPEG `source` with the blocks that hold `changed` pixels re-coded from `image`.

    Args:
        source: the JPEG file as it was read (not turned by an EXIF orientation).
        image: (H, W, 3) RGB or (H, W) grey uint8, the restored image, equal to the source's
            decoded pixels where `changed` is False.
        changed: (H, W) bool, the pixels the restoration replaced.
        written: the same image as the regular writer encoded it; its metadata segments are
            the output's.

    Returns:
        (the new file's bytes, the share of blocks kept as they were), or None when this source cannot be rewritten block by block (no
        jpeglib here, arithmetic coding, CMYK, a size that does not match...): the caller keeps
        `written`.
    """
    if jpeglib is None:
        return None
    with tempfile.TemporaryDirectory(prefix="restore-jpeg-") as tmp:
        src, out = Path(tmp) / "source.jpg", Path(tmp) / "out.jpg"
        src.write_bytes(source)
        try:
            jpeg = jpeglib.read_dct(str(src))
            planes = _planes(jpeg, image)
        except (OSError, ValueError, RuntimeError):  # a stream libjpeg's coefficient reader refuses
            return None
        if planes is None:
            return None
        blocks = recoded = 0
        for name, factors, table in planes:
            coefficients = getattr(jpeg, name).copy()  # (blocks down, blocks across, 8, 8) int16
            touched = _touched(changed, factors, coefficients.shape[:2])
            coefficients[touched] = _code_blocks(image, name, factors, touched, jpeg.qt[table])
            setattr(jpeg, name, coefficients)
            blocks, recoded = blocks + touched.size, recoded + int(touched.sum())
        if recoded == blocks:  # nothing to keep: the regular writer's file (progressive when the source was)
            return None
        # Huffman tables made for these coefficients: the source's may lack codes for the new ones.
        # One sequential scan: libjpeg's coefficient writer has no progressive mode.
        jpeg.write_dct(str(out), flags=["+OPTIMIZE_CODING"])
        return splice(written, out.read_bytes()), 1.0 - recoded / blocks


def _planes(jpeg, image: np.ndarray) -> Optional[List[Tuple[str, Tuple[int, int], int]]]:
    """[(component, (rows, columns) of pixels per coefficient, quantization table)], or None
    when the source is not an 8-bit YCbCr or grey JPEG of `image`'s size."""
    grey = image.ndim == 2
    space = str(jpeg.jpeg_color_space)
    if (jpeg.height, jpeg.width) != image.shape[:2] or \
            not space.endswith("GRAYSCALE" if grey else "YCbCr"):
        return None
    names = ["Y"] if grey else ["Y", "Cb", "Cr"]
    samp = np.asarray(jpeg.samp_factor).reshape(-1, 2)  # (vertical, horizontal) per component
    if len(samp) != len(names):
        return None
    v_max, h_max = samp[:, 0].max(), samp[:, 1].max()
    out = []
    for i, name in enumerate(names):
        v, h = samp[i]
        if v_max % v or h_max % h:  # a factor that does not divide the largest: not written by any camera
            return None
        out.append((name, (int(v_max // v), int(h_max // h)), int(jpeg.quant_tbl_no[i])))
    return out


def _touched(changed: np.ndarray, factors: Tuple[int, int], blocks: Tuple[int, int]) -> np.ndarray:
    """(blocks down, blocks across) bool: the blocks of one component holding a changed pixel."""
    fy, fx = factors
    rows, cols = blocks[0] * 8 * fy, blocks[1] * 8 * fx
    grid = np.zeros((rows, cols), bool)
    h, w = min(rows, changed.shape[0]), min(cols, changed.shape[1])
    grid[:h, :w] = changed[:h, :w]
    return grid.reshape(blocks[0], 8 * fy, blocks[1], 8 * fx).any(axis=(1, 3))


def _code_blocks(image: np.ndarray, name: str, factors: Tuple[int, int], touched: np.ndarray,
                 table: np.ndarray) -> np.ndarray:
    """(N, 8, 8) int16: the quantized coefficients of the touched blocks of component `name`.

    As libjpeg codes them: the image padded at its right and bottom edges by repeating the last
    pixels, converted to YCbCr, a colour plane box-averaged over its sampling factors, the block
    level-shifted by 128, transformed, divided by the table and rounded (ties aside, libjpeg's
    integer DCT gives the same numbers; a coefficient may differ by one).
    """
    fy, fx = factors
    by, bx = np.nonzero(touched)
    # (N, 8·fy, 8·fx, C) pixel tiles, gathered block by block so that only touched ones are read
    ys = (by[:, None] * 8 * fy + np.arange(8 * fy)[None, :]).clip(max=image.shape[0] - 1)
    xs = (bx[:, None] * 8 * fx + np.arange(8 * fx)[None, :]).clip(max=image.shape[1] - 1)
    tiles = image[ys[:, :, None], xs[:, None, :]].astype(np.float64)
    if image.ndim == 3:
        row = {"Y": 0, "Cb": 1, "Cr": 2}[name]
        tiles = tiles @ YCC[row] + YCC_OFFSET[row]  # (N, 8·fy, 8·fx)
    n = len(by)
    tiles = tiles.reshape(n, 8, fy, 8, fx).mean(axis=(2, 4)) - 128.0  # (N, 8, 8)
    coefficients = DCT @ tiles @ DCT.T
    return np.round(coefficients / table).astype(np.int16)


def splice(written: bytes, coded: bytes) -> bytes:
    """`written`'s metadata segments followed by `coded`'s tables, frame and scans."""
    return b"\xff\xd8" + b"".join(written[a:b] for a, b in _meta_segments(written)) + coded[_first_non_meta(coded):]


def _meta_segments(data: bytes) -> List[Tuple[int, int]]:
    """(start, end) of each metadata segment before the first scan."""
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            break
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _META:
            out.append((i, end))
        i = end
    return out


def _first_non_meta(data: bytes) -> int:
    """Where `data`'s first segment that is not metadata starts (its tables, frame or scan)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] in _META:
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return i
