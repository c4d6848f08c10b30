"""Image modes in and out: what the model sees, what is written back, and bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from runtime import image_pixels as rp
from runtime import image_read as rr
from runtime import image_write as rw
from runtime import images as ri

RNG = np.random.default_rng(7)


def _rgb(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _half_mask(h, w):
    m = np.zeros((h, w), bool)
    m[:, : w // 2] = True
    return m


def _luma601(rgb):
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def test_luma_a_band_of_rows_at_a_time_is_the_hand_computed_601():
    rgb = np.random.default_rng(3).integers(0, 256, (11, 7, 3), dtype=np.uint8)
    for band in (1, 4, 11, 1024):  # bands that split the rows unevenly, one, more than all
        assert np.array_equal(rp._luma(rgb, band), _luma601(rgb))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "1", "P", "I;16", "CMYK"])
def test_outside_mask_keeps_source_values_and_mode(mode):
    h, w = 9, 12
    base = Image.fromarray(_rgb(h, w))
    if mode == "RGBA":
        src = Image.fromarray(np.dstack([_rgb(h, w), RNG.integers(0, 256, (h, w), dtype=np.uint8)]), "RGBA")
    elif mode == "LA":
        src = Image.fromarray(RNG.integers(0, 256, (h, w, 2), dtype=np.uint8), "LA")
    elif mode == "P":
        src = base.quantize(8)
        src.info["transparency"] = 2
    elif mode == "I;16":
        src = Image.fromarray(RNG.integers(0, 65536, (h, w)).astype(np.uint16))
    else:
        src = base.convert(mode)
    prep = rp.prepare(src)
    assert prep.rgb.shape == (h, w, 3) and prep.rgb.dtype == np.uint8
    restored = _rgb(h, w)
    mask = _half_mask(h, w)
    out = rp.finish(prep, restored, mask)
    assert out.mode == ("I;16" if mode == "I;16" else mode) and out.size == (w, h)
    a_in, a_out = np.asarray(src), np.asarray(out)
    assert np.array_equal(a_out[~mask], a_in[~mask])  # every channel, every bit, incl. alpha and 16-bit
    if mode in ("RGBA", "LA"):
        assert np.array_equal(a_out[..., -1], a_in[..., -1])  # alpha kept everywhere
    if mode == "RGB":
        assert np.array_equal(a_out[mask], restored[mask])
    if mode == "L":
        assert np.array_equal(a_out[mask], _luma601(restored)[mask])  # hand-computed ITU-R 601 luma
    if mode == "I;16":
        assert np.array_equal(a_out[mask], _luma601(restored)[mask].astype(np.uint16) * 257)
        # the model saw the nearest 8-bit level of each 16-bit value
        assert np.array_equal(prep.rgb[..., 0], ((a_in.astype(np.int64) + 128) // 257).astype(np.uint8))
    if mode == "P":
        assert out.info.get("transparency") == 2 and out.getpalette() == src.getpalette()
        # transparent pixels keep their index even where masked; others never take it
        assert np.array_equal(a_out[a_in == 2], a_in[a_in == 2])
        assert not np.any(a_out[(a_in != 2)] == 2)


def test_grey_is_replicated_and_round_trips_exactly():
    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    prep = rp.prepare(Image.fromarray(grey, "L"))
    assert np.array_equal(prep.rgb, np.repeat(grey[..., None], 3, axis=2))
    # restoring a grey pixel to grey gives the same level back (the luma weights sum to 1)
    out = rp.finish(prep, prep.rgb, np.ones((5, 7), bool))
    assert np.array_equal(np.asarray(out), grey)


def test_palette_picks_nearest_opaque_entry():
    src = Image.new("P", (2, 1))
    src.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10, 200, 0, 0])
    src.putdata([0, 0])
    src.info["transparency"] = 3  # the (200, 0, 0) entry is transparent
    prep = rp.prepare(src)
    restored = np.array([[[205, 0, 0], [20, 240, 20]]], np.uint8)
    out = rp.finish(prep, restored, np.ones((1, 2), bool))
    # (205, 0, 0) is nearest to the transparent entry 3, which may not be taken: entry 1 is the
    # nearest opaque one; (20, 240, 20) → entry 2
    assert list(np.asarray(out)[0]) == [1, 2]


def test_one_bit_thresholds_at_128():
    src = Image.new("1", (3, 1), 0)
    prep = rp.prepare(src)
    restored = np.array([[[127, 127, 127], [128, 128, 128], [255, 255, 255]]], np.uint8)
    out = rp.finish(prep, restored, np.ones((1, 3), bool))
    assert out.mode == "1" and list(np.asarray(out.convert("L"))[0]) == [0, 255, 255]


def test_writable_conversions():
    la = Image.fromarray(RNG.integers(0, 256, (4, 4, 2), dtype=np.uint8), "LA")
    img, note = rw.writable(la, "JPEG")
    assert img.mode == "L" and "alpha dropped" in note
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))
    img, note = rw.writable(deep, "JPEG")
    assert img.mode == "L" and list(np.asarray(img)[0]) == [0, 100, 255] and "16-bit" in note  # scaled, not clipped
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    img, _ = rw.writable(cmyk, "PNG")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 0, 0)
    img, note = rw.writable(Image.new("RGBA", (2, 2)), "PNG")
    assert img.mode == "RGBA" and note is None
    pal = Image.new("P", (2, 2))
    pal.info["transparency"] = 0
    assert rw.writable(pal, "TIFF")[0].mode == "RGBA"  # only PNG stores palette transparency


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_encode_decodes_back_in_every_format(fmt, tmp_path):
    img = Image.fromarray(_rgb(10, 14))
    data, mode, note, *_ = rw.encode_image(img, fmt, ri.SourceInfo(lossless=True))
    back = Image.open(io.BytesIO(data))
    assert back.format == fmt and back.size == (14, 10) and mode == "RGB"
    if fmt != "JPEG":
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(img))  # lossless (WebP too)


def test_icc_kept_in_family_dropped_across(tmp_path):
    src = ri.SourceInfo(icc_profile=b"fake-icc")
    data, *_ = rw.encode_image(Image.new("RGB", (2, 2)), "PNG", src)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == b"fake-icc"
    data, mode, _, lost, _ = rw.encode_image(Image.new("CMYK", (2, 2)), "PNG", src)
    assert mode == "RGB" and "icc_profile" not in Image.open(io.BytesIO(data)).info
    assert lost == ["CMYK written as RGB (PNG cannot store CMYK)",  # inks lost: named, not a mere note
                    "ICC profile not kept (it describes cmyk colour, the image is written as RGB)"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_applied_on_read(fmt, tmp_path):
    arr = _rgb(2, 4)  # landscape 4x2 stored, orientation 6 = rotate 90° clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"o.{fmt.lower()}"
    Image.fromarray(arr).save(path, fmt, exif=exif, **({"quality": 100} if fmt == "JPEG" else {}))
    img, info = rr.read_image(path)
    assert img.size == (2, 4)  # portrait as viewed
    if fmt == "PNG":
        assert np.array_equal(np.asarray(img), np.rot90(arr, k=-1))
    if info.exif:  # the orientation has been applied, so it must not be written again
        kept = Image.Exif()
        kept.load(info.exif)
        assert kept.get(0x0112, 1) == 1


def test_read_errors_name_the_reason(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    buf = io.BytesIO()
    Image.fromarray(_rgb(64, 64)).save(buf, "PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.new("L", (300, 200)).save(tmp_path / "bomb.png")
    cases = {
        "zero.png": "empty file",
        "text.jpg": "not a PNG, JPEG, WebP, BMP or TIFF",
        "trunc.png": "truncated or corrupt",
        "bomb.png": "300x200 = 60,000 pixels exceeds the limit of 50,000",
        "missing.png": "no such file",
    }
    for name, reason in cases.items():
        with pytest.raises(ri.ImageError, match=reason):
            rr.read_image(tmp_path / name, max_pixels=50_000)


@pytest.mark.parametrize("compression, lossless", [("tiff_deflate", True), ("packbits", True), ("jpeg", False)])
def test_a_tiff_is_lossless_unless_its_compression_is_jpeg(tmp_path, compression, lossless):
    """A JPEG-compressed TIFF's colours are not exact: the steps that count on exact colours
    (the membrane near the edge, the solid check) must not take it for lossless."""
    rgb = np.random.default_rng(4).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.tif", "TIFF", compression=compression)
    assert rr.read_image(tmp_path / "x.tif")[1].lossless is lossless


def test_webp_lossless_detection(tmp_path):
    img = Image.fromarray(_rgb(8, 8))
    for lossless in (True, False):
        buf = io.BytesIO()
        img.save(buf, "WEBP", lossless=lossless)
        assert rr._webp_lossless(buf.getvalue()) is lossless
        (tmp_path / "x.webp").write_bytes(buf.getvalue())
        assert rr.read_image(tmp_path / "x.webp")[1].lossless is lossless


def test_chroma_subsampling_of_each_file():
    """A JPEG's own subsampling; a lossy WebP's chroma is always at half size both ways (4:2:0,
    Pillow's code 2), and a WebP not known to be lossless is taken as lossy; other files none."""
    assert [ri.chroma_subsampling("JPEG", False, s) for s in (0, 1, 2)] == [0, 1, 2]
    assert ri.chroma_subsampling("WEBP", False, None) == 2
    assert ri.chroma_subsampling("WEBP", True, None) is None
    assert ri.chroma_subsampling("PNG", True, None) is None
    assert ri.chroma_subsampling(None, False, None) is None  # an array: how it was coded is not known


def test_to_pil_array_kinds():
    assert rp.to_pil(np.zeros((2, 3), np.uint8)).mode == "L"
    assert rp.to_pil(np.zeros((2, 3), np.uint16)).mode == "I;16"
    assert rp.to_pil(np.zeros((2, 3), bool)).mode == "1"
    assert rp.to_pil(np.zeros((2, 3, 4), np.uint8)).mode == "RGBA"
    with pytest.raises(ValueError):
        rp.to_pil(np.zeros((2, 3, 3), np.float32))


# ---------------------------------------------------------------------------------------------
# 16-bit colour PNGs: Pillow decodes them to 8 bits, so they are read and written with pypng.


def _save_png16(path, array, **chunks):
    """A 16-bit PNG written with pypng; `chunks` (tag=bytes) are put right after IHDR."""
    import png

    h, w, c = array.shape
    buf = io.BytesIO()
    png.Writer(w, h, greyscale=c == 2, alpha=c in (2, 4), bitdepth=16).write_array(buf, array.reshape(-1))
    parts = list(png.Reader(bytes=buf.getvalue()).chunks())
    extra = [(tag.encode(), data) for tag, data in chunks.items()]
    with open(path, "wb") as f:
        png.write_chunks(f, parts[:1] + extra + parts[1:])


def _read_png16(data):
    import png

    w, h, pixels, meta = png.Reader(bytes=data).read_flat()
    return np.asarray(pixels, dtype=np.uint16).reshape(h, w, meta["planes"]), meta


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_16bit_colour_png_kept_whole(planes, tmp_path):
    h, w = 9, 12
    src = RNG.integers(0, 65536, (h, w, planes)).astype(np.uint16)
    _save_png16(tmp_path / "deep.png", src)
    img, info = rr.read_image(tmp_path / "deep.png")
    assert info.dropped == [] and info.deep is not None and np.array_equal(info.deep.array, src)
    prep = rp.prepare(img, info.deep)
    colour = src[..., 0] if planes == 2 else src[..., :3]
    view = ((colour.astype(np.int64) + 128) // 257).astype(np.uint8)  # round(v / 257), as I;16
    assert np.array_equal(prep.rgb, np.repeat(view[..., None], 3, 2) if planes == 2 else view)
    restored, mask = _rgb(h, w), _half_mask(h, w)
    out = rp.finish(prep, restored, mask)
    data, mode, note, *_ = rw.encode_image(out, "PNG", info)
    assert mode == {2: "LA;16", 3: "RGB;16", 4: "RGBA;16"}[planes] and note is None
    got, meta = _read_png16(data)
    assert meta["bitdepth"] == 16 and got.shape == src.shape
    assert np.array_equal(got[~mask], src[~mask])  # every channel, all 16 bits
    if planes in (2, 4):
        assert np.array_equal(got[..., -1], src[..., -1])  # alpha, masked or not
    want = _luma601(restored) if planes == 2 else restored
    assert np.array_equal((got[..., 0] if planes == 2 else got[..., :3])[mask], want[mask].astype(np.uint16) * 257)


def test_16bit_colour_png_to_another_format_is_refused_or_8bit(tmp_path):
    src = RNG.integers(0, 65536, (4, 5, 3)).astype(np.uint16)
    _save_png16(tmp_path / "deep.png", src)
    with pytest.raises(ri.LossyInputError, match="16-bit RGB written as 8-bit"):
        rr.read_image(tmp_path / "deep.png", write_format="JPEG")
    img, info = rr.read_image(tmp_path / "deep.png", allow_lossy=True, write_format="JPEG")
    assert info.deep is None and info.dropped and img.mode == "RGB"
    # A kept 16-bit image handed to another writer anyway is scaled to 8 bits, and that is named.
    deep = ri.DeepImage(src)
    data, mode, note, lost, _ = rw.encode_image(deep, "TIFF")
    assert mode == "RGB" and note is None and lost == ["16-bit RGB written as 8-bit (TIFF cannot store 16 bits)"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), ((src.astype(np.int64) + 128) // 257).astype(np.uint8))


def test_16bit_colour_png_keeps_orientation_icc_dpi_and_colour_key(tmp_path):
    import struct
    import zlib

    src = RNG.integers(0, 65536, (2, 4, 3)).astype(np.uint16)  # stored landscape, viewed portrait
    exif = Image.Exif()
    exif[0x0112] = 6
    phys = struct.pack(">IIB", 11811, 11811, 1)  # 300 dpi
    key = struct.pack(">HHH", *src[0, 0])
    _save_png16(tmp_path / "deep.png", src, iCCP=b"x\0\0" + zlib.compress(b"fake-icc"), eXIf=exif.tobytes()[6:],
                pHYs=phys, tRNS=key)
    img, info = rr.read_image(tmp_path / "deep.png")
    assert img.size == (2, 4) and np.array_equal(info.deep.array, np.rot90(src, -1))
    out = rp.finish(rp.prepare(img, info.deep), np.zeros((4, 2, 3), np.uint8), np.zeros((4, 2), bool))
    data, *_ = rw.encode_image(out, "PNG", info)
    got, meta = _read_png16(data)
    assert np.array_equal(got, np.rot90(src, -1)) and meta["transparent"] == tuple(int(v) for v in src[0, 0])
    back = Image.open(io.BytesIO(data))
    assert back.info.get("icc_profile") == b"fake-icc" and round(back.info["dpi"][0]) == 300
    assert back.getexif().get(0x0112, 1) == 1  # applied, not written again


# ---------------------------------------------------------------------------------------------
# Metadata and fidelity: each kind survives the round trip through read → restore → write, or
# the write names it as lost and why. Every case restores half the image, so the file is
# re-encoded, not copied.


def _chunk(tag: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def _with_chunks(png_bytes: bytes, chunks) -> bytes:
    """`png_bytes` with raw (tag, body) chunks put right after IHDR."""
    return png_bytes[:33] + b"".join(_chunk(t, b) for t, b in chunks) + png_bytes[33:]


def _png_bytes(img, **params):
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


TEXT_CHUNKS = [
    (b"tEXt", b"Title\0A harbour at dusk"),
    (b"zTXt", b"Comment\0\0" + __import__("zlib").compress(b"scanned from a slide")),
    (b"iTXt", b"Author\0\0\0fr\0Auteur\0Jos\xc3\xa9"),
]
COLOUR_CHUNKS = [(b"gAMA", (45455).to_bytes(4, "big")), (b"cHRM", bytes(range(32))), (b"sRGB", b"\0"),
                 (b"pHYs", (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"\0")]  # aspect 2:3, no DPI
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _exif_with_ifd():
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif.get_ifd(0x8769)[0x9003] = "2021:05:01 10:00:00"  # DateTimeOriginal, in the Exif sub-IFD
    return exif


def _src_png_text(path):
    path.write_bytes(_with_chunks(_png_bytes(Image.fromarray(_rgb(16, 20))), TEXT_CHUNKS))


def _src_png_colour(path):
    path.write_bytes(_with_chunks(_png_bytes(Image.fromarray(_rgb(16, 20))), COLOUR_CHUNKS))


def _src_png_xmp(path):
    path.write_bytes(_with_chunks(_png_bytes(Image.fromarray(_rgb(16, 20))),
                                  [(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + XMP)]))


def _src_jpeg(path):
    Image.fromarray(_rgb(16, 24)).save(path, "JPEG", quality=80, exif=_exif_with_ifd(), xmp=XMP,
                                       comment=b"shot on film", icc_profile=b"fake-rgb-icc")


IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x05\x00\x07harbour\x00"  # APP13: a title


def _src_jpeg_iptc(path):
    Image.fromarray(_rgb(16, 24)).save(path, "JPEG", quality=80,
                                       extra=b"\xff\xed" + (len(IPTC) + 2).to_bytes(2, "big") + IPTC)


def _src_tiff_tags(path):
    from PIL import TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[270], tags[315], tags[33432] = "a harbour", "J. Doe", "(c) J. Doe"
    tags[318] = (TiffImagePlugin.IFDRational(313, 1000), TiffImagePlugin.IFDRational(329, 1000))  # white point
    Image.fromarray(_rgb(16, 20)).save(path, "TIFF", tiffinfo=tags, compression="tiff_deflate")


def _src_png_icc(path):
    Image.fromarray(_rgb(16, 20)).save(path, "PNG", icc_profile=b"fake-rgb-icc")


def _src_bmp_icc(path):
    """A v5 BMP with an embedded profile, by hand: the profile after the pixels, its offset from the header."""
    import struct

    h, w = 4, 6
    pixels = _rgb(h, w)[::-1, :, ::-1].tobytes()  # bottom-up BGR, 18-byte rows padded to 20
    pixels = b"".join(pixels[i:i + 18] + b"\0\0" for i in range(0, len(pixels), 18))
    header = struct.pack("<IiiHHIIiiII4I", 124, w, h, 1, 24, 0, len(pixels), 0, 0, 0, 0, 0, 0, 0, 0)
    header += struct.pack("<I36x3II", 0x4D424544, 0, 0, 0, 4) + struct.pack("<III", 124 + len(pixels), 12, 0)
    body = header + pixels + b"fake-rgb-icc"
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 14 + 124) + body)


def _src_jpeg_440(path):
    """A 4:4:0 JPEG (chroma halved vertically): libjpeg writes it through OpenCV, Pillow's writer cannot."""
    cv2 = pytest.importorskip("cv2")
    _ok, data = cv2.imencode(".jpg", _rgb(16, 16), [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440])
    path.write_bytes(data.tobytes())


def _out_chunks(data):
    from runtime.image_metadata import png_chunk_list

    return png_chunk_list(data)


def _check_png_chunks(want):
    return lambda data, lost: all(c in _out_chunks(data) for c in want) and lost == []


def _check_exif_in_tiff(data, lost):
    exif = Image.open(io.BytesIO(data)).getexif()
    return (lost == [] and exif.get(0x010F) == "Canon"
            and exif.get_ifd(0x8769).get(0x9003) == "2021:05:01 10:00:00")


def _check_jpeg_meta(data, lost):
    back = Image.open(io.BytesIO(data))
    return (lost == [] and back.info.get("xmp") == XMP and back.info.get("comment") == b"shot on film"
            and back.info.get("icc_profile") == b"fake-rgb-icc" and back.getexif().get(0x010F) == "Canon")


def _check_tiff_tags(data, lost):
    tags = Image.open(io.BytesIO(data)).tag_v2
    return (lost == [] and (tags.get(270), tags.get(315), tags.get(33432)) == ("a harbour", "J. Doe", "(c) J. Doe")
            and np.allclose([float(v) for v in tags.get(318)], [0.313, 0.329]))


def _check_bmp_icc(data, lost):
    from runtime.image_metadata import bmp_icc

    return lost == [] and bmp_icc(data) == b"fake-rgb-icc" and Image.open(io.BytesIO(data)).mode == "RGB"


def _lost_is(*expected):
    return lambda data, lost: lost == list(expected)


# (name, source builder, its suffix, output format, check(data, lost) -> bool)
METADATA_CASES = [
    ("PNG text chunks kept in PNG", _src_png_text, ".png", "PNG", _check_png_chunks(TEXT_CHUNKS)),
    ("PNG text chunks named lost in JPEG", _src_png_text, ".png", "JPEG",
     _lost_is("PNG chunks iTXt, tEXt, zTXt not kept (JPEG cannot hold it)")),
    ("gAMA, cHRM, sRGB, aspect-only pHYs kept in PNG", _src_png_colour, ".png", "PNG", _check_png_chunks(COLOUR_CHUNKS)),
    ("gAMA, cHRM, sRGB named lost in WebP", _src_png_colour, ".png", "WEBP",
     _lost_is("PNG chunks cHRM, gAMA, pHYs, sRGB not kept (WEBP cannot hold it)")),
    ("XMP of a PNG kept in WebP", _src_png_xmp, ".png", "WEBP",
     lambda data, lost: lost == [] and Image.open(io.BytesIO(data)).info.get("xmp") == XMP),
    ("XMP of a PNG kept in PNG", _src_png_xmp, ".png", "PNG",
     lambda data, lost: lost == [] and Image.open(io.BytesIO(data)).info.get("xmp") == XMP),
    ("XMP named lost in BMP", _src_png_xmp, ".png", "BMP", _lost_is("XMP not kept (BMP cannot hold it)")),
    ("JPEG XMP, comment, ICC, EXIF kept in JPEG", _src_jpeg, ".jpg", "JPEG", _check_jpeg_meta),
    ("JPEG IPTC (APP13) kept in JPEG", _src_jpeg_iptc, ".jpg", "JPEG",
     lambda data, lost: lost == [] and ("APP13", IPTC) in Image.open(io.BytesIO(data)).applist),
    ("JPEG IPTC (APP13) named lost in PNG", _src_jpeg_iptc, ".jpg", "PNG",
     _lost_is("JPEG APP13 segment not kept (PNG cannot hold it)")),
    ("JPEG comment named lost in PNG", _src_jpeg, ".jpg", "PNG",
     _lost_is("JPEG comment not kept (PNG cannot hold it)")),
    ("EXIF with its sub-IFD kept in TIFF", _src_jpeg, ".jpg", "TIFF",
     lambda data, lost: _check_exif_in_tiff(data, [x for x in lost if not x.startswith("JPEG comment")])),
    ("TIFF tags kept in TIFF", _src_tiff_tags, ".tif", "TIFF", _check_tiff_tags),
    ("TIFF tags named lost in BMP", _src_tiff_tags, ".tif", "BMP",
     _lost_is("TIFF tags 270, 315, 318, 33432 not kept (BMP cannot hold it)")),
    ("ICC kept in BMP", _src_png_icc, ".png", "BMP", _check_bmp_icc),
    ("ICC of a v5 BMP kept in PNG", _src_bmp_icc, ".bmp", "PNG",
     lambda data, lost: lost == [] and Image.open(io.BytesIO(data)).info.get("icc_profile") == b"fake-rgb-icc"),
    ("JPEG 4:4:0 sampling named when Pillow cannot write it", _src_jpeg_440, ".jpg", "JPEG",
     _lost_is("JPEG chroma sampling ((1, 2), (1, 1), (1, 1)) not kept (Pillow writes 4:4:4, 4:2:2 or 4:2:0; "
              "written as ((2, 2), (1, 1), (1, 1)))")),
]


@pytest.mark.parametrize("case", METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_metadata_survives_or_is_named(case, tmp_path):
    _name, build, suffix, fmt, check = case
    path = tmp_path / f"src{suffix}"
    build(path)
    img, info = rr.read_image(path, write_format=fmt)
    prep = rp.prepare(img, info.deep)
    out = rp.finish(prep, _rgb(*prep.rgb.shape[:2]), _half_mask(*prep.rgb.shape[:2]))
    data, _mode, _note, lost, _ = rw.encode_image(out, fmt, info)
    assert Image.open(io.BytesIO(data)).format == fmt
    assert check(data, lost), lost


# Pixel formats Pillow's writers would change: each comes back in its own depth and layout.


def _src_low_bit_grey(bits):
    def build(path):
        import png

        levels = RNG.integers(0, 1 << bits, (12, 10))
        with open(path, "wb") as f:
            png.Writer(10, 12, greyscale=True, bitdepth=bits).write(f, levels.tolist())
    return build


def _src_int32_tiff(path):
    Image.fromarray(RNG.integers(0, 65536, (12, 10)).astype(np.int32)).save(path, "TIFF")


def _src_v5_bmp_rgba(path):
    """A BITMAPV5HEADER BMP, 32-bit BI_BITFIELDS with an alpha mask, built by hand."""
    import struct

    h, w = 6, 5
    bgra = RNG.integers(0, 256, (h, w, 4), dtype=np.uint8)
    pixels = bgra[::-1].tobytes()  # bottom-up rows, B G R A
    header = struct.pack("<IiiHHIIiiII4I", 124, w, h, 1, 32, 3, len(pixels), 2835, 2835, 0, 0,
                         0xFF0000, 0xFF00, 0xFF, 0xFF000000)
    header += struct.pack("<I36x3II", 0x73524742, 0, 0, 0, 4) + struct.pack("<III", 0, 0, 0)
    path.write_bytes(b"BM" + struct.pack("<IHHI", 14 + 124 + len(pixels), 0, 0, 14 + 124) + header + pixels)


def _src_webp_hidden_colour(path):
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(RNG.random((10, 12)) < 0.5, 0, 255)  # colour under zero alpha must stay
    Image.fromarray(rgba, "RGBA").save(path, "WEBP", lossless=True, exact=True)


def _png_depth(data):
    return data[24], data[25]  # IHDR bit depth, colour type


# (name, builder, suffix, check(source path, output bytes, mask) -> bool)
PIXEL_CASES = [
    *[(f"{bits}-bit grey PNG", _src_low_bit_grey(bits), ".png",
       lambda src, data, m, bits=bits: _png_depth(data) == (bits, 0)
       and np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[~m], np.asarray(Image.open(src))[~m]))
      for bits in (1, 2, 4)],
    ("32-bit integer TIFF", _src_int32_tiff, ".tif",
     lambda src, data, m: Image.open(io.BytesIO(data)).mode == "I"
     and Image.open(io.BytesIO(data)).tag_v2[258] == (32,)
     and np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[~m], np.asarray(Image.open(src))[~m])),
    ("v5 BMP with alpha", _src_v5_bmp_rgba, ".bmp",
     lambda src, data, m: Image.open(io.BytesIO(data)).mode == "RGBA"
     and np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[..., 3], np.asarray(Image.open(src))[..., 3])
     and np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[~m], np.asarray(Image.open(src))[~m])),
    ("lossless WebP, colour under zero alpha", _src_webp_hidden_colour, ".webp",
     lambda src, data, m: np.array_equal(np.asarray(Image.open(io.BytesIO(data)))[~m], np.asarray(Image.open(src))[~m])),
]


