"""A restored JPEG written back block by block (runtime/jpeg_blocks.py): the coded blocks that hold
no restored pixel are the source's own coefficients, the others are the restored pixels coded with
the source's tables and sampling, and the file keeps what the regular writer keeps."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps, JpegImagePlugin
from skimage import data as skdata

from runtime import image_pixels as rp
from runtime import image_read as rr
from runtime import image_write as rw
from runtime import jpeg_blocks as jb
from runtime.cli import main
from runtime.fill import dilated

jpeglib = pytest.importorskip("jpeglib")

SAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def _jpeg(image: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **save)
    return buf.getvalue()


def _coefficients(data: bytes, tmp_path, name="c.jpg"):
    path = tmp_path / name
    path.write_bytes(data)
    return jpeglib.read_dct(str(path))


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _touched(jpeg, image, changed):
    """{component: (blocks down, blocks across) bool}, the blocks `rewrite` re-codes."""
    fine = jb._block_grid(changed)
    return {name: jb._coarser(fine, factors, getattr(jpeg, name).shape[:2])
            for factors, names in jb._planes(jpeg, image).items() for name, _ in names}


def _paint(decoded: np.ndarray, box):
    """The decoded source with one flat square painted over it, and where."""
    y0, y1, x0, x1 = box
    out, changed = decoded.copy(), np.zeros(decoded.shape[:2], bool)
    out[y0:y1, x0:x1] = 200 if out.ndim == 2 else (230, 40, 200)
    changed[y0:y1, x0:x1] = True
    return out, changed


# A crop whose sides are not multiples of a 16-pixel MCU: the edge blocks are padded.
PHOTO = skdata.astronaut()[37:37 + 117, 51:51 + 150]


def test_forward_dct_codes_blocks_as_libjpeg_does(tmp_path):
    """`_code_blocks` on every block of a photo gives libjpeg's own coefficients of it, ±1."""
    for name, sub in SAMPLING.items():
        jpeg = _coefficients(_jpeg(PHOTO, quality=80, subsampling=sub), tmp_path)
        for factors, names in jb._planes(jpeg, PHOTO).items():
            by, bx = np.nonzero(np.ones(getattr(jpeg, names[0][0]).shape[:2], bool))
            ours = jb._code_blocks(PHOTO, factors, by, bx, [(("YCbCr", jb.COMPONENT[n]), jpeg.qt[t]) for n, t in names])
            for (comp, _), coded in zip(names, ours):
                diff = np.abs(coded.astype(int) - getattr(jpeg, comp)[by, bx].astype(int))
                assert diff.max() <= 1, (name, comp)
                assert (diff > 0).mean() < 0.02, (name, comp)  # ties and integer rounding only


@pytest.mark.parametrize("name", list(SAMPLING))
def test_untouched_blocks_keep_their_coefficients_and_pixels(name, tmp_path):
    source = _jpeg(PHOTO, quality=75, subsampling=SAMPLING[name])
    decoded = _decoded(source)
    restored, changed = _paint(decoded, (40, 61, 70, 95))
    data, kept = jb.rewrite(source, restored, changed, rw.encode_image(Image.fromarray(restored), "JPEG").data)
    before, after = _coefficients(source, tmp_path, "a.jpg"), _coefficients(data, tmp_path, "b.jpg")
    assert np.array_equal(after.samp_factor, before.samp_factor) and np.array_equal(after.qt, before.qt)
    recoded = 0
    for comp, touched in _touched(before, restored, changed).items():
        assert touched.any() and not touched.all()
        assert np.array_equal(getattr(after, comp)[~touched], getattr(before, comp)[~touched]), comp
        assert not np.array_equal(getattr(after, comp)[touched], getattr(before, comp)[touched]), comp
        recoded += touched.sum()
    blocks = sum(getattr(before, c).shape[0] * getattr(before, c).shape[1] for c in ("Y", "Cb", "Cr"))
    assert kept == pytest.approx(1 - recoded / blocks)
    # Decoded: exactly the source's pixels beyond one pixel of the re-coded colour blocks (the
    # decoder smooths a colour plane across block edges), the painted colour inside.
    fy, fx = 2 if name == "4:2:0" else 1, 1 if name == "4:4:4" else 2
    y0, y1 = 40 // (8 * fy) * 8 * fy - 1, -(-61 // (8 * fy)) * 8 * fy + 1
    x0, x1 = 70 // (8 * fx) * 8 * fx - 1, -(-95 // (8 * fx)) * 8 * fx + 1
    near = np.zeros(changed.shape, bool)
    near[max(y0, 0):y1, max(x0, 0):x1] = True
    out = _decoded(data)
    assert np.array_equal(out[~near], decoded[~near])
    # Inside, as close to the restored pixels as libjpeg re-encoding the whole image with the same
    # tables and sampling gets (Pillow's writer, the path this one replaces).
    whole = _decoded(_jpeg(restored, qtables=Image.open(io.BytesIO(source)).quantization, subsampling=SAMPLING[name]))
    error = lambda a: np.abs(a[changed].astype(int) - restored[changed]).mean()  # noqa: E731
    assert error(out) < error(whole) + 0.5


