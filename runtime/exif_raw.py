"""An EXIF block Pillow cannot read whole is carried as it was, its orientation read tag by tag.

Pillow reads an EXIF directory (IFD) all or nothing: where one tag's value lies past the block's
end ("Truncated File Read"), it returns no tag of that directory at all, the orientation among
them. A restored photo then came back with no EXIF (its camera, date and the rest gone, said only
in a WARNED line), and sideways where its source was turned by its orientation tag, which viewers
read tag by tag and honour. So where Pillow's reading holds fewer tags than the block's
directories list (`pillow_reads_whole`), the block is carried byte for byte, and only its
orientation entry's value is rewritten in place (`with_orientation`): 1 where the pixels were
turned, the source's own where a JPEG is written back on its source's grid. The orientation the
pixels are turned by is read from the block's first directory (`orientation`), as viewers read
it. Its thumbnail (the second directory and the JPEG it points to) showed the photo before it
was restored, so it is cut off (`without_thumbnail`): the link to it set to 0 and its bytes
zeroed; a JPEG written from it gets a thumbnail made again from the restored pixels
(runtime/image_write.py), as every JPEG with a thumbnail does.

Offsets are checked before every read: a block that lies about its size gives None, not an error.

The TIFF structure's walk (byte order, directories, entries) is kept here for runtime/jpeg_pictures.py
too (`tiff_header`, `ifd_entries`, `ifd_link`): those raise `TiffError` where a structure lies about
its offsets, and the readings of this module catch it.
"""

from __future__ import annotations

import struct
from typing import Iterator, Optional, Tuple

from PIL import Image

EXIF_ID = b"Exif\0\0"  # how a JPEG's APP1 payload (and Pillow's reading of other formats) starts
ORIENTATION = 0x0112
SUB_IFDS = (0x8769, 0x8825)  # the Exif and GPS directories, pointed to from the first


class TiffError(ValueError):
    """A TIFF structure that is none, or that points past its own end."""