@pytest.mark.parametrize("case", PIXEL_CASES, ids=[c[0] for c in PIXEL_CASES])
def test_pixel_format_written_back_in_kind(case, tmp_path):
    _name, build, suffix, check = case
    path = tmp_path / f"src{suffix}"
    build(path)
    img, info = rr.read_image(path)
    prep = rp.prepare(img, info.deep)
    h, w = prep.rgb.shape[:2]
    mask = _half_mask(h, w)
    out = rp.finish(prep, _rgb(h, w), mask)
    data, _mode, note, lost, _ = rw.encode_image(out, info.format, info)
    assert note is None and lost == [], (note, lost)
    assert check(path, data, mask)


def test_an_arithmetic_coded_jpeg_is_decoded_whole_and_a_12_bit_one_named(tmp_path):
    """An arithmetic-coded JPEG larger than one of Pillow's reads (64 kB) decodes to the pixels of
    the same coefficients Huffman-coded, its whole file counted as held; one whose frame says 12
    bits is refused by that name (Pillow reads 8-bit JPEGs only)."""
    jpeglib = pytest.importorskip("jpeglib")
    from skimage import data as skdata

    photo = np.ascontiguousarray(np.concatenate([skdata.astronaut()] * 2, axis=1))  # 512 x 1024
    with jpeglib.version("turbo210"):  # libjpeg 6b, jpeglib's default, writes no arithmetic coding
        jpeglib.from_spatial(photo).write_spatial(str(tmp_path / "arith.jpg"), qt=90, flags=["+ARITH_CODE"])
        jpeglib.read_dct(str(tmp_path / "arith.jpg")).write_dct(str(tmp_path / "huffman.jpg"))
    data = (tmp_path / "arith.jpg").read_bytes()
    assert len(data) > 65536 and b"\xff\xc9" in data
    headers = []
    img, info = rr.read_image(tmp_path / "arith.jpg", admit=headers.append)
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(tmp_path / "huffman.jpg")))
    assert headers[0].held == len(data)
    twelve = bytearray((tmp_path / "huffman.jpg").read_bytes())
    twelve[twelve.index(b"\xff\xc0") + 4] = 12  # the frame's sample precision
    (tmp_path / "twelve.jpg").write_bytes(bytes(twelve))
    with pytest.raises(ri.ImageError, match="a 12-bit JPEG: only 8-bit JPEGs are read"):
        rr.read_image(tmp_path / "twelve.jpg")


