"""What a file carries besides its pixels, how each output format keeps it, and what it could not.

Three steps, one per direction:

- `capture` (read side): fills `SourceInfo`'s metadata from the decoded image and the file (its
  bytes or the open file; only headers and metadata chunks are read back): EXIF, ICC profile, DPI,
  XMP, JPEG comment and coding (quantization tables, subsampling), PNG ancillary chunks as they
  were, TIFF tags, the bit depth of low-bit grey, and the file's fingerprint.
- `pillow_params` / `png_chunks` (write side): Pillow's save keywords for each format, and the
  PNG chunks spliced into a PNG after its pixels are encoded (`splice_png`).
- `lost` (check, runtime/metadata_lost.py): reads the written file's header back and names every
  piece of the source's metadata it does not hold, with why (a format that cannot hold it, or a
  writer that dropped it). What is named goes into the record's `dropped` list, so nothing is
  lost in silence.

| kind | PNG | JPEG | WebP | TIFF | BMP |
| --- | --- | --- | --- | --- | --- |
| EXIF, XMP | eXIf, iTXt | APP1 | chunks | tags (Exif IFD: uncompressed) | - |
| ICC profile | iCCP | APP2 | ICCP | tag 34675 | v5 header (RGB, RGBA) |
| DPI | pHYs | JFIF | - | tags | header |
| PNG text, gAMA, cHRM, sRGB, tIME... | as they were | - | - | - | - |
| JPEG comment, other APPn (IPTC...) | - | COM, as they were | - | - | - |
| TIFF tags | in eXIf | in APP1 | in EXIF | as they were | - |

Torch-free: numpy, pillow, zlib and struct only.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple, Union

from PIL import Image, JpegImagePlugin

from runtime import exif_raw

Source = Union[bytes, BinaryIO]  # a file's bytes, or the open file (seekable)
JPEG_FORMATS = ("JPEG", "MPO")  # Pillow names a camera's multi-picture JPEG MPO
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEY = b"XML:com.adobe.xmp"
# PNG chunks written by the encoder itself (pixels, palette, transparency, and what `png_chunks`
# rebuilds from SourceInfo), animation chunks (refused elsewhere), and the rest, carried as they were.
PNG_REBUILT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"iCCP", b"eXIf", b"pHYs", b"acTL", b"fcTL", b"fdAT"}
# Chunks that describe the encoding of the old pixels: carried only when the mode is unchanged.
PNG_MODE_BOUND = {b"bKGD", b"sBIT", b"hIST", b"sPLT"}
# Chunks that must come before PLTE (the rest are put just before the first IDAT).
PNG_BEFORE_PLTE = {b"iCCP", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"cICP", b"mDCV", b"cLLI", b"eXIf", b"pHYs"}
# TIFF tags that describe the pixel layout: the writer makes its own. 274 (orientation) has been applied.
TIFF_LAYOUT = {254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 284, 292, 293, 317, 320, 322, 323, 324,
               325, 330, 338, 339, 340, 341, 347, 513, 514, 530, 531, 532, 34665, 34853, 40965, 34675, 700}
EXIF_GROUPS = (0x8769, 0x8825)  # the Exif and GPS sub-IFDs
DEFAULT_QUALITY = 95  # JPEG and lossy WebP when the source gives no tables of its own
JPEG_SEGMENT = 65533  # the most bytes a JPEG marker segment holds
HOLDS = {  # which output formats can hold each kind
    "EXIF": ("PNG", "JPEG", "WEBP", "TIFF"),
    "XMP": ("PNG", "JPEG", "WEBP", "TIFF"),
    "ICC profile": ("PNG", "JPEG", "WEBP", "TIFF", "BMP"),
    "DPI": ("PNG", "JPEG", "TIFF", "BMP"),
    "JPEG comment": ("JPEG",),
    "TIFF tags": ("PNG", "JPEG", "WEBP", "TIFF"),
    "PNG chunk": ("PNG",),
    "JPEG segment": ("JPEG",),
}
# JPEG APPn segments the writer rebuilds (JFIF, EXIF, XMP, ICC) or that describe the old file
# (MPF: offsets of other pictures; Adobe: the old colour transform); any other is carried as it was
# (IPTC / Photoshop in APP13, extended XMP, maker segments...).
JPEG_REBUILT = (("APP0", b"JFIF\0"), ("APP1", b"Exif\0"), ("APP1", b"http://ns.adobe.com/xap/1.0/\0"),
                ("APP2", b"ICC_PROFILE\0"), ("APP2", b"MPF\0"), ("APP14", b"Adobe"))


@dataclass
class JpegCoding:
    """How a JPEG was compressed: written back the same way unless another quality is asked for."""

    qtables: Dict[int, list]  # Pillow's `im.quantization`
    subsampling: int  # Pillow's code: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0, -1 = none (grey, CMYK) or other
    progressive: bool = False
    sampling: Tuple[Tuple[int, int], ...] = ()  # (horizontal, vertical) sampling factors per component


# ---------------------------------------------------------------------------------------------
# Read side.


def capture(img: Image.Image, file: Source, info) -> None:
    """Fill `info` (a SourceInfo) with the metadata of `img`, decoded from `file` (its bytes, or the
    open file, seekable: only headers and metadata are read back), orientation applied."""
    f = _as_file(file)
    exif = img.getexif()
    info.exif = exif.tobytes() if len(exif) else None
    if info.exif_raw:  # carried byte for byte, its orientation entry set as the pixels now stand
        info.exif = exif_raw.with_orientation(exif_raw.without_thumbnail(info.exif_raw), 1)
        info.notes.append(exif_raw.describe(info.exif_raw, exif))
    info.icc_profile = img.info.get("icc_profile") or (bmp_icc(f) if img.format == "BMP" else None)
    if img.mode in ("LAB", "HSV") and info.icc_profile:  # written as an RGB view (runtime/image_pixels.py),
        info.icc_profile = None  # whose colours that profile would misname
        info.notes.append(f"its {img.mode} ICC profile not kept: the image is written as RGB")
    info.dpi = img.info.get("dpi")
    xmp = img.info.get("xmp")  # after exif_transpose, which resets the orientation inside it too
    info.xmp = xmp.encode("utf-8") if isinstance(xmp, str) else xmp or None
    info.digest = digest(f)
    _capture_format(img, f, info)


def _capture_format(img: Image.Image, f: BinaryIO, info) -> None:
    """What only one format carries: JPEG coding and comment, PNG chunks and depth, TIFF tags."""
    if img.format in JPEG_FORMATS:
        info.comment = img.info.get("comment") or None
        info.jpeg_segments = _jpeg_segments(img)
        info.jpeg = jpeg_coding(img)
    elif img.format == "PNG":
        rebuilt = PNG_REBUILT if info.dpi else PNG_REBUILT - {b"pHYs"}  # an aspect-only pHYs is carried
        info.png_chunks = [(tag, body) for tag, body in png_chunk_list(f)
                           if tag not in rebuilt and not _is_xmp(tag, body)]
        info.grey_bits = png_grey_bits(f)
    elif img.format == "TIFF":
        info.tiff_tags = {tag: value for tag, value in img.tag_v2.items() if tag not in TIFF_LAYOUT}


def jpeg_coding(img: Image.Image) -> JpegCoding:
    """How an opened JPEG was coded: its tables, subsampling, progressiveness and sampling factors."""
    return JpegCoding(dict(getattr(img, "quantization", None) or {}), JpegImagePlugin.get_sampling(img),
                      bool(img.info.get("progressive")), jpeg_sampling(img))


def _jpeg_segments(img: Image.Image) -> List[Tuple[str, bytes]]:
    """The APPn segments of a JPEG that are carried as they were (not in JPEG_REBUILT)."""
    return [(app, body) for app, body in getattr(img, "applist", [])
            if app.startswith("APP") and not any(app == a and body.startswith(p) for a, p in JPEG_REBUILT)]


def _as_file(file: Source) -> BinaryIO:
    return io.BytesIO(file) if isinstance(file, (bytes, bytearray, memoryview)) else file


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def jpeg_sampling(img: Image.Image) -> Tuple[Tuple[int, int], ...]:
    return tuple((h, v) for _id, h, v, _table in getattr(img, "layer", []))


def digest(file: Source) -> bytes:
    """A file's fingerprint (size and CRC-32, read in 1 MiB pieces): a copy of the input is checked
    against it, so a file changed between its decoding and its copy is never copied. Not a defence
    against forgery (whoever can rewrite the input can do so before it is read); a CRC costs a
    fraction of a hash."""
    f = _as_file(file)
    f.seek(0)
    crc, size = 0, 0
    while piece := f.read(1 << 20):
        crc, size = zlib.crc32(piece, crc), size + len(piece)
    return struct.pack(">QI", size, crc)


def png_chunk_list(file: Source) -> List[Tuple[bytes, bytes]]:
    """(tag, payload) of every chunk of a PNG but the pixel data (IDAT), in order."""
    f = _as_file(file)
    return [(tag, _read_at(f, start, end - start)) for tag, start, end in _png_spans(f) if tag != b"IDAT"]


def _png_spans(f: BinaryIO) -> Iterator[Tuple[bytes, int, int]]:
    """(tag, payload start, payload end) per chunk, from the chunk headers alone; stops at IEND or
    at a chunk running past the end."""
    total = f.seek(0, io.SEEK_END)
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= total:
        head = _read_at(f, pos, 8)
        size, tag = struct.unpack(">I", head[:4])[0], head[4:8]
        if pos + 12 + size > total:
            return
        yield tag, pos + 8, pos + 8 + size
        if tag == b"IEND":
            return
        pos += 12 + size


def png_grey_bits(file: Source) -> Optional[int]:
    """1, 2 or 4 for a low-bit greyscale PNG (IHDR colour type 0), else None."""
    head = _read_at(_as_file(file), 0, 26)
    if len(head) == 26 and head[12:16] == b"IHDR" and head[25] == 0 and head[24] < 8:
        return head[24]
    return None


def _is_xmp(tag: bytes, body: bytes) -> bool:
    return tag == b"iTXt" and body.startswith(XMP_KEY + b"\0")


def bmp_icc(file: Source) -> Optional[bytes]:
    """The ICC profile embedded in a BMP's v5 header (Pillow does not read it), else None."""
    f = _as_file(file)
    head = _read_at(f, 0, 14 + 124)
    if len(head) < 14 + 124 or head[:2] != b"BM" or struct.unpack("<I", head[14:18])[0] != 124:
        return None
    cs_type, = struct.unpack("<I", head[14 + 56:14 + 60])
    offset, size = struct.unpack("<II", head[14 + 112:14 + 120])
    if cs_type != 0x4D424544 or not size or 14 + offset + size > f.seek(0, io.SEEK_END):  # 'MBED': embedded
        return None
    return _read_at(f, 14 + offset, size)


