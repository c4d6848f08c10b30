"""What a JPEG holds besides its photo (more pictures, listed by CIPA DC-007's Multi-Picture Format;
data after them): written back after the restored photo.

Cameras and phones put more pictures in one JPEG file: a larger preview (many cameras), the gain
map of an HDR photo (Android's Ultra HDR, Apple's HDR photos), the second view of a stereo camera.
The file is the first picture, whose APP2 "MPF" segment lists every picture's offset and size,
followed by the other pictures, each a JPEG stream of its own. Only the first is the photo, and
only it is restored; the others are carried:

- a preview (MP type "large thumbnail") is a small copy of the photo as it was read, damage and
  all: in a changed file it is made again from the restored picture, at its own size, with its own
  quantization tables and sampling, its own segments kept;
- any other picture (a gain map, another view) is kept byte for byte, not restored. A gain map
  only scales the photo's light on an HDR screen; where an editor's paint reached it too, the
  restored pixels are lit there as the paint was (their colours, what every screen shows, are
  the restored ones).

The MPF segment is the source's, with each entry's offset and size set for the new file, placed
after the first picture's APP0/APP1 segments as the standard asks.

Whatever follows the last picture (a phone's motion photo keeps its video there, found by its
distance from the end of the file; Samsung keeps its own trailer) is written back after the last
picture as it was, so it lies as far from the end as before.

The EXIF thumbnail (IFD1 of the APP1 "Exif" segment, a 160×120 JPEG in most cameras' files) is
such a preview too, which the regular writer (Pillow's EXIF) leaves out: a changed file gets one
made again from the restored photo, as a preview is; and so is the thumbnail Photoshop keeps in
its APP13 segment (carried as it was by the regular writer), and the one an XMP packet holds
(runtime/xmp_thumbnail.py).
"""

from __future__ import annotations

import io
import mmap
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, List, Optional, Sequence, Tuple

from PIL import Image, JpegImagePlugin

from runtime import jpeg_blocks
from runtime.exif_raw import ifd_entries, ifd_link, tiff_header

MPF_ID = b"MPF\0"
EXIF_ID = b"Exif\0\0"
PHOTOSHOP_ID = b"Photoshop 3.0\0"
PS_THUMBNAIL, PS_HEADER = 0x040C, 28  # the resource id of Photoshop's thumbnail; its header's bytes
MP_ENTRY = 0xB002  # the MP Index IFD's table of pictures: 16 bytes each
# MP type codes (the low 24 bits of an entry's attribute) of a preview of the whole picture.
PREVIEW_TYPES = (0x010001, 0x010002)
MAX_HEADER = 1 << 20  # where an MPF segment may be looked for: the first picture's header segments


@dataclass
class Pictures:
    """What a JPEG file holds after its photo: the pictures an MPF segment lists, and any data after
    the last picture (a phone's motion photo keeps its video there, Samsung its own trailer)."""

    segment: Optional[bytes] = None  # the source's APP2 MPF segment, marker and length included; None: no MPF
    entries_at: int = 0  # where in `segment` its MP entry table starts
    little: bool = True  # the MPF's byte order
    attributes: List[int] = field(default_factory=list)  # per picture after the first, its entry's attribute word
    data: List[bytes] = field(default_factory=list)  # per picture after the first, its JPEG stream
    tail: bytes = b""  # what follows the last picture, as it was

    def describe(self) -> str:
        """For the report: what is carried."""
        n, previews = len(self.data), len(self.previews())
        parts = []
        if n:
            kinds = ", ".join(k for k in (f"{previews} preview{'s' * (previews > 1)}" if previews else "",
                                           f"{n - previews} other{'s' * (n - previews > 1)}" if n > previews else "") if k)
            parts.append(f"{n} more picture{'s' * (n > 1)} in the file ({kinds})")
        if self.tail:
            parts.append(f"{len(self.tail):,} bytes after the last picture (a motion photo's video, a phone's data)")
        return (" and ".join(parts) + ": kept after the photo"
                + (" (a preview made again where the photo changed)" if previews else ""))

    def previews(self) -> List[int]:
        """Indices (into `data`) of the pictures that are previews of the photo."""
        return [i for i, a in enumerate(self.attributes) if a & 0xFFFFFF in PREVIEW_TYPES]


