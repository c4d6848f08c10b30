"""What a JPEG holds besides its photo (runtime/jpeg_pictures.py): a camera's preview, a phone's
HDR gain map, a motion photo's video, the EXIF thumbnail. The photo is restored; the other pictures
are written back after it, listed where they now lie, previews and the thumbnail made again from
the restored photo, anything else byte for byte, and what followed the last picture after it."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import ExifTags, Image, ImageOps, JpegImagePlugin
from skimage import data as skdata

from runtime import jpeg_pictures as jp
from runtime.cli import main

PAINT = (slice(100, 140), slice(150, 230))


def _jpeg(image: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save)
    return buf.getvalue()


def _multi_picture(painted: np.ndarray, hdr: bool = False, orientation: int = 1, sizes: bool = False) -> bytes:
    """A painted photo, its preview (MP type "large thumbnail") and a grey gain map in one file, as
    Pillow's MPO writer lays them out; `hdr`: an Ultra HDR file's XMP in front (Pillow then opens
    it as a plain JPEG); `sizes`: the last picture's size listed right (Pillow's writer does not)."""
    photo = Image.fromarray(painted)
    preview = photo.resize((photo.width // 2, photo.height // 2))
    gain = Image.fromarray(np.full((photo.height // 4, photo.width // 4), 77, np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[preview, gain], quality=90, exif=exif.tobytes())
    data = bytearray(buf.getvalue())
    start, end = jp._mpf_segment(bytes(data))
    little, at, _ = jp._entry_table(bytes(data[start:end]))
    struct.pack_into("<I" if little else ">I", data, start + at + 16, 0x010001)  # picture 2: a preview
    if sizes:
        (offset,) = struct.unpack_from("<I" if little else ">I", data, start + at + 32 + 8)
        struct.pack_into("<I" if little else ">I", data, start + at + 32 + 4, len(data) - (start + 8 + offset))
    if hdr:  # in front of the MPF segment: its offsets, counted from that segment, stay right
        xmp = b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description hdrgm:Version="1.0"/></x:xmpmeta>'
        data[2:2] = b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
    return bytes(data)


def _big_endian(data: bytes) -> bytes:
    """`data` with its MPF segment (Pillow's: an index IFD of three tags, then the entry table)
    written in Motorola byte order, as many cameras write it; the same length, so nothing moves."""
    start, end = jp._mpf_segment(data)
    seg, out = data[start:end], bytearray(data[start:end])
    t = 8
    out[t:t + 8] = b"MM\0*" + struct.pack(">I", 8)
    (n,) = struct.unpack_from("<H", seg, t + 8)
    struct.pack_into(">H", out, t + 8, n)
    for j in range(n):
        at = t + 10 + 12 * j
        tag, kind, count, value = struct.unpack_from("<HHII", seg, at)
        struct.pack_into(">HHI", out, at, tag, kind, count)
        if tag == jp.MP_ENTRY:
            struct.pack_into(">I", out, at + 8, value)
            for k in range(count // 16):
                struct.pack_into(">IIIHH", out, t + value + 16 * k, *struct.unpack_from("<IIIHH", seg, t + value + 16 * k))
        elif kind == 4:  # a LONG held in the entry itself; UNDEFINED bytes stay as they are
            struct.pack_into(">I", out, at + 8, value)
    struct.pack_into(">I", out, t + 10 + 12 * n, 0)
    return data[:start] + bytes(out) + data[end:]


def _frames(data: bytes):
    img = Image.open(io.BytesIO(data))
    out = []
    for k in range(getattr(img, "n_frames", 1)):
        img.seek(k)
        out.append(img.copy())
    return img, out


PHOTO = skdata.chelsea()[:256, :384].copy()
PAINTED = PHOTO.copy()
PAINTED[PAINT] = (20, 200, 40)


def test_read_finds_each_picture_after_the_first():
    source = _multi_picture(PAINTED)
    f = io.BytesIO(source)
    f.seek(7)
    pictures = jp.read(f)
    assert f.tell() == 7  # where the decoder had it
    assert [a & 0xFFFFFF for a in pictures.attributes] == [0x010001, 0]
    assert pictures.previews() == [0]
    _, frames = _frames(source)
    for frame, stream in zip(frames[1:], pictures.data):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stream))), np.asarray(frame))
    assert source.endswith(pictures.data[-1])  # Pillow's writer lists a wrong size for the last: the offsets rule


@pytest.mark.parametrize("big_endian", [False, True])
def test_with_pictures_lists_them_where_they_now_lie(big_endian):
    source = _multi_picture(PAINTED)
    if big_endian:
        source = _big_endian(source)
        assert Image.open(io.BytesIO(source)).n_frames == 3  # Pillow reads it too
    pictures = jp.read(io.BytesIO(source))
    assert pictures.little is not big_endian
    primary = _jpeg(Image.fromarray(PHOTO), quality=70, comment=b"new")
    out = jp.with_pictures(primary, pictures)
    img, frames = _frames(out)
    assert img.format == "MPO" and len(frames) == 3
    assert np.array_equal(np.asarray(frames[0]), np.asarray(Image.open(io.BytesIO(primary))))
    for frame, stream in zip(frames[1:], pictures.data):
        assert np.array_equal(np.asarray(frame), np.asarray(Image.open(io.BytesIO(stream))))
    entries = img.mpinfo[0xB002]
    tiff_at = jp._mpf_segment(out)[0] + 8
    assert entries[0]["Size"] == out.index(pictures.data[0])  # the first picture ends where the second starts
    for entry, stream in zip(entries[1:], pictures.data):
        at = tiff_at + entry["DataOffset"]
        assert out[at:at + entry["Size"]] == stream
    again = jp.read(io.BytesIO(out))
    assert again.data == pictures.data and again.attributes == pictures.attributes


def test_an_entry_outside_the_file_is_not_followed(tmp_path):
    source = bytearray(_multi_picture(PAINTED))
    start, end = jp._mpf_segment(bytes(source))
    little, at, _ = jp._entry_table(bytes(source[start:end]))
    struct.pack_into("<I" if little else ">I", source, start + at + 32 + 8, len(source))  # picture 3 past the end
    assert not jp.read(io.BytesIO(bytes(source))).data  # no pictures: what follows the photo is kept as bytes
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cam.jpg").write_bytes(bytes(source))
    result = CliRunner().invoke(main, [str(tmp_path / "in"), str(tmp_path / "out"), "--device", "cpu", "--quiet"])
    assert result.exit_code == 3 and "frames 2-3 of 3 dropped" in result.output  # refused, as before
    assert jp.read(io.BytesIO(_jpeg(Image.fromarray(PHOTO)))) is None  # one picture, no MPF


def _restore(tmp_path, source: bytes, *args):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    (inp / "cam.jpg").write_bytes(source)
    result = CliRunner().invoke(main, [str(inp), str(out), "--device", "cpu", "--quiet", *args])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "restore-report.json").read_text())["records"][0]
    return (out / "cam.jpg").read_bytes(), record


@pytest.mark.parametrize("hdr", [False, True])
def test_restore_run_restores_the_photo_and_carries_the_other_pictures(hdr, tmp_path):
    """The shipped model on a painted camera JPEG with a preview and a gain map: the photo is
    restored, the preview made again from it with its own tables, the gain map kept byte for byte."""
    source = _multi_picture(PAINTED, hdr=hdr)
    assert Image.open(io.BytesIO(source)).format == ("JPEG" if hdr else "MPO")  # Pillow leaves Ultra HDR as JPEG
    out, record = _restore(tmp_path, source)
    assert record["written"] == "changed" and record["kept_blocks"] is not None
    assert "2 more pictures in the file (1 preview, 1 other)" in record["notes"][0]
    before, after = jp.read(io.BytesIO(source)), jp.read(io.BytesIO(out))
    assert after.attributes == before.attributes and after.data[1] == before.data[1]  # the gain map
    _, frames = _frames(out)
    restored = np.asarray(Image.open(io.BytesIO(out)).convert("RGB")).astype(int)
    assert np.abs(restored[PAINT] - PAINTED[PAINT]).mean() > 60  # the paint is gone from the photo...
    preview, old = np.asarray(Image.open(io.BytesIO(after.data[0]))).astype(int), Image.open(io.BytesIO(before.data[0]))
    assert preview.shape[:2] == (old.height, old.width) and Image.open(io.BytesIO(after.data[0])).quantization == old.quantization
    small = np.asarray(Image.fromarray(restored.astype(np.uint8)).resize((old.width, old.height))).astype(int)
    half = (slice(50, 70), slice(75, 115))
    assert np.abs(preview[half] - small[half]).mean() < 6  # ...and from its preview
    assert np.abs(preview[half] - np.asarray(old)[half].astype(int)).mean() > 40


def test_a_turned_photo_written_upright_gets_its_preview_upright(tmp_path):
    """`--quality` re-encodes the whole photo, written upright: the preview (stored on the source's
    grid, as wide as the photo was stored) is made upright too."""
    source = _multi_picture(PAINTED, orientation=6)
    out, _ = _restore(tmp_path, source, "--quality", "85")
    written = Image.open(io.BytesIO(out))
    preview = Image.open(io.BytesIO(jp.read(io.BytesIO(out)).data[0]))
    assert written.size == (256, 384) and preview.size == (128, 192)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(source))).resize(preview.size)
    assert np.abs(np.asarray(preview).astype(int) - np.asarray(upright).astype(int)).mean() < 25


def test_format_png_still_refuses_to_drop_the_other_pictures(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "cam.jpg").write_bytes(_multi_picture(PAINTED))
    result = CliRunner().invoke(main, [str(inp), str(tmp_path / "out"), "--device", "cpu", "--quiet",
                                       "--format", "png"])
    assert result.exit_code == 3 and "frames 2-3 of 3 dropped" in result.output


@pytest.mark.parametrize("endian", ["<", ">"])
def test_an_exif_thumbnail_is_linked_from_ifd0_and_read_back(endian):
    exif = Image.Exif()
    exif.endian = endian  # Intel or Motorola order, as cameras write either
    exif[0x0112] = 6
    exif[0x013B] = "A. Photographer"
    photo = _jpeg(Image.fromarray(PHOTO), quality=80, exif=exif.tobytes())
    thumbnail = _jpeg(Image.fromarray(PHOTO).resize((160, 107)), quality=70)
    assert photo.index(b"Exif\0\0" + (b"II" if endian == "<" else b"MM")) > 0
    out = jp.with_exif_thumbnail(photo, thumbnail)
    img = Image.open(io.BytesIO(out))
    assert img.getexif().get_ifd(ExifTags.IFD.IFD1)[0x0202] == len(thumbnail)  # Pillow reads it too
    assert jp.exif_thumbnail(img.info["exif"]) == thumbnail
    assert img.getexif()[0x013B] == "A. Photographer" and img.getexif()[0x0112] == 6
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(photo))))  # the same photo
    assert jp.with_exif_thumbnail(out, thumbnail) == out  # IFD0 already links on: left as it is
    plain = _jpeg(Image.fromarray(PHOTO))
    bare = jp.with_exif_thumbnail(plain, thumbnail)  # no EXIF: one made for it
    assert jp.exif_thumbnail(Image.open(io.BytesIO(bare)).info["exif"]) == thumbnail
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(bare))), np.asarray(Image.open(io.BytesIO(plain))))
    too_big = b"\xff\xd8" + bytes(70_000)
    assert jp.with_exif_thumbnail(photo, too_big) == photo  # past the segment's 64 kB: none
    assert jp.exif_thumbnail(Image.open(io.BytesIO(photo)).info["exif"]) is None


VIDEO = b"\0\0\0\x18ftypmp42" + bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8))


@pytest.mark.parametrize("save", [{"quality": 90}, {"quality": 90, "progressive": True},
                                  {"quality": 75, "restart_marker_blocks": 4}, {"quality": 90, "grey": True}],
                         ids=["baseline", "progressive", "restarts", "grey"])
def test_what_follows_the_picture_is_found_past_its_scans(save):
    """The stream's end is found by stepping over its segments and coded data (stuffed bytes,
    restart markers, a progressive file's many scans), whatever bytes follow it."""
    save = dict(save)
    image = Image.fromarray(PHOTO).convert("L") if save.pop("grey", False) else Image.fromarray(PHOTO)
    data = _jpeg(image, **save)
    assert jp._stream_end(io.BytesIO(data + VIDEO + data)) == len(data)  # a JPEG's bytes in the tail too
    assert jp.read(io.BytesIO(data + VIDEO), mpf=False).tail == VIDEO
    assert jp.read(io.BytesIO(data), mpf=False) is None
    assert jp.read(io.BytesIO(data + bytes(300)), mpf=False) is None  # zeros after it: padding
    assert jp._stream_end(io.BytesIO(data[:-100])) is None  # a stream that does not end


@pytest.mark.parametrize("mpf", [False, True])
def test_restore_run_keeps_a_motion_photos_video_at_the_end(mpf, tmp_path):
    """A motion photo keeps its video after the picture(s), found by its distance from the end:
    written back after the restored photo (and the pictures after it), as it was."""
    source = (_multi_picture(PAINTED, hdr=True, sizes=True) if mpf else _jpeg(Image.fromarray(PAINTED), quality=90)) + VIDEO
    out, record = _restore(tmp_path, source)
    assert record["written"] == "changed" and out.endswith(VIDEO)
    assert "5,012 bytes after the last picture" in record["notes"][0]
    restored = np.asarray(Image.open(io.BytesIO(out)).convert("RGB")).astype(int)
    assert np.abs(restored[PAINT] - PAINTED[PAINT]).mean() > 60
    after = jp.read(io.BytesIO(out), mpf=mpf)
    assert after.tail == VIDEO and len(after.data) == (2 if mpf else 0)
    if mpf:
        assert after.data[1] == jp.read(io.BytesIO(source)).data[1]  # the gain map, as it was


def test_format_png_refuses_to_drop_what_follows_the_picture(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "cam.jpg").write_bytes(_jpeg(Image.fromarray(PAINTED), quality=90) + VIDEO)
    args = [str(inp), str(tmp_path / "out"), "--device", "cpu", "--quiet", "--format", "png"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3 and "5,012 bytes after the JPEG picture dropped" in result.output
    result = CliRunner().invoke(main, [*args, "--allow-lossy"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "cam.png") as written:
        assert written.format == "PNG"


def test_a_preview_is_made_again_from_a_photo_over_pillows_pixel_limit(monkeypatch):
    """A 200 Mpx photo is over Pillow's process-wide limit (89 Mpx; its size was checked against
    --max-pixels when it was read): its previews are made again all the same, with no warning."""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PHOTO is 98,304 pixels: over twice the limit
    photo = _jpeg(Image.fromarray(PHOTO), quality=90)
    old = _jpeg(Image.new("RGB", (48, 32), (255, 0, 0)), quality=80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (remade,) = jp.previews_of(photo, [old])
    assert remade is not None and JpegImagePlugin.JpegImageFile(io.BytesIO(remade)).size == (48, 32)


def test_a_preview_coded_in_rgb_or_cmyk_is_made_again_in_the_colours_it_shows(tmp_path):
    """A preview whose Adobe segment said RGB (its components coding R, G, B) or CMYK is made
    again by Pillow's writer, in YCbCr or in its CMYK: the old Adobe segment is left out and the new
    coding's own kept, so the preview shows the photo's colours (under the old segment a YCbCr
    preview read as RGB is far off)."""
    jpeglib = pytest.importorskip("jpeglib")
    photo = _jpeg(Image.fromarray(PHOTO), quality=90)
    small = np.asarray(Image.fromarray(PHOTO).resize((96, 64)))
    rgb = jpeglib.from_spatial(np.ascontiguousarray(small))
    rgb.jpeg_color_space = rgb.color_space  # coded in RGB, under an Adobe segment with transform 0
    rgb.write_spatial(str(tmp_path / "rgb.jpg"), qt=85)
    cmyk = _jpeg(Image.fromarray(small).convert("CMYK"), quality=85)
    for old in ((tmp_path / "rgb.jpg").read_bytes(), cmyk):
        (remade,) = jp.previews_of(photo, [old])
        shown = Image.open(io.BytesIO(remade))
        assert shown.mode == Image.open(io.BytesIO(old)).mode and shown.size == (96, 64)
        assert np.abs(np.asarray(shown.convert("RGB")).astype(int) - small).mean() < 6


@pytest.mark.parametrize("args", [(), ("--quality", "80")], ids=["block by block", "re-encoded upright"])
def test_a_turned_camera_file_keeps_everything_on_the_grid_it_is_written(args, tmp_path):
    """A portrait shot stored on its side (orientation 6) with an EXIF thumbnail, a preview, a gain
    map and a motion video: written block by block it stays on its stored grid with its tag, and
    re-encoded it is written upright; either way its thumbnail and preview are made again on the
    grid the photo is written on, and the rest is kept."""
    thumbnail = _jpeg(Image.fromarray(PAINTED).resize((160, 107)), quality=80)
    with_thumbnail = jp.with_exif_thumbnail(_multi_picture(PAINTED, orientation=6, sizes=True), thumbnail)
    source = _big_endian(with_thumbnail) + VIDEO  # the thumbnail in front of the MPF segment: its offsets stay right
    assert jp.exif_thumbnail(Image.open(io.BytesIO(source)).info["exif"]) == thumbnail
    out, record = _restore(tmp_path, source, *args)
    written = Image.open(io.BytesIO(out))
    upright = bool(args)
    assert written.size == ((256, 384) if upright else (384, 256))
    assert written.getexif().get(0x0112, 1) == (1 if upright else 6)
    remade = Image.open(io.BytesIO(jp.exif_thumbnail(written.info["exif"])))
    after = jp.read(io.BytesIO(out))
    preview = Image.open(io.BytesIO(after.data[0]))
    assert remade.size == ((107, 160) if upright else (160, 107))
    assert preview.size == ((128, 192) if upright else (192, 128))
    before = jp.read(io.BytesIO(source))
    _assert_the_written_photo(remade, Image.open(io.BytesIO(thumbnail)), written)
    _assert_the_written_photo(preview, Image.open(io.BytesIO(before.data[0])), written)
    assert after.tail == VIDEO and after.data[1] == before.data[1]


def _photoshop_segment(thumbnail: bytes, name: bytes = b"") -> bytes:
    """An APP13 segment as Photoshop writes it: an IPTC resource (a caption), then its thumbnail."""
    def resource(rid: int, data: bytes) -> bytes:
        pascal = bytes([len(name)]) + name + b"\0" * ((len(name) + 1) % 2)
        return b"8BIM" + struct.pack(">H", rid) + pascal + struct.pack(">I", len(data)) + data + b"\0" * (len(data) % 2)

    w, h = Image.open(io.BytesIO(thumbnail)).size
    row = (w * 24 + 31) // 32 * 4
    header = struct.pack(">IIIIIIHH", 1, w, h, row, row * h, len(thumbnail), 24, 1)
    body = jp.PHOTOSHOP_ID + resource(0x0404, b"\x1c\x02\x78\x00\x07caption") + resource(0x040C, header + thumbnail)
    return b"\xff\xed" + (len(body) + 2).to_bytes(2, "big") + body


@pytest.mark.parametrize("name", [b"", b"thumb"])
def test_photoshops_thumbnail_is_found_and_replaced_in_its_resource(name):
    old = _jpeg(Image.fromarray(PAINTED).resize((160, 107)), quality=70)
    new = _jpeg(Image.fromarray(PHOTO).resize((160, 107)), quality=70)
    data = _jpeg(Image.fromarray(PHOTO), quality=80, extra=_photoshop_segment(old, name))
    body = next(b for app, b in Image.open(io.BytesIO(data)).applist if app == "APP13")
    assert jp.photoshop_thumbnail(body) == old
    out = jp.with_photoshop_thumbnail(data, new)
    body_out = next(b for app, b in Image.open(io.BytesIO(out)).applist if app == "APP13")
    assert jp.photoshop_thumbnail(body_out) == new
    assert body_out[:body_out.index(b"8BIM", len(jp.PHOTOSHOP_ID) + 4)] == body[:body.index(b"8BIM", len(jp.PHOTOSHOP_ID) + 4)]
    at, size = jp._photoshop_resource(body_out)
    assert struct.unpack_from(">IIIIIIHH", body_out, at) == (1, 160, 107, 480, 480 * 107, len(new), 24, 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), np.asarray(Image.open(io.BytesIO(data))))
    assert jp.photoshop_thumbnail(b"Photoshop 3.0\0" + b"8BIM\x04\x0c\0\0\xff\xff\xff\xff") is None  # past its end


def test_restore_run_makes_photoshops_thumbnail_again(tmp_path):
    old = _jpeg(Image.fromarray(PAINTED).resize((160, 107)), quality=70)
    source = _jpeg(Image.fromarray(PAINTED), quality=90, extra=_photoshop_segment(old))
    out, record = _restore(tmp_path, source)
    assert record["written"] == "changed" and not record["dropped"]
    written = Image.open(io.BytesIO(out))
    body = next(b for app, b in written.applist if app == "APP13")
    assert b"\x1c\x02\x78\x00\x07caption" in body  # the IPTC caption, as it was
    remade = Image.open(io.BytesIO(jp.photoshop_thumbnail(body)))
    assert remade.size == (160, 107)
    _assert_the_written_photo(remade, Image.open(io.BytesIO(old)), written)


def _assert_the_written_photo(small: Image.Image, old: Image.Image, written: Image.Image) -> None:
    """`small` is the written photo scaled down, and nearer it than the old preview `old` (the
    painted photo, turned onto the written grid where it lay on another): the paint is gone."""
    if old.size != small.size:
        old = old.transpose(Image.Transpose.ROTATE_270)  # orientation 6, written upright
    expected = np.asarray(written.convert("RGB").resize(small.size, Image.Resampling.LANCZOS)).astype(int)
    error = lambda image: np.abs(np.asarray(image.convert("RGB")).astype(int) - expected)  # noqa: E731
    paint = error(old).max(axis=2) > 60  # where the old preview shows the paint
    assert paint.sum() > 100 and error(small).mean() < 5
    assert error(small)[paint].mean() < 15 < 60 < error(old)[paint].mean()
