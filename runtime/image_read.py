"""A file to a decoded image and what the writer must know of it, never trusting the file.

Only the header is read before the image's size is checked (against `max_pixels`, and by the
caller's `admit`, which may wait for memory), so a decompression bomb, a huge sparse file or a
device costs nothing; a header may claim at most HEADER_READ_LIMIT bytes; anything but a regular
file is refused unread. Pillow decodes 16-bit RGB, RGBA and grey+alpha PNGs to their top 8 bits,
so those are read with pypng as well (`DeepImage`) when the output is a PNG. What cannot be put
back whole is refused, not written lossy (`LossyInputError`), unless the caller allows it: more
than one frame or page (only the first is restored), and more than 8 bits per colour channel
where they cannot be kept (a 16-bit colour PNG written as another format, a 16-bit colour TIFF).
GIF is read (its first frame, palette kept) but written only as another format: Pillow's GIF
writer may reorder the palette.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO, Callable, List, Optional, Tuple, Union

import numpy as np
import png  # pypng: 16-bit colour PNGs, which Pillow decodes to 8 bits
from PIL import Image, ImageOps, UnidentifiedImageError

from restore_toolkit.messages import one_line
from runtime import cut_short, exif_raw, jpeg_blocks, jpeg_pictures, read_warnings, xmp_thumbnail
from runtime import image_metadata as meta
from runtime.image_metadata import JPEG_FORMATS
from runtime.images import (
    DEFAULT_MAX_PIXELS,
    LOSSY_TIFF_COMPRESSION,
    ORIENT,
    PNG16_COLOUR_TYPES,
    READ_FORMATS,
    SIXTEEN_BIT,
    DeepImage,
    Header,
    ImageError,
    LossyInputError,
    SourceInfo,
    TooManyPixels,
)


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
    signed = None  # the first format whose signature the file bears, and why its header failed
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
        except (SyntaxError, IndexError, TypeError, struct.error) as e:
            signed = signed or (fmt, e)
            continue  # not this format after all: Pillow's own rule
    if signed:  # a PNG with a broken IHDR is a broken PNG, not "not a PNG"
        name = "WebP" if signed[0] == "WEBP" else signed[0]
        raise ImageError(f"a {name} file whose header cannot be read ({one_line(signed[1])})")
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
    turn = ORIENT.get(orientation or 1)
    array = np.ascontiguousarray(turn(array) if turn else array)
    transparent = meta.get("transparent")
    return DeepImage(array, tuple(transparent) if transparent is not None else None)


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
    warned: List[str] = []  # Pillow's warnings while it reads (runtime/read_warnings.py)
    with f, read_warnings.collected(warned):
        img, info = _read_open(f, max_pixels, allow_lossy, write_format, admit)
        info.notes.extend(warned)
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
    except (ImageError, UnidentifiedImageError) as e:  # ours (a size, a broken header) or no format's
        precision = (jpeg_blocks.frame(head) or (0, 8))[1]
        if precision != 8:
            raise ImageError(f"a {precision}-bit JPEG: only 8-bit JPEGs are read") from None
        if isinstance(e, ImageError):
            raise
        raise ImageError("not a PNG, JPEG, WebP, BMP or TIFF image, nor a GIF") from None
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
        turned = img.getexif().get(0x0112) in ORIENT  # read from the header's APP1, nothing decoded
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
    _decode_pixels(img, f, info, keep_deep)
    meta.capture(img, f, info)  # EXIF, ICC, DPI, XMP, JPEG tables, PNG chunks, TIFF tags
    return info


def _decode_pixels(img: Image.Image, f: BinaryIO, info: SourceInfo, keep_deep: bool) -> None:
    """Decode `img`, refuse a PNG cut short (runtime/cut_short.py: read before any turn), and turn
    the pixels as the EXIF says, the tag then dropped so that no viewer turns them twice."""
    try:
        img.load()
        cut = cut_short.problem(img, f)
        if keep_deep:
            info.deep = _read_png16(f, img.getexif().get(0x0112))
        info.exif_raw = exif_raw.kept_raw(img)  # before the turn, which rewrites Pillow's block
        turn = img.getexif().get(0x0112)
        info.orientation = turn if turn in ORIENT else 1  # the values Pillow turns by
        ImageOps.exif_transpose(img, in_place=True)  # no copy of untagged images
    except Exception as e:  # truncated streams raise OSError; broken chunks SyntaxError, ValueError...
        raise ImageError(f"truncated or corrupt image data ({one_line(e)})") from None
    if cut:
        raise ImageError(cut)