def read(f: BinaryIO, mpf: bool = True) -> Optional[Pictures]:
    """What the JPEG file `f` (seekable) holds after its photo, or None when nothing. `mpf`: it has
    an MPF segment (Pillow's `info["mp"]`). Pictures are left out where the segment lists only one
    or cannot be followed (an entry outside the file, a stream that does not start as a JPEG); a
    tail of zero or 0xFF bytes is padding, left out. `f` is left where it was."""
    at = f.tell()
    try:
        listed = _read_mpf(f) if mpf else None
        pictures, end = listed if listed is not None else (Pictures(), None)
        size = f.seek(0, io.SEEK_END)
        end = end if end is not None else _stream_end(f)
        if end is not None and end < size:
            f.seek(end)
            tail = f.read()
            pictures.tail = tail if tail.strip(b"\0\xff") else b""
        return pictures if pictures.data or pictures.tail else None
    finally:
        f.seek(at)


def _read_mpf(f: BinaryIO) -> Optional[Tuple[Pictures, int]]:
    """The pictures an MPF segment lists after the first, and where the last of them ends."""
    f.seek(0)
    head = f.read(MAX_HEADER)
    found = _mpf_segment(head)
    if found is None:
        return None
    start, end = found
    segment = head[start:end]
    tiff_at = start + 8  # marker, length, "MPF\0"
    try:
        little, entries_at, count = _entry_table(segment)
    except (struct.error, ValueError):
        return None
    if count < 2:
        return None
    size = f.seek(0, io.SEEK_END)
    order = "<" if little else ">"
    listed = [struct.unpack_from(order + "III", segment, entries_at + 16 * k) for k in range(1, count)]
    starts = sorted(tiff_at + offset for _, _, offset in listed)
    attributes, data, last = [], [], 0
    for attribute, length, offset in listed:
        at = tiff_at + offset
        # A picture ends where its size says, or sooner where the next picture or the file begins
        # or ends (some writers list a wrong size; readers follow the offsets).
        stop = min([at + length, size] + [s for s in starts if s > at])
        if at < end or stop - at < 4:
            return None
        f.seek(at)
        stream = f.read(stop - at)
        if stream[:2] != b"\xff\xd8":
            return None
        attributes.append(attribute)
        data.append(stream)
        last = max(last, stop)
    return Pictures(segment, entries_at, little, attributes, data), last


def _stream_end(f: BinaryIO) -> Optional[int]:
    """Where the JPEG stream at the start of `f` ends (after its EOI marker), or None where it does
    not end: its segments are stepped over by their lengths, its coded data searched for the first
    marker that is not a stuffed byte, a restart or a fill byte."""
    buf = _mapped(f)
    try:
        i, n = 2, len(buf)
        while i + 2 <= n and buf[i] == 0xFF:
            marker = buf[i + 1]
            if marker == 0xFF:  # a fill byte before a marker
                i += 1
                continue
            if marker == 0xD9:
                return i + 2
            if i + 4 > n:
                return None
            i += 2 + int.from_bytes(buf[i + 2:i + 4], "big")
            if marker == 0xDA:  # the coded data of a scan runs to the next marker
                while True:
                    j = buf.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        return None
                    after = buf[j + 1]
                    if after == 0x00 or 0xD0 <= after <= 0xD7:
                        i = j + 2
                    elif after == 0xFF:
                        i = j + 1
                    else:
                        i = j
                        break
        return None
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()


def _mapped(f: BinaryIO):
    """The whole file, mapped where it is one (no copy), else read."""
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        f.seek(0)
        return f.read()


def with_pictures(primary: bytes, pictures: Pictures, remade: Optional[List[Optional[bytes]]] = None) -> bytes:
    """The written photo `primary` followed by the other pictures (`remade[i]` in place of picture
    i where given), with an MPF segment that lists them where they now lie, and then the tail."""
    if pictures.segment is None:
        return primary + pictures.tail
    others = [r if r is not None else d for r, d in zip(remade or [None] * len(pictures.data), pictures.data)]
    at = jpeg_blocks.first_not(primary, (0xE0, 0xE1))  # after the APP0 / APP1 segments
    first_size = len(primary) + len(pictures.segment)
    tiff_at = at + 8
    order = "<" if pictures.little else ">"
    segment = bytearray(pictures.segment)
    struct.pack_into(order + "II", segment, pictures.entries_at + 4, first_size, 0)
    offset = first_size - tiff_at
    for k, stream in enumerate(others, start=1):
        struct.pack_into(order + "II", segment, pictures.entries_at + 16 * k + 4, len(stream), offset)
        offset += len(stream)
    return primary[:at] + bytes(segment) + primary[at:] + b"".join(others) + pictures.tail