def test_grey_and_progressive_sources(tmp_path):
    grey = PHOTO[..., 1].copy()
    for image, save in ((grey, {"quality": 70}), (PHOTO, {"quality": 90, "subsampling": 2, "progressive": True})):
        source = _jpeg(image, **save)
        decoded = _decoded(source)
        restored, changed = _paint(decoded, (8, 20, 8, 20))
        data, kept = jb.rewrite(source, restored, changed, _jpeg(restored, quality=50))
        assert 0.9 < kept < 1.0
        out = Image.open(io.BytesIO(data))
        assert out.mode == ("L" if image.ndim == 2 else "RGB")
        assert bool(out.info.get("progressive")) == bool(save.get("progressive"))  # as the source came
        far = np.ones(changed.shape, bool)
        far[:33, :33] = False
        assert np.array_equal(np.asarray(out)[far], decoded[far])


def test_huffman_tables_are_made_for_the_coefficients(tmp_path):
    """The same coefficients coded with libjpeg's standard tables (Pillow's default, the source's
    here) make a larger file: the written one's tables are its own."""
    source = _jpeg(PHOTO, quality=90, subsampling=2)
    restored, changed = _paint(_decoded(source), (40, 70, 30, 90))
    data, _ = jb.rewrite(source, restored, changed, _jpeg(restored, quality=50))
    jpeg = _coefficients(data, tmp_path, "made.jpg")
    jpeg.write_dct(str(tmp_path / "standard.jpg"))
    standard = (tmp_path / "standard.jpg").read_bytes()
    assert np.array_equal(_decoded(standard), _decoded(data))
    assert len(data) < len(standard) - 100


def test_a_progressive_source_keeps_the_sequential_writes_coefficients(tmp_path, monkeypatch):
    """Made progressive again losslessly: every coefficient and table equal to the one sequential
    scan libjpeg's coefficient writer made, and the metadata the regular writer made kept."""
    source = _jpeg(PHOTO, quality=85, subsampling=2, progressive=True)
    restored, changed = _paint(_decoded(source), (40, 70, 30, 90))
    written = _jpeg(restored, quality=50, comment=b"kept")
    progressive, _ = jb.rewrite(source, restored, changed, written)
    monkeypatch.setattr(jb, "as_progressive", lambda coded: coded)
    sequential, _ = jb.rewrite(source, restored, changed, written)
    assert Image.open(io.BytesIO(progressive)).info.get("progressive")
    assert not Image.open(io.BytesIO(sequential)).info.get("progressive")
    assert Image.open(io.BytesIO(progressive)).info.get("comment") == b"kept"
    a, b = _coefficients(progressive, tmp_path, "p.jpg"), _coefficients(sequential, tmp_path, "s.jpg")
    for name in ("Y", "Cb", "Cr"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.qt, b.qt) and np.array_equal(a.samp_factor, b.samp_factor)
    assert np.array_equal(_decoded(progressive), _decoded(sequential))


