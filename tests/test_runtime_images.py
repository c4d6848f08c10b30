"""Image modes in and out: what the model sees, what is written back, and bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

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
    prep = ri.prepare(src)
    assert prep.rgb.shape == (h, w, 3) and prep.rgb.dtype == np.uint8
    restored = _rgb(h, w)
    mask = _half_mask(h, w)
    out = ri.finish(prep, restored, mask)
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
    prep = ri.prepare(Image.fromarray(grey, "L"))
    assert np.array_equal(prep.rgb, np.repeat(grey[..., None], 3, axis=2))
    # restoring a grey pixel to grey gives the same level back (the luma weights sum to 1)
    out = ri.finish(prep, prep.rgb, np.ones((5, 7), bool))
    assert np.array_equal(np.asarray(out), grey)


def test_palette_picks_nearest_opaque_entry():
    src = Image.new("P", (2, 1))
    src.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10, 200, 0, 0])
    src.putdata([0, 0])
    src.info["transparency"] = 3  # the (200, 0, 0) entry is transparent
    prep = ri.prepare(src)
    restored = np.array([[[205, 0, 0], [20, 240, 20]]], np.uint8)
    out = ri.finish(prep, restored, np.ones((1, 2), bool))
    # (205, 0, 0) is nearest to the transparent entry 3, which may not be taken: entry 1 is the
    # nearest opaque one; (20, 240, 20) → entry 2
    assert list(np.asarray(out)[0]) == [1, 2]


def test_one_bit_thresholds_at_128():
    src = Image.new("1", (3, 1), 0)
    prep = ri.prepare(src)
    restored = np.array([[[127, 127, 127], [128, 128, 128], [255, 255, 255]]], np.uint8)
    out = ri.finish(prep, restored, np.ones((1, 3), bool))
    assert out.mode == "1" and list(np.asarray(out.convert("L"))[0]) == [0, 255, 255]


def test_writable_conversions():
    la = Image.fromarray(RNG.integers(0, 256, (4, 4, 2), dtype=np.uint8), "LA")
    img, note = ri.writable(la, "JPEG")
    assert img.mode == "L" and "alpha dropped" in note
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], np.uint16))
    img, note = ri.writable(deep, "JPEG")
    assert img.mode == "L" and list(np.asarray(img)[0]) == [0, 100, 255] and "16-bit" in note  # scaled, not clipped
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    img, _ = ri.writable(cmyk, "PNG")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 0, 0)
    img, note = ri.writable(Image.new("RGBA", (2, 2)), "PNG")
    assert img.mode == "RGBA" and note is None
    pal = Image.new("P", (2, 2))
    pal.info["transparency"] = 0
    assert ri.writable(pal, "TIFF")[0].mode == "RGBA"  # only PNG stores palette transparency


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF"])
def test_encode_decodes_back_in_every_format(fmt, tmp_path):
    img = Image.fromarray(_rgb(10, 14))
    data, mode, note, _ = ri.encode_image(img, fmt, ri.SourceInfo(lossless=True))
    back = Image.open(io.BytesIO(data))
    assert back.format == fmt and back.size == (14, 10) and mode == "RGB"
    if fmt != "JPEG":
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(img))  # lossless (WebP too)


def test_icc_kept_in_family_dropped_across(tmp_path):
    src = ri.SourceInfo(icc_profile=b"fake-icc")
    data, *_ = ri.encode_image(Image.new("RGB", (2, 2)), "PNG", src)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == b"fake-icc"
    data, mode, _, lost = ri.encode_image(Image.new("CMYK", (2, 2)), "PNG", src)
    assert mode == "RGB" and "icc_profile" not in Image.open(io.BytesIO(data)).info
    assert lost == ["ICC profile not kept (it describes cmyk colour, the image is written as RGB)"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_applied_on_read(fmt, tmp_path):
    arr = _rgb(2, 4)  # landscape 4x2 stored, orientation 6 = rotate 90° clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"o.{fmt.lower()}"
    Image.fromarray(arr).save(path, fmt, exif=exif, **({"quality": 100} if fmt == "JPEG" else {}))
    img, info = ri.read_image(path)
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
        "missing.png": "cannot read",
    }
    for name, reason in cases.items():
        with pytest.raises(ri.ImageError, match=reason):
            ri.read_image(tmp_path / name, max_pixels=50_000)


def test_webp_lossless_detection(tmp_path):
    img = Image.fromarray(_rgb(8, 8))
    for lossless in (True, False):
        buf = io.BytesIO()
        img.save(buf, "WEBP", lossless=lossless)
        assert ri._webp_lossless(buf.getvalue()) is lossless
        (tmp_path / "x.webp").write_bytes(buf.getvalue())
        assert ri.read_image(tmp_path / "x.webp")[1].lossless is lossless


def test_to_pil_array_kinds():
    assert ri.to_pil(np.zeros((2, 3), np.uint8)).mode == "L"
    assert ri.to_pil(np.zeros((2, 3), np.uint16)).mode == "I;16"
    assert ri.to_pil(np.zeros((2, 3), bool)).mode == "1"
    assert ri.to_pil(np.zeros((2, 3, 4), np.uint8)).mode == "RGBA"
    with pytest.raises(ValueError):
        ri.to_pil(np.zeros((2, 3, 3), np.float32))


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
    img, info = ri.read_image(tmp_path / "deep.png")
    assert info.dropped == [] and info.deep is not None and np.array_equal(info.deep.array, src)
    prep = ri.prepare(img, info.deep)
    colour = src[..., 0] if planes == 2 else src[..., :3]
    view = ((colour.astype(np.int64) + 128) // 257).astype(np.uint8)  # round(v / 257), as I;16
    assert np.array_equal(prep.rgb, np.repeat(view[..., None], 3, 2) if planes == 2 else view)
    restored, mask = _rgb(h, w), _half_mask(h, w)
    out = ri.finish(prep, restored, mask)
    data, mode, note, _ = ri.encode_image(out, "PNG", info)
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
        ri.read_image(tmp_path / "deep.png", write_format="JPEG")
    img, info = ri.read_image(tmp_path / "deep.png", allow_lossy=True, write_format="JPEG")
    assert info.deep is None and info.dropped and img.mode == "RGB"
    # A kept 16-bit image handed to another writer anyway is scaled to 8 bits, with a note.
    deep = ri.DeepImage(src)
    data, mode, note, _ = ri.encode_image(deep, "TIFF")
    assert mode == "RGB" and "16-bit RGB written as 8-bit" in note
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
    img, info = ri.read_image(tmp_path / "deep.png")
    assert img.size == (2, 4) and np.array_equal(info.deep.array, np.rot90(src, -1))
    out = ri.finish(ri.prepare(img, info.deep), np.zeros((4, 2, 3), np.uint8), np.zeros((4, 2), bool))
    data, *_ = ri.encode_image(out, "PNG", info)
    got, meta = _read_png16(data)
    assert np.array_equal(got, np.rot90(src, -1)) and meta["transparent"] == tuple(int(v) for v in src[0, 0])
    back = Image.open(io.BytesIO(data))
    assert back.info.get("icc_profile") == b"fake-icc" and round(back.info["dpi"][0]) == 300
    assert back.getexif().get(0x0112, 1) == 1  # applied, not written again
