"""A restored JPEG written back block by block: what the restoration did not touch keeps its bytes.

A JPEG stores each 8×8 block of each component as quantized DCT coefficients. Re-encoding a
whole restored photo, even with the source's own tables and subsampling, quantizes every block
again: the pixels far from any damage drift by a level or two, and the colour planes, which a
decoder smooths when it scales them up and an encoder box-averages when it scales them down,
drift further. On the selection photos that cost 0.3–1.1 dB of whole-image PSNR, most of it on
photos with little damage (docs/restoring.md, "A JPEG written back block by block").

So a JPEG source is written back the way lossless JPEG editors (jpegtran) work: its coefficients
are read as they are (jpeglib, libjpeg's coefficient interface), the blocks whose pixels the
restoration changed are replaced by the restored pixels' own coefficients, computed here with the
source's quantization tables and sampling factors, and the coefficients are entropy-coded again.
Every other block decodes exactly as it did in the source; only pixels next to a replaced colour
block can move, by the decoder's smoothing of the colour plane across the block edge.

libjpeg's coefficient writer codes one sequential scan. A progressive source's file is made
progressive again from those coefficients, losslessly, by mozjpeg's jpegtran (the same
coefficients in progressive scans, with Huffman tables made for them), so it comes back as it came.

The rest of the file (EXIF, ICC, XMP, comments, other APPn segments) is whatever the regular
writer made of the source's metadata: its segments are spliced in front of the new coefficients.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

try:  # x86-64 and macOS wheels; elsewhere the whole image is re-encoded (runtime/image_write.py)
    import jpeglib
except ImportError:  # pragma: no cover - exercised only where jpeglib has no wheel
    jpeglib = None
try:  # wheels where jpeglib has them
    import mozjpeg_lossless_optimization as mozjpeg
except ImportError:  # pragma: no cover - a progressive source then comes back sequential
    mozjpeg = None

# The orthonormal 8-point DCT-II: JPEG's forward DCT of a block B is D @ B @ D.T, which on the
# block's 64 pixels flattened row by row is one matrix, kron(D, D).
_N = np.arange(8)
DCT = np.sqrt(2 / 8) * np.cos(np.pi * (2 * _N[None, :] + 1) * _N[:, None] / 16)
DCT[0] /= np.sqrt(2)
KRON = np.kron(DCT, DCT)  # (64 coefficients, 64 pixels)

# How a colour JPEG's three components code RGB: JFIF's full-range YCbCr (ITU-R BT.601), rows Y,
# Cb, Cr; or RGB itself, an Adobe file's transform 0 (Photoshop's and cjpeg -rgb's, for scans and
# prints that must keep every channel at full resolution).
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
YCC_OFFSET = np.array([0.0, 128.0, 128.0])
CONVERSIONS = {"YCbCr": (YCC, YCC_OFFSET), "RGB": (np.eye(3), np.zeros(3))}
COMPONENT = {"Y": 0, "Cb": 1, "Cr": 2}  # jpeglib's names of the first, second and third component
# Per component, pixels to coefficients in one product: (64 pixels × 3 channels, 64 coefficients)
# for a colour component (the colour conversion folded in), (64, 64) for grey; and what the
# conversion's offset less JPEG's level shift of 128 adds (to the DC coefficient alone). Keyed
# (colour space, component).
WEIGHTS = {(space, row): (KRON.T[:, None, :] * m[row][None, :, None]).reshape(192, 64).astype(np.float32)
           for space, (m, _) in CONVERSIONS.items() for row in range(3)}
WEIGHTS["GRAYSCALE", 0] = KRON.T.astype(np.float32)
SHIFT = {(space, row): ((offset[row] - 128.0) * KRON.sum(axis=1)).astype(np.float32)
         for space, (_, offset) in CONVERSIONS.items() for row in range(3)}
SHIFT["GRAYSCALE", 0] = (-128.0 * KRON.sum(axis=1)).astype(np.float32)
CHUNK = 4096  # blocks coded at a time: a few MB of float tiles, whatever the image's size

# The Adobe segment (APP14) libjpeg writes for a file coded in RGB: version 100, no flags, colour
# transform 0 (none). Without it a decoder takes three components for YCbCr.
ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"

# The colour spaces jpeglib reads a file this module rewrites in (its reading of three components
# is not trusted: `colour_coding`).
CODED = ("YCbCr", "RGB", "GRAYSCALE")
# Markers that hold metadata rather than pixels: APP0-APP15 and COM; and those that start a frame
# (SOF0-SOF15 but DHT, JPG and DAC).
_META = set(range(0xE0, 0xF0)) | {0xFE}
_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_ARITHMETIC = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # SOF9-11, SOF13-15


def available() -> bool:
    return jpeglib is not None


def rewrite(source: bytes, image: np.ndarray, changed: np.ndarray, written: bytes) -> Optional[Tuple[bytes, float]]:
    """The JPEG `source` with the blocks that hold `changed` pixels re-coded from `image`.

    Args:
        source: the JPEG file as it was read.
        image: (H, W, 3) RGB or (H, W) grey uint8, the restored image on the source's grid (not
            turned by an EXIF orientation), equal to the source's decoded pixels where `changed`
            is False.
        changed: (H, W) bool, the pixels the restoration replaced.
        written: the same image as the regular writer encoded it; its metadata segments are
            the output's.

    Returns:
        (the new file's bytes, the share of blocks kept as they were), or None when this source
        cannot be rewritten block by block (no jpeglib here, arithmetic coding, CMYK, a size that
        does not match...) or no block can be kept: the caller keeps `written`.
    """
    if jpeglib is None or arithmetic(source):  # libjpeg 6b, jpeglib's, reads no arithmetic coding
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
        space = colour_coding(source) if image.ndim == 3 else "GRAYSCALE"
        blocks, recoded = _recode(jpeg, planes, space, image, changed)
        if recoded == blocks:  # nothing to keep: the regular writer's file (progressive when the source was)
            return None
        # Huffman tables made for these coefficients (libjpeg's second pass over them: 1 to 3 ms a
        # megapixel, no more memory; the file 5-9 % smaller than with its standard tables:
        # benchmarks/results/jpeg-write.md). One sequential scan: its coefficient writer has no
        # progressive mode.
        for name in {name for names in planes.values() for name, _ in names}:
            setattr(jpeg, name, getattr(jpeg, name).view(_Coefficients))
        progressive = bool(jpeg.progressive_mode)
        jpeg.write_dct(str(out), flags=["+OPTIMIZE_CODING"])
        del jpeg  # its coefficients, before jpegtran reads the file's into its own
        coded = out.read_bytes()
        if progressive:
            coded = as_progressive(coded)
        # Coded in RGB: the Adobe segment that says so, and not JFIF's, which says YCbCr.
        return splice(written, coded, ADOBE_RGB if space == "RGB" else b""), 1.0 - recoded / blocks


def _recode(jpeg, planes: Dict[Tuple[int, int], List[Tuple[str, int]]], space: str, image: np.ndarray,
            changed: np.ndarray) -> Tuple[int, int]:
    """Replace, in place in `jpeg`, the coefficients of every block that holds a `changed` pixel by
    `image`'s own, coded in `space`; returns (blocks in all, blocks re-coded)."""
    fine = _block_grid(changed)
    blocks = recoded = 0
    for factors, names in planes.items():
        touched = _coarser(fine, factors, getattr(jpeg, names[0][0]).shape[:2])
        components = [((space, COMPONENT[name]), jpeg.qt[table]) for name, table in names]
        by, bx = np.nonzero(touched)
        for i in range(0, len(by), CHUNK):
            coded = _code_blocks(image, factors, by[i:i + CHUNK], bx[i:i + CHUNK], components)
            for (name, _), c in zip(names, coded):  # (blocks down, blocks across, 8, 8) int16, in place
                getattr(jpeg, name)[by[i:i + CHUNK], bx[i:i + CHUNK]] = c
        blocks, recoded = blocks + touched.size * len(names), recoded + len(by) * len(names)
    return blocks, recoded


def as_progressive(coded: bytes) -> bytes:
    """A sequential JPEG's coefficients in progressive scans (mozjpeg's lossless transcoding, as
    `jpegtran -progressive -optimize`): the same coefficients, so the same pixels; `coded` as it is
    where mozjpeg has no wheel or refuses the stream."""
    if mozjpeg is None:  # pragma: no cover - exercised only where the wheel is missing
        return coded
    try:
        return mozjpeg.optimize(coded)
    except ValueError:  # pragma: no cover - a stream libjpeg itself just wrote
        return coded


class _Coefficients(np.ndarray):
    """A component's int16 coefficients as handed to jpeglib's `write_dct`, which copies each one
    with `astype(np.int16)` before libjpeg copies it again into its own arrays: already int16 and
    contiguous, this view skips the first copy (a 24 Mpx 4:4:4 photo's coefficients are 144 MB a
    copy, the write's peak)."""

    def astype(self, dtype, *args, **kwargs):
        if np.dtype(dtype) == self.dtype and self.flags.c_contiguous and not args and not kwargs:
            return self
        return super().astype(dtype, *args, **kwargs)


def _planes(jpeg, image: np.ndarray) -> Optional[Dict[Tuple[int, int], List[Tuple[str, int]]]]:
    """{(rows, columns) of pixels per coefficient: [(component, quantization table)]}, or None
    when the source is not an 8-bit JPEG of `image`'s size with its components (three, one for grey)."""
    if (jpeg.height, jpeg.width) != image.shape[:2] or str(jpeg.jpeg_color_space).split("JCS_")[-1] not in CODED:
        return None
    names = ["Y"] if image.ndim == 2 else ["Y", "Cb", "Cr"]
    samp = np.asarray(jpeg.samp_factor).reshape(-1, 2)  # (vertical, horizontal) per component
    if len(samp) != len(names):
        return None
    v_max, h_max = samp[:, 0].max(), samp[:, 1].max()
    out: Dict[Tuple[int, int], List[Tuple[str, int]]] = {}
    for i, name in enumerate(names):
        v, h = samp[i]
        if v_max % v or h_max % h:  # a factor that does not divide the largest: not written by any camera
            return None
        out.setdefault((int(v_max // v), int(h_max // h)), []).append((name, int(jpeg.quant_tbl_no[i])))
    return out


def colour_coding(data: bytes) -> str:
    """'RGB' or 'YCbCr': what a three-component JPEG's components code, decided as libjpeg decides
    it when it decodes the file (Pillow's decoder, and browsers'): YCbCr where a JFIF segment says
    so, else as an Adobe segment's transform flag says (0: RGB), else RGB where the components are
    named 'R', 'G', 'B'. jpeglib's reader saves Adobe segments instead of reading them, so it takes
    a file coded in RGB whose components are numbered 1, 2, 3 for YCbCr: its word is not used."""
    jfif, transform, ids = False, None, b""
    for marker, a, b in segments(data):
        if marker == 0xE0 and data[a + 4:a + 9] == b"JFIF\0":
            jfif = True
        elif marker == 0xEE and data[a + 4:a + 9] == b"Adobe" and b - a >= 16:
            transform = data[a + 15]  # the last one read counts, as in libjpeg
        elif marker in _FRAMES and b - a >= 10:
            ids = data[a + 10:b:3][:data[a + 9]]
    if jfif or (transform is not None and transform != 0):
        return "YCbCr"
    return "RGB" if transform == 0 or ids == b"RGB" else "YCbCr"


def frame(head: bytes) -> Optional[Tuple[int, int]]:
    """(the marker that starts the frame, its sample precision) of the JPEG whose first bytes are
    `head`, or None where they hold no frame."""
    found = next(((marker, a) for marker, a, b in segments(head) if marker in _FRAMES and b - a >= 5), None)
    return (found[0], head[found[1] + 4]) if head[:2] == b"\xff\xd8" and found else None


def arithmetic(head: bytes) -> bool:
    """Whether the JPEG whose first bytes are `head` is arithmetic-coded (SOF9-11, SOF13-15)."""
    return (frame(head) or (0, 0))[0] in _ARITHMETIC


def _block_grid(changed: np.ndarray) -> np.ndarray:
    """(⌈H/8⌉, ⌈W/8⌉) bool: the 8×8 pixel blocks that hold a changed pixel."""
    h, w = changed.shape
    grid = np.zeros((-(-h // 8) * 8, -(-w // 8) * 8), bool)
    grid[:h, :w] = changed
    # Eight bools of a row are one 64-bit word: a block row holds a changed pixel when its word is
    # not 0 (50× faster than numpy's any over the 8×8 axes, which is felt at 12 MP).
    words = grid.view(np.uint64).reshape(grid.shape[0] // 8, 8, grid.shape[1] // 8)
    return (words != 0).any(axis=1)


def _coarser(fine: np.ndarray, factors: Tuple[int, int], blocks: Tuple[int, int]) -> np.ndarray:
    """`blocks` bool: the blocks of a component whose block covers fy × fx pixel blocks of `fine`."""
    fy, fx = factors
    grid = np.zeros((blocks[0] * fy, blocks[1] * fx), bool)
    h, w = min(grid.shape[0], fine.shape[0]), min(grid.shape[1], fine.shape[1])
    grid[:h, :w] = fine[:h, :w]
    return grid.reshape(blocks[0], fy, blocks[1], fx).any(axis=(1, 3))


def _code_blocks(image: np.ndarray, factors: Tuple[int, int], by: np.ndarray, bx: np.ndarray,
                 components: List[Tuple[Tuple[str, int], np.ndarray]]) -> List[np.ndarray]:
    """[(N, 8, 8) int16 per component]: the quantized coefficients of blocks (by, bx) of the
    components, given as (key of `WEIGHTS`, quantization table), that share one sampling (`factors`).

    As libjpeg codes them: the image padded at its right and bottom edges by repeating the last
    pixels, converted to YCbCr (or kept RGB), a colour plane box-averaged over its sampling factors, the block
    level-shifted by 128, transformed, divided by the table and rounded (ties aside, libjpeg's
    integer DCT gives the same numbers; a coefficient may differ by one).
    """
    fy, fx = factors
    tiles = _tiles(image, 8 * fy, 8 * fx, by, bx).astype(np.float32)  # (N, 8·fy, 8·fx[, 3])
    if fy * fx > 1:  # the box average first: it commutes with the colour conversion, and is cheaper on RGB
        tiles = sum(tiles[:, dy::fy, dx::fx] for dy in range(fy) for dx in range(fx)) / (fy * fx)  # (N, 8, 8[, 3])
    n = len(by)
    flat = tiles.reshape(n, -1)  # (N, 64·C)
    out = []
    for key, table in components:
        coefficients = flat @ WEIGHTS[key] + SHIFT[key]  # (N, 64), row by row
        out.append(np.rint(coefficients / table.reshape(64)).astype(np.int16).reshape(n, 8, 8))
    return out


def _tiles(image: np.ndarray, th: int, tw: int, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
    """(N, th, tw[, 3]) uint8: the th × tw pixel tiles at tile rows `by`, columns `bx`; a tile
    past the right or bottom edge repeats the last pixels, as libjpeg pads."""
    rows, cols = image.shape[0] // th, image.shape[1] // tw
    out = np.empty((len(by), th, tw) + image.shape[2:], np.uint8)
    inner = (by < rows) & (bx < cols)
    grid = image[:rows * th, :cols * tw].reshape(rows, th, cols, tw, *image.shape[2:])  # a view
    out[inner] = grid[by[inner], :, bx[inner]]  # whole rows of tiles copied at once
    edge = ~inner
    if edge.any():
        ys = (by[edge, None] * th + np.arange(th)).clip(max=image.shape[0] - 1)  # (E, th)
        xs = (bx[edge, None] * tw + np.arange(tw)).clip(max=image.shape[1] - 1)  # (E, tw)
        out[edge] = image[ys[:, :, None], xs[:, None, :]]
    return out


def splice(written: bytes, coded: bytes, adobe: bytes = b"") -> bytes:
    """`written`'s metadata segments followed by `coded`'s tables, frame and scans.

    An Adobe segment (APP14) says how the components code colour, so `written`'s is left out:
    `adobe` is the one for `coded` (`ADOBE_RGB` for a file coded in RGB, a CMYK file's own), and
    where one is given `written`'s JFIF segment, which names YCbCr to every decoder, is left out
    too."""
    meta = b"".join(written[a:b] for marker, a, b in segments(written)
                    if marker in _META and written[a + 4:a + 9] != b"Adobe"
                    and not (adobe and written[a + 4:a + 9] == b"JFIF\0"))
    return b"\xff\xd8" + meta + adobe + coded[first_not(coded, _META):]


def adobe_segment(data: bytes) -> bytes:
    """The JPEG `data`'s first Adobe segment (APP14), or b"" where it has none."""
    return next((data[a:b] for marker, a, b in segments(data)
                 if marker == 0xEE and data[a + 4:a + 9] == b"Adobe"), b"")


def with_segment(data: bytes, start: int, end: int, marker: int, payload: bytes) -> Optional[bytes]:
    """The JPEG `data` with its bytes from `start` to `end` (a segment, or nothing where they are
    equal) replaced by a segment of `marker` holding `payload`; None where the payload is past a
    segment's 64 kB."""
    if len(payload) + 2 > 0xFFFF:
        return None
    return data[:start] + bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload + data[end:]


def segments(data: bytes) -> Iterator[Tuple[int, int, int]]:
    """(marker, start, end) of each segment of the JPEG `data` before its first scan."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        yield data[i + 1], i, end
        i = end


def first_not(data: bytes, markers) -> int:
    """Where the first segment of `data` whose marker is not in `markers` starts (or its scan)."""
    at = 2
    for marker, start, end in segments(data):
        if marker not in markers:
            return start
        at = end
    return at