def previews_of(written: bytes, olds: Sequence[Optional[bytes]]) -> List[Optional[bytes]]:
    """Each JPEG preview of `olds` (None: none) made again from the written photo `written`: at its
    size (turned where the photo was written upright and the preview lay on its source's grid),
    with its quantization tables, sampling and own segments; None where Pillow cannot read or code
    it. The photo is decoded once, at the smallest scale that covers the largest of them."""
    out: List[Optional[bytes]] = [None] * len(olds)
    try:
        # Opened as JPEGs by their plugin: `Image.open` would hold a photo over Pillow's process-wide
        # pixel limit (89 Mpx) to be a decompression bomb; its size was checked when it was read.
        photo = JpegImagePlugin.JpegImageFile(io.BytesIO(written))
        targets = {i: _target(old, photo.width > photo.height) for i, old in enumerate(olds) if old}
        targets = {i: target for i, target in targets.items() if target is not None}
        if not targets:
            return out
        photo.draft(photo.mode, (max(t[0][0] for t in targets.values()), max(t[0][1] for t in targets.values())))
        photo.load()  # decoded at 1/2 to 1/8 of its size where that covers every preview
    except Exception:  # a photo Pillow cannot decode: every preview kept as it was
        return out
    for i, (size, mode, tables, sampling) in targets.items():
        try:
            buf = io.BytesIO()
            small = photo.convert(mode).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            small.save(buf, "JPEG", qtables=tables, subsampling=sampling if sampling >= 0 else 0)
        except Exception:  # tables Pillow cannot code with: kept as it was
            continue
        out[i] = jpeg_blocks.splice(olds[i], buf.getvalue(), jpeg_blocks.adobe_segment(buf.getvalue()))
    return out


def _target(old: bytes, wide: bool) -> Optional[Tuple[Tuple[int, int], str, dict, int]]:
    """(size on the written photo's grid, mode, quantization tables, sampling) of the preview
    `old`, or None where Pillow cannot read it (a broken preview: it raises OSError,
    SyntaxError, struct.error, ...)."""
    try:
        before = JpegImagePlugin.JpegImageFile(io.BytesIO(old))
        size = before.size if (before.width > before.height) == wide else before.size[::-1]
        return size, before.mode, before.quantization, JpegImagePlugin.get_sampling(before)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# The EXIF thumbnail: IFD1 of the APP1 "Exif" segment, a small JPEG of the photo.


def exif_thumbnail(exif: Optional[bytes]) -> Optional[bytes]:
    """The JPEG thumbnail in EXIF IFD1 of `exif` (the APP1 payload, "Exif\\0\\0" and a TIFF
    structure), or None."""
    if not exif or not exif.startswith(EXIF_ID):
        return None
    tiff = exif[len(EXIF_ID):]
    try:
        order, ifd0 = tiff_header(tiff)
        (ifd1,) = struct.unpack_from(order + "I", tiff, ifd_link(tiff, order, ifd0))
        if not ifd1:
            return None
        tags = {tag: value for tag, _kind, _count, value, _at in ifd_entries(tiff, order, ifd1)}
    except (struct.error, ValueError):  # a structure that lies about its offsets (exif_raw.TiffError)
        return None
    at, length = tags.get(0x0201), tags.get(0x0202)
    if at is None or not length or at + length > len(tiff) or tiff[at:at + 2] != b"\xff\xd8":
        return None
    return tiff[at:at + length]


def with_exif_thumbnail(data: bytes, thumbnail: bytes) -> bytes:
    """The JPEG `data` with `thumbnail` as its EXIF IFD1 (its APP1 segment's IFD0 linked to it; an
    EXIF of no other tag made after the APP0 segment where it has none, as when the orientation
    was its only tag); `data` as it is where its IFD0 already links on or the segment would pass
    its 64 kB limit."""
    found = next(((a, b) for marker, a, b in jpeg_blocks.segments(data)
                  if marker == 0xE1 and data[a + 4:a + 4 + len(EXIF_ID)] == EXIF_ID), None)
    if found is None:
        at = jpeg_blocks.first_not(data, (0xE0,))
        empty = EXIF_ID + b"II*\0" + struct.pack("<IHI", 8, 0, 0)  # IFD0 of no entry, linking nowhere
        data = jpeg_blocks.with_segment(data, at, at, 0xE1, empty)
        found = (at, at + 4 + len(empty))
    start, end = found
    tiff = bytearray(data[start + 4 + len(EXIF_ID):end])
    try:
        order, ifd0 = tiff_header(bytes(tiff))
        link = ifd_link(tiff, order, ifd0)
        if struct.unpack_from(order + "I", tiff, link)[0]:
            return data
    except (struct.error, ValueError):  # exif_raw.TiffError
        return data
    tiff += b"\0" * (len(tiff) % 2)  # an IFD starts on a word boundary
    ifd1 = len(tiff)
    struct.pack_into(order + "I", tiff, link, ifd1)
    tiff += struct.pack(order + "H", 3)
    tiff += struct.pack(order + "HHIHH", 0x0103, 3, 1, 6, 0)  # compression: JPEG
    tiff += struct.pack(order + "HHII", 0x0201, 4, 1, ifd1 + 2 + 3 * 12 + 4)  # where the thumbnail starts
    tiff += struct.pack(order + "HHII", 0x0202, 4, 1, len(thumbnail))
    tiff += struct.pack(order + "I", 0) + thumbnail
    payload = EXIF_ID + bytes(tiff)
    return jpeg_blocks.with_segment(data, start, end, 0xE1, payload) or data