# ---------------------------------------------------------------------------------------------
# Write side.


def family(mode: str) -> str:
    """The colour space an ICC profile would describe for pixels of this mode."""
    return {"1": "grey", "L": "grey", "LA": "grey", "I;16": "grey", "I": "grey", "LA;16": "grey",
            "CMYK": "cmyk"}.get(mode, "rgb")


def with_orientation(exif: Optional[bytes], orientation: int) -> bytes:
    """`exif` (or none) with its orientation tag set: a file written on its source's grid says
    how to turn it, as the source did."""
    if exif and not exif_raw.pillow_reads_whole(exif):
        return exif_raw.with_orientation(exif, orientation)
    tags = Image.Exif()
    if exif:
        tags.load(exif)
    tags[0x0112] = orientation
    return tags.tobytes()


def pillow_params(fmt: str, mode: str, source, keep_icc: bool, quality: Optional[int]) -> Dict[str, object]:
    """Pillow's save keywords for `fmt` (not PNG: see `png_chunks`) that keep the source's metadata and coding."""
    # icc_profile=None too: Pillow would otherwise take a profile from the image's own info.
    params: Dict[str, object] = {"icc_profile": source.icc_profile if keep_icc else None}
    if source.dpi and fmt in ("JPEG", "TIFF", "BMP"):
        params["dpi"] = source.dpi
    if fmt == "JPEG":
        params.update(_jpeg_params(mode, source, quality))
    elif fmt == "WEBP":
        params.update(_webp_params(source, quality))
    elif fmt == "TIFF":
        params["tiffinfo"] = tiff_tags(source)
    return params