def test_a_known_format_with_a_broken_header_is_named_as_that_format(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[29] ^= 0xFF  # the IHDR chunk's checksum
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ri.ImageError, match=r"^a PNG file whose header cannot be read \(.*bad header checksum"):
        rr.read_image(tmp_path / "bad.png")
    (tmp_path / "text.png").write_bytes(b"plain text, no signature")
    with pytest.raises(ri.ImageError, match=r"^not a PNG, JPEG, WebP, BMP or TIFF image, nor a GIF$"):
        rr.read_image(tmp_path / "text.png")


def test_a_lab_image_is_written_as_rgb_without_alpha_and_without_its_lab_profile(tmp_path):
    from PIL import ImageCms

    rgb = np.random.default_rng(5).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    lab = ImageCms.applyTransform(Image.fromarray(rgb), ImageCms.buildTransform(
        ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))
    lab.save(tmp_path / "lab.tif")
    assert Image.open(tmp_path / "lab.tif").info.get("icc_profile")  # the Lab profile Pillow embeds
    img, info = rr.read_image(tmp_path / "lab.tif")
    prep = rp.prepare(img)
    assert prep.mode == "RGB"  # LAB's "A" is a colour axis, not alpha
    assert info.icc_profile is None and "its LAB ICC profile not kept: the image is written as RGB" in info.notes