def tiff_header(tiff: bytes) -> Tuple[str, int]:
    """(its byte order, as `struct` writes it; where its first directory starts) of the TIFF
    structure `tiff`."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        raise TiffError("not a TIFF header")
    return order, struct.unpack_from(order + "I", tiff, 4)[0]


def _count(tiff: bytes, order: str, at: int) -> int:
    """How many entries the directory at `at` lists."""
    if at + 2 > len(tiff):
        raise TiffError("a directory past the end")
    return struct.unpack_from(order + "H", tiff, at)[0]


def ifd_entries(tiff: bytes, order: str, at: int) -> Iterator[Tuple[int, int, int, int, int]]:
    """(tag, type, count, value or offset, where the entry starts) of each entry of the directory at
    `at`, in turn; TiffError at the first that `tiff` does not hold whole."""
    for j in range(_count(tiff, order, at)):
        entry = at + 2 + 12 * j
        if entry + 12 > len(tiff):
            raise TiffError("an entry past the end")
        yield (*struct.unpack_from(order + "HHII", tiff, entry), entry)


def ifd_link(tiff: bytes, order: str, at: int) -> int:
    """Where the directory at `at` keeps the offset of the next (0 there: none)."""
    link = at + 2 + 12 * _count(tiff, order, at)
    if link + 4 > len(tiff):
        raise TiffError("a directory past the end")
    return link


def _tiff(raw: bytes) -> Tuple[bytes, int]:
    """The TIFF structure inside `raw` and where it starts in `raw`."""
    start = len(EXIF_ID) if raw.startswith(EXIF_ID) else 0
    return raw[start:], start


def _entries(tiff: bytes, order: str, at: int) -> Iterator[Tuple[int, int, int, int, int]]:
    """`ifd_entries` of the directory at `at`, as far as the block holds it."""
    if at < 8:
        return
    try:
        yield from ifd_entries(tiff, order, at)
    except TiffError:
        return


def _first(raw: bytes):
    """(tiff, start, order, the first directory's offset), or None where `raw` is no TIFF structure."""
    tiff, start = _tiff(raw or b"")
    try:
        return (tiff, start, *tiff_header(tiff))
    except TiffError:
        return None


def tag_counts(raw: Optional[bytes]) -> dict:
    """{0 or sub-directory tag: entries the block lists there}, read tag by tag."""
    first = _first(raw)
    if first is None:
        return {}
    tiff, _, order, ifd0 = first
    counts = {0: 0}
    for tag, _kind, _count, at, _entry in _entries(tiff, order, ifd0):
        counts[0] += 1
        if tag in SUB_IFDS:
            counts[tag] = sum(1 for _ in _entries(tiff, order, at))
    return counts


def pillow_reads_whole(raw: Optional[bytes], exif: Optional[Image.Exif] = None) -> bool:
    """Whether Pillow's reading of `raw` (`exif`, read here when not given) holds every tag the
    block lists, in its first directory and in its Exif and GPS directories."""
    if not raw:
        return True
    if exif is None:
        exif = Image.Exif()
        try:
            exif.load(raw)
        except Exception:  # noqa: BLE001 - whatever Pillow cannot load, it does not hold
            return not tag_counts(raw).get(0)
    read = {0: len(exif), **{tag: len(exif.get_ifd(tag)) for tag in SUB_IFDS if tag in exif}}
    return all(read.get(where, 0) >= n for where, n in tag_counts(raw).items())


def _orientation_entry(raw: bytes) -> Optional[Tuple[int, str]]:
    """Where in `raw` the orientation's value lies (a SHORT held in its entry) and the byte order."""
    first = _first(raw)
    if first is None:
        return None
    tiff, start, order, ifd0 = first
    for tag, kind, count, _value, entry in _entries(tiff, order, ifd0):
        if tag == ORIENTATION and kind == 3 and count == 1:
            return start + entry + 8, order
    return None


def orientation(raw: Optional[bytes]) -> Optional[int]:
    """The orientation tag of `raw`'s first directory, read as viewers read it, or None."""
    found = _orientation_entry(raw or b"")
    if found is None:
        return None
    at, order = found
    return struct.unpack_from(order + "H", raw, at)[0]


def with_orientation(raw: bytes, value: int) -> bytes:
    """`raw` with its orientation entry's value set to `value`, every other byte as it was. A block
    with no such entry is returned as it is: no entry reads as 1, and one is not added to a block
    whose layout is not known whole (`value` is then 1: the pixels were turned by none)."""
    found = _orientation_entry(raw)
    if found is None:
        return raw
    at, order = found
    return raw[:at] + struct.pack(order + "H", value) + raw[at + 2:]


def without_thumbnail(raw: bytes) -> bytes:
    """`raw` with no second directory (the EXIF thumbnail's): the first directory's link to it set
    to 0 and the thumbnail's JPEG bytes zeroed (what it showed is the photo before restoring),
    every other byte as it was. A block whose first directory cannot be walked is returned as it is."""
    first = _first(raw)
    if first is None:
        return raw
    tiff, start, order, ifd0 = first
    try:
        link = ifd_link(tiff, order, ifd0)
        (ifd1,) = struct.unpack_from(order + "I", tiff, link)
    except (TiffError, struct.error):
        return raw
    if not ifd1:
        return raw
    out = bytearray(raw)
    out[start + link:start + link + 4] = bytes(4)
    tags = {tag: value for tag, _kind, _count, value, _entry in _entries(tiff, order, ifd1)}
    at, length = tags.get(0x0201), tags.get(0x0202)  # JPEGInterchangeFormat, its length
    if at and length and at + length <= len(tiff):
        out[start + at:start + at + length] = bytes(length)
    return bytes(out)


def kept_raw(img: Image.Image) -> Optional[bytes]:
    """`img`'s EXIF block where Pillow's reading of it is not whole (to be carried as it was), or
    None. Then Pillow's reading is given the block's orientation, so that the pixels are turned by
    it as viewers turn them (`ImageOps.exif_transpose` reads it there). Call before that turn."""
    raw = img.info.get("exif")
    exif = img.getexif()
    if not isinstance(raw, bytes) or pillow_reads_whole(raw, exif):
        return None
    turn = orientation(raw)
    if turn is not None and ORIENTATION not in exif:
        exif[ORIENTATION] = turn
    return raw


def describe(raw: bytes, exif: Image.Exif) -> str:
    """The note a carried block gets."""
    counts = tag_counts(raw)
    read = len(exif) + sum(len(exif.get_ifd(tag)) for tag in SUB_IFDS if tag in exif)
    return (f"EXIF carried as it was (Pillow reads {read} of its {sum(counts.values())} tags), its orientation "
            "set to 1 where the pixels were turned, its thumbnail of the unrestored photo cut off")