def _jpeg_params(mode: str, source, quality: Optional[int]) -> Dict[str, object]:
    """A JPEG source's own tables and subsampling, unless another quality is asked for."""
    params: Dict[str, object] = {}
    coding: Optional[JpegCoding] = source.jpeg
    needed = 2 if mode == "RGB" else 1  # YCbCr: luma and chroma tables; grey and CMYK use table 0
    if coding is not None and quality is None and len(coding.qtables) >= needed:
        params["qtables"] = coding.qtables
    else:
        params["quality"] = quality or DEFAULT_QUALITY
    if coding is not None and coding.subsampling != -1 and mode == "RGB":
        params["subsampling"] = coding.subsampling
    if coding is not None and coding.progressive:
        params["progressive"] = True
    # One marker segment each (64 kB): a longer one would fail the whole write; `lost` names it.
    for key, value in (("exif", source.exif), ("xmp", source.xmp), ("comment", source.comment)):
        if value and len(value) <= JPEG_SEGMENT - 64:
            params[key] = value
    if source.jpeg_segments:  # written as they were, after the ones Pillow makes
        params["extra"] = _jpeg_markers(source.jpeg_segments)
    return params


def _jpeg_markers(segments: List[Tuple[str, bytes]]) -> bytes:
    """APPn segments as marker bytes: FF En, the length (itself included), the payload."""
    return b"".join(b"\xff" + bytes([0xE0 + int(app[3:])]) + struct.pack(">H", len(body) + 2) + body
                    for app, body in segments)