def test_encode_image_keeps_metadata_and_names_nothing_lost(tmp_path):
    """Through `encode_image`: EXIF, ICC, comment and DPI as the regular writer writes them; the
    source's 4:2:2 sampling; `lost` empty; `kept_blocks` reported."""
    exif = Image.Exif()
    exif[0x010F] = "Maker"  # Make
    icc = b"\0" * 128 + b"fake icc profile"
    source = _jpeg(PHOTO, quality=85, subsampling=1, exif=exif.tobytes(), icc_profile=icc, comment=b"hello",
                   dpi=(300, 300))
    path = tmp_path / "in.jpg"
    path.write_bytes(source)
    img, info = rr.read_image(path)
    restored, changed = _paint(np.asarray(img), (50, 70, 60, 90))
    enc = rw.encode_image(Image.fromarray(restored), "JPEG", info, original=source, changed=changed)
    assert 0.5 < enc.kept_blocks < 1.0 and enc.lost == []
    out = Image.open(io.BytesIO(enc.data))
    assert out.getexif()[0x010F] == "Maker" and out.info["icc_profile"] == icc
    assert out.info["comment"] == b"hello" and tuple(round(v) for v in out.info["dpi"]) == (300, 300)
    assert JpegImagePlugin.get_sampling(out) == 1


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_turned_source_goes_back_onto_its_own_grid(orientation, tmp_path):
    """A photo its EXIF orientation turned: written on the source's grid with that orientation
    kept, so it shows as restored, and its untouched blocks are the source's."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Maker"
    path = tmp_path / "turned.jpg"
    source = _jpeg(PHOTO, quality=85, subsampling=2, exif=exif.tobytes())
    path.write_bytes(source)
    img, info = rr.read_image(path)
    assert info.orientation == orientation
    restored, changed = _paint(np.asarray(img), (10, 30, 20, 40))
    enc = rw.encode_image(Image.fromarray(restored), "JPEG", info, original=source, changed=changed)
    assert 0.5 < enc.kept_blocks < 1.0 and enc.lost == []
    out = Image.open(io.BytesIO(enc.data))
    assert out.size == (PHOTO.shape[1], PHOTO.shape[0])  # the source's grid
    assert out.getexif()[0x0112] == orientation and out.getexif()[0x010F] == "Maker"
    shown = np.asarray(ImageOps.exif_transpose(out))
    far = ~dilated(changed, 17)
    assert np.array_equal(shown[far], np.asarray(img)[far])
    assert np.abs(shown[changed].astype(int) - restored[changed]).mean() < 12
    before, after = _coefficients(source, tmp_path, "a.jpg"), _coefficients(enc.data, tmp_path, "b.jpg")
    same = (after.Y == before.Y).all(axis=(2, 3))  # (blocks down, blocks across): luma blocks kept
    assert 0.8 < same.mean() < 1.0


def test_whole_reencode_where_blocks_cannot_be_kept(tmp_path):
    """Another quality asked for, CMYK: the regular writer's file, no `kept_blocks`."""
    path = tmp_path / "plain.jpg"
    source = _jpeg(PHOTO, quality=85)
    path.write_bytes(source)
    img, info = rr.read_image(path)
    restored, changed = _paint(np.asarray(img), (10, 20, 10, 20))
    assert rw.encode_image(Image.fromarray(restored), "JPEG", info, quality=60, original=source,
                           changed=changed).kept_blocks is None
    buf = io.BytesIO()
    Image.fromarray(PHOTO).convert("CMYK").save(buf, "JPEG")
    assert jb.rewrite(buf.getvalue(), PHOTO, np.ones(PHOTO.shape[:2], bool), source) is None