# ---------------------------------------------------------------------------------------------
# Photoshop's thumbnail: image resource 0x040C in the APP13 "Photoshop 3.0" segment, which
# Photoshop writes in every JPEG it saves: a 28-byte header, then a JFIF stream.


def photoshop_thumbnail(body: Optional[bytes]) -> Optional[bytes]:
    """The JPEG thumbnail in the APP13 payload `body` (image resource 0x040C, format 1), or None."""
    found = _photoshop_resource(body or b"")
    if found is None:
        return None
    at, size = found
    jpeg = body[at + PS_HEADER:at + size]
    return jpeg if struct.unpack_from(">I", body, at)[0] == 1 and jpeg[:2] == b"\xff\xd8" else None


def with_photoshop_thumbnail(data: bytes, thumbnail: bytes) -> bytes:
    """The JPEG `data` with `thumbnail` in place of the Photoshop thumbnail of its APP13 segment,
    its header's size fields set for it; `data` as it is where it has none, or the segment would
    pass its 64 kB limit."""
    for marker, start, end in jpeg_blocks.segments(data):
        body = data[start + 4:end]
        found = _photoshop_resource(body) if marker == 0xED else None
        if found is None:
            continue
        at, size = found
        w, h = Image.open(io.BytesIO(thumbnail)).size
        row = (w * 24 + 31) // 32 * 4
        header = struct.pack(">IIIIIIHH", 1, w, h, row, row * h, len(thumbnail), 24, 1)
        block = header + thumbnail + b"\0" * (len(thumbnail) % 2)
        new = body[:at - 4] + struct.pack(">I", len(header) + len(thumbnail)) + block + body[at + size + size % 2:]
        return jpeg_blocks.with_segment(data, start, end, 0xED, new) or data
    return data


def _photoshop_resource(body: bytes) -> Optional[Tuple[int, int]]:
    """(where its data starts, its size) of image resource 0x040C in an APP13 payload, or None."""
    if not body.startswith(PHOTOSHOP_ID):
        return None
    i = len(PHOTOSHOP_ID)
    while i + 12 <= len(body) and body[i:i + 4] == b"8BIM":
        (rid,) = struct.unpack_from(">H", body, i + 4)
        name = 1 + body[i + 6]  # a Pascal string, padded to an even length
        size_at = i + 6 + name + name % 2
        if size_at + 4 > len(body):
            return None
        (size,) = struct.unpack_from(">I", body, size_at)
        if size_at + 4 + size > len(body):
            return None
        if rid == PS_THUMBNAIL and size > PS_HEADER:
            return size_at + 4, size
        i = size_at + 4 + size + size % 2
    return None


def _mpf_segment(head: bytes) -> Optional[Tuple[int, int]]:
    """(start, end) of the APP2 MPF segment among the header segments in `head`, or None."""
    if head[:2] != b"\xff\xd8":
        return None
    return next(((a, b) for marker, a, b in jpeg_blocks.segments(head)
                 if marker == 0xE2 and head[a + 4:a + 8] == MPF_ID and b <= len(head)), None)


def _entry_table(segment: bytes) -> Tuple[bool, int, int]:
    """(little-endian?, where the MP entry table starts in `segment`, how many pictures it lists)."""
    tiff = segment[8:]  # after the marker, the length and "MPF\0"
    order, ifd = tiff_header(tiff)
    for tag, _kind, count, value, _at in ifd_entries(tiff, order, ifd):
        if tag == MP_ENTRY:
            at = 8 + value
            if count % 16 or at + count > len(segment):
                raise ValueError("MP entry table outside its segment")
            return order == "<", at, count // 16
    raise ValueError("no MP entry table")