def _webp_params(source, quality: Optional[int]) -> Dict[str, object]:
    # Lossless unless the source was lossy; `exact` keeps the colour under zero alpha, which
    # libwebp would otherwise rewrite to compress better.
    params: Dict[str, object] = {"lossless": True, "quality": 100, "method": 4, "exact": True} if source.lossless \
        else {"quality": quality or DEFAULT_QUALITY}
    if source.exif:
        params["exif"] = source.exif
    if source.xmp:
        params["xmp"] = source.xmp
    return params


def tiff_tags(source) -> Image.Exif:
    """The tags a TIFF output carries: the source's EXIF (with its sub-IFDs) and TIFF tags, XMP in tag 700."""
    tags = Image.Exif()
    if source.exif:
        try:
            tags.load(source.exif)
        except Exception:  # a broken EXIF block is left out; `lost` names it
            tags = Image.Exif()
        for tag in (TIFF_LAYOUT - set(EXIF_GROUPS)) & set(tags):  # the sub-IFD pointers stay: Pillow
            del tags[tag]  # writes each sub-IFD from them (`get_ifd`)
    for tag, value in (source.tiff_tags or {}).items():
        tags[tag] = value
    if source.xmp:
        tags[700] = source.xmp
    return tags


def png_chunks(source, same_mode: bool, keep_icc: bool) -> List[Tuple[bytes, bytes]]:
    """The metadata chunks of a PNG output: ICC, EXIF, DPI, XMP, and the source's own chunks."""
    chunks: List[Tuple[bytes, bytes]] = []
    if keep_icc:
        chunks.append((b"iCCP", b"ICC Profile\0\0" + zlib.compress(source.icc_profile)))
    if source.exif:
        chunks.append((b"eXIf", source.exif[6:] if source.exif.startswith(b"Exif\0\0") else source.exif))
    if source.dpi:  # pixels per metre, rounded as Pillow's writer does
        ppm = [int(d / 0.0254 + 0.5) for d in source.dpi]
        chunks.append((b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if source.xmp:
        chunks.append((b"iTXt", XMP_KEY + b"\0\0\0\0\0" + source.xmp))
    chunks += [(tag, body) for tag, body in source.png_chunks or [] if same_mode or tag not in PNG_MODE_BOUND]
    return chunks


def splice_png(data: bytes, chunks: List[Tuple[bytes, bytes]]) -> bytes:
    """Insert `chunks` into the PNG `data`: colour chunks right after IHDR, the rest before the first IDAT."""
    if not chunks:
        return data
    spans = list(_png_spans(io.BytesIO(data)))
    ihdr_end = spans[0][2] + 4  # after IHDR's CRC
    idat_start = next(start for tag, start, _ in spans if tag == b"IDAT") - 8
    early = b"".join(_chunk(t, b) for t, b in chunks if t in PNG_BEFORE_PLTE)
    late = b"".join(_chunk(t, b) for t, b in chunks if t not in PNG_BEFORE_PLTE)
    return data[:ihdr_end] + early + data[ihdr_end:idat_start] + late + data[idat_start:]


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def encode_bmp_v5(image: Image.Image, icc: Optional[bytes], dpi: Optional[Tuple[float, float]]) -> bytes:
    """An RGB (24-bit) or RGBA (32-bit, alpha mask set) BMP with a v5 header, the ICC profile embedded.

    Pillow's BMP writer has a 40-byte header: it stores RGBA as 32-bit BI_RGB, whose fourth byte
    readers (Pillow included) ignore, and it has nowhere to put a profile.
    """
    rgba = image.mode == "RGBA"
    w, h = image.size
    bgr = image.tobytes("raw", "BGRA" if rgba else "BGR", 0, -1)  # bottom-up rows
    stride = w * (4 if rgba else 3)
    pad = (-stride) % 4
    if pad:
        bgr = b"".join(bgr[i:i + stride] + b"\0" * pad for i in range(0, len(bgr), stride))
    profile = icc or b""
    ppm = [int(d / 0.0254 + 0.5) for d in dpi] if dpi else [0, 0]
    masks = (0xFF0000, 0xFF00, 0xFF, 0xFF000000) if rgba else (0, 0, 0, 0)
    header = struct.pack("<IiiHHIIiiII4I", 124, w, h, 1, 32 if rgba else 24, 3 if rgba else 0, len(bgr),
                         ppm[0], ppm[1], 0, 0, *masks)
    cs_type = 0x4D424544 if profile else 0x73524742  # 'MBED' (embedded profile) or 'sRGB'
    header += struct.pack("<I36x3II", cs_type, 0, 0, 0, 4)  # endpoints, gammas unused; intent: images
    header += struct.pack("<III", 124 + len(bgr) if profile else 0, len(profile), 0)
    offset = 14 + len(header)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(bgr) + len(profile), 0, 0, offset)
    return file_header + header + bgr + profile