def test_splice_takes_metadata_from_one_file_and_coefficients_from_the_other():
    written = _jpeg(PHOTO, quality=90, comment=b"keep me")
    coded = _jpeg(PHOTO, quality=40)
    spliced = jb.splice(written, coded)
    out = Image.open(io.BytesIO(spliced))
    assert out.info["comment"] == b"keep me"
    assert np.array_equal(np.asarray(out), _decoded(coded))


@pytest.mark.parametrize("kind", ["sequential", "progressive", "coded in RGB"])
def test_restore_run_keeps_the_blocks_far_from_the_mask(kind, tmp_path):
    """The shipped model on a painted JPEG: every coded block with no masked pixel is the source's,
    the report gives the share kept, a progressive source comes back progressive and one coded in
    RGB coded in RGB."""
    photo = skdata.chelsea()[60:60 + 128, 100:100 + 160].copy()
    photo[40:72, 60:100] = (20, 200, 40)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    progressive = kind == "progressive"
    if kind == "coded in RGB":
        source = _rgb_coded(photo, tmp_path)
    else:
        source = _jpeg(photo, quality=90, subsampling=2, progressive=progressive)
    (src / "cat.jpg").write_bytes(source)
    result = CliRunner().invoke(main, [str(src), str(out), "--device", "cpu", "--quiet", "--save-mask"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "restore-report.json").read_text())["records"][0]
    assert record["written"] == "changed" and 0.5 < record["kept_blocks"] < 1.0
    mask = np.asarray(Image.open(out / "masks" / "cat.jpg.png")) > 0
    before = _coefficients(source, tmp_path, "a.jpg")
    after = _coefficients((out / "cat.jpg").read_bytes(), tmp_path, "b.jpg")
    assert bool(Image.open(out / "cat.jpg").info.get("progressive")) == progressive
    assert jb.colour_coding((out / "cat.jpg").read_bytes()) == jb.colour_coding(source)
    for comp, touched in _touched(before, photo, mask).items():
        assert np.array_equal(getattr(after, comp)[~touched], getattr(before, comp)[~touched]), comp


@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize("orientation", [1, 6])
def test_an_array_is_written_as_its_pillow_image_is(grey, orientation, tmp_path):
    """`finish(..., array=True)` and `encode_image` on the array (the writer's path for a JPEG,
    which never makes the Pillow image): the same bytes as through the Pillow image, block by
    block; and, where no block can be kept, the regular writer's file as before."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = PHOTO[..., 0] if grey else PHOTO
    source = _jpeg(photo, quality=85, exif=exif.tobytes(), comment=b"kept")
    path = tmp_path / "in.jpg"
    path.write_bytes(source)
    img, info = rr.read_image(path)
    prep = rp.prepare(img)
    restored, changed = _paint(prep.rgb, (20, 40, 30, 60))
    as_image, as_array = rp.finish(prep, restored, changed), rp.finish(prep, restored, changed, array=True)
    assert isinstance(as_array, np.ndarray) and np.array_equal(np.asarray(as_image), as_array)
    for mask in (changed, np.ones_like(changed)):  # some blocks kept; none
        a = rw.encode_image(as_array, "JPEG", info, original=source, changed=mask)
        b = rw.encode_image(as_image, "JPEG", info, original=source, changed=mask)
        assert a.data == b.data and a.mode == b.mode == ("L" if grey else "RGB") and a.lost == b.lost == []
        assert (a.kept_blocks is None) == mask.all() and a.kept_blocks == b.kept_blocks
    assert isinstance(rp.finish(rp.prepare(img.convert("RGBA")), restored, changed, array=True), Image.Image)


def _rgb_coded(image: np.ndarray, tmp_path) -> bytes:
    """`image` as a JPEG whose components code R, G and B themselves (an Adobe segment with
    transform 0, components named 'R', 'G', 'B'), as Photoshop and `cjpeg -rgb` write one."""
    jpeg = jpeglib.from_spatial(np.ascontiguousarray(image))
    jpeg.jpeg_color_space = jpeg.color_space  # JCS_RGB: no conversion to YCbCr
    jpeg.write_spatial(str(tmp_path / "rgb.jpg"), qt=85)
    return (tmp_path / "rgb.jpg").read_bytes()


def _renamed(data: bytes, ids: bytes) -> bytes:
    """`data` with its components numbered `ids` in its frame and its one scan's header."""
    out = bytearray(data)
    frame = next(a for marker, a, _ in jb.segments(data) if marker == 0xC0)
    scan = data.index(b"\xff\xda")
    for i, new in enumerate(ids):
        out[frame + 10 + 3 * i] = new
        out[scan + 5 + 2 * i] = new
    return bytes(out)


def test_colour_coding_is_read_as_libjpegs_decoder_reads_it(tmp_path):
    """Each way a file names its components' colour, read as Pillow's decoder reads it: the
    file decodes to the photo (RGB read as RGB) exactly where `colour_coding` says RGB."""
    rgb = _rgb_coded(PHOTO, tmp_path)
    adobe = next(rgb[a:b] for marker, a, b in jb.segments(rgb) if marker == 0xEE)
    jfif = next(s[a:b] for s in [_jpeg(PHOTO)] for marker, a, b in jb.segments(s) if marker == 0xE0)
    plain = rgb.replace(adobe, b"")
    files = {
        "Adobe transform 0, named R G B": (rgb, "RGB"),
        "Adobe transform 0, numbered 1 2 3": (_renamed(rgb, b"\x01\x02\x03"), "RGB"),
        "Adobe transform 1": (rgb.replace(adobe, adobe[:15] + b"\x01"), "YCbCr"),
        "no segment, named R G B": (plain, "RGB"),
        "no segment, numbered 1 2 3": (_renamed(plain, b"\x01\x02\x03"), "YCbCr"),
        "JFIF, named R G B": (b"\xff\xd8" + jfif + plain[2:], "YCbCr"),
        "JFIF and Adobe transform 0": (b"\xff\xd8" + jfif + rgb[2:], "YCbCr"),
    }
    for name, (data, expected) in files.items():
        assert jb.colour_coding(data) == expected, name
        error = np.abs(_decoded(data).astype(int) - PHOTO).mean()
        assert (error < 3) == (expected == "RGB"), (name, error)


def test_a_jpeg_coded_in_rgb_keeps_its_coding_and_blocks(tmp_path):
    """A file coded in RGB is rewritten block by block in RGB, with its table: the kept blocks'
    coefficients and pixels as they were, the Adobe segment saying RGB and no JFIF segment. Its
    written file (components numbered as libjpeg numbers them, which jpeglib reads as YCbCr) is
    rewritten again the same way."""
    source = _rgb_coded(PHOTO, tmp_path)
    for round_ in range(2):
        decoded = _decoded(source)
        restored, changed = _paint(decoded, (40 + 30 * round_, 61 + 30 * round_, 70, 95))
        written = rw.encode_image(Image.fromarray(restored), "JPEG").data  # the regular writer's JFIF header
        data, kept = jb.rewrite(source, restored, changed, written)
        assert 0.8 < kept < 1.0 and jb.colour_coding(data) == "RGB"
        assert Image.open(io.BytesIO(data)).info.get("adobe_transform") == 0
        assert b"JFIF\0" not in data[:200]
        before, after = _coefficients(source, tmp_path, "a.jpg"), _coefficients(data, tmp_path, "b.jpg")
        assert np.array_equal(after.qt, before.qt) and np.array_equal(after.samp_factor, before.samp_factor)
        for comp, touched in _touched(before, restored, changed).items():
            assert np.array_equal(getattr(after, comp)[~touched], getattr(before, comp)[~touched]), comp
        out = _decoded(data)
        near = dilated(changed, 8)
        assert np.array_equal(out[~near], decoded[~near])
        assert np.abs(out[changed].astype(int) - restored[changed]).mean() < 3  # the paint, in RGB
        source = data
