"""The fill inside each mark evened out with a smooth fill (runtime/fill.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from runtime import fill
from runtime.fill import BLEND, CLEAR, EXACT_EDGE, even_fill, smooth_fill

RNG = np.random.default_rng(3)


def test_smooth_fill_keeps_known_pixels_and_fills_holes_from_them():
    rgb = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    known = np.ones((37, 53), bool)
    known[5:30, 10:40] = False
    out = smooth_fill(rgb, known)
    assert out.dtype == np.float32 and out.shape == rgb.shape
    assert np.array_equal(out[known], rgb[known].astype(np.float32))  # known pixels: their own values
    # A hole in a flat image takes that flat value; in a two-tone one, a value between the two.
    flat = np.full_like(rgb, 90)
    assert np.abs(smooth_fill(flat, known) - 90).max() < 1e-3
    two = np.zeros_like(rgb)
    two[:, 27:] = 200
    inside = smooth_fill(two, known)[~known]
    assert inside.min() >= 0 and inside.max() <= 200 and 0 < inside.mean() < 200


def test_a_strip_one_pixel_high_is_filled_too():
    strip = np.zeros((1, 40, 3), np.uint8)
    strip[0, :, 0] = np.arange(40) * 5
    known = np.ones((1, 40), bool)
    known[0, 10:20] = False
    out = smooth_fill(strip, known)[0, 10:20, 0]
    # Between the known pixels nearest the gap (40, 45 on its left; 100 to 110 on its right), never
    # the 0 an unfilled pixel would keep.
    assert (out >= 40).all() and (out <= 110).all()
    assert (np.diff(out) > 0).all()  # a ramp from one side to the other, not two steps
    assert np.abs(out - np.linspace(45, 100, 12)[1:-1]).max() < 0.2  # in one dimension the membrane is the line


def test_a_plane_through_the_hole_is_kept():
    # A linear function is harmonic (the mean of its 4 neighbours everywhere), so the exact
    # membrane fill of a hole in a plane is the plane. The coarse-to-fine solve comes close: within
    # 0.04 of a level on average and 0.18 at most over a 50x70 hole (measured; without the
    # over-relaxation 0.6 and 3.2).
    y, x = np.mgrid[0:90, 0:130]
    plane = np.stack([0.8 * x + 0.5 * y + 10, 2.0 * y, 200.0 - x], -1)
    known = np.ones((90, 130), bool)
    known[20:70, 30:100] = False
    error = np.abs(smooth_fill(plane, known) - plane)[~known]
    assert error.mean() < 0.1 and error.max() < 0.3


def _painted(shape=(120, 160)):
    """A flat grey photo, a 30x40 mark the network filled with 200, and a 2-pixel rim of paint
    bleed around it that the mask missed (0: what a JPEG's ringing leaves)."""
    rgb = np.full(shape + (3,), 100, np.uint8)
    mask = np.zeros(shape, np.uint8)
    mask[40:70, 50:90] = 255
    rgb[38:72, 48:92] = 0  # the paint and its rim
    restored = rgb.copy()
    restored[mask > 0] = 200  # the network's fill
    return rgb, restored, mask


def test_the_fill_is_the_blend_of_the_network_and_the_surroundings():
    rgb, restored, mask = _painted()
    rgb[38:72, 48:92] = 100  # no rim: the paint was exactly the mask (a PNG)
    rgb[mask > 0] = 0
    out = even_fill(rgb, restored.copy(), mask)
    # By hand: every pixel the smooth fill reads is 100, so its fill is 100 and every masked pixel
    # is BLEND * 200 + (1 - BLEND) * 100, rounded: 0.25 * 200 + 0.75 * 100 = 125.
    assert CLEAR == 0 and BLEND == 0.25
    assert (out[mask > 0] == 125).all()
    assert np.array_equal(out[mask == 0], restored[mask == 0])  # outside the mask: untouched, bit for bit


def test_near_the_edge_of_an_exact_file_the_smooth_fill_alone():
    rgb, restored, mask = _painted()
    rgb[38:72, 48:92] = 100  # no rim: the paint was exactly the mask (a PNG)
    rgb[mask > 0] = 0
    out = even_fill(rgb, restored.copy(), mask, edge=EXACT_EDGE)
    # The mark is rows 40-69, columns 50-89. A pixel k rows (or columns) inside its edge is k + 1
    # steps from the nearest unmasked pixel, so rows 48-61 and columns 58-81 are more than 8 away:
    # by hand, 0.25 * 200 + 0.75 * 100 = 125 there, and the smooth fill alone, 100, elsewhere.
    assert EXACT_EDGE == 8
    deep = np.zeros(mask.shape, bool)
    deep[48:62, 58:82] = True
    assert (out[deep] == 125).all()
    assert (out[(mask > 0) & ~deep] == 100).all()
    assert np.array_equal(out[mask == 0], restored[mask == 0])
    # Grown paint takes the smooth fill alone wherever it is, as before.
    grown = np.zeros(mask.shape, bool)
    grown[50:55, 60:70] = True
    both = even_fill(rgb, restored.copy(), mask, smooth_only=grown, edge=EXACT_EDGE)
    assert (both[grown] == 100).all() and (both[deep & ~grown] == 125).all()
    with pytest.raises(ValueError, match="edge"):
        even_fill(rgb, restored.copy(), mask, edge=fill.MIN_MARGIN + 1)


def test_a_rim_of_clear_pixels_is_not_read():
    rgb, restored, mask = _painted()
    # The rim of 0 the mask missed is 2 pixels wide: with clear=2 only the 100s beyond it are read.
    out = even_fill(rgb, restored.copy(), mask, blend=0.5, clear=2)
    assert (out[mask > 0] == 150).all()
    # With the default (clear 0) the rim is read, and it encloses the mark: the membrane through
    # it is 0, so every masked pixel is 0.25 * 200 + 0.75 * 0 = 50 (within a level: the solve is
    # close to the membrane, not exact).
    assert np.abs(even_fill(rgb, restored.copy(), mask)[mask > 0].astype(int) - 50).max() <= 1


def test_around_a_mark_a_smaller_copy_drew_a_rim_is_not_read():
    rgb, restored, mask = _painted()
    region = (30, 80, 40, 100)
    take = np.packbits((mask > 0)[30:80, 40:100], axis=1)  # the whole mark, added by a copy 8 times smaller
    # Its edge may be off by f / 2: a rim of 8 // COARSE_RIM = 2 is not read, and the 2-pixel rim
    # of 0 the mask missed is skipped (as clear=2 does): 0.5 * 200 + 0.5 * 100 = 150.
    assert fill.COARSE_RIM == 4
    out = even_fill(rgb, restored.copy(), mask, blend=0.5, coarse=[(region, take, 8)])
    assert np.array_equal(out, even_fill(rgb, restored.copy(), mask, blend=0.5, clear=2))
    assert (out[mask > 0] == 150).all()
    # A copy 2 times smaller draws edges to a pixel: no rim, the same as no copy.
    same = even_fill(rgb, restored.copy(), mask, blend=0.5, coarse=[(region, take, 2)])
    assert np.array_equal(same, even_fill(rgb, restored.copy(), mask, blend=0.5))
    # A copy's pixels elsewhere do not change this mark's rim.
    elsewhere = ((0, 10, 0, 10), np.packbits(np.ones((10, 10), bool), axis=1), 8)
    apart = even_fill(rgb, restored.copy(), mask, blend=0.5, coarse=[elsewhere])
    assert np.array_equal(apart, same)
    assert fill.coarse_rim(mask[30:80, 40:100] > 0, region, [(region, take, 4), (region, take, 16)]) == 4


def test_paint_the_mask_missed_inside_a_mark_is_not_read():
    rgb, restored, mask = _painted()
    mask[50:60, 65:75] = 0  # a pocket inside the mark the mask missed: still paint (0) in the input
    restored[50:60, 65:75] = 0
    out = even_fill(rgb, restored.copy(), mask, blend=0.5, clear=2)
    assert (out[mask > 0] == 150).all()  # as if the pocket were not there: only the 100s outside are read
    assert (out[50:60, 65:75] == 0).all()  # and the pocket itself, outside the mask, is left as it was


def test_a_frame_is_not_read():
    """A mark run off the photo into its white frame: the frame is not the photo, and with it
    `unread` the membrane reads the photo's 100s alone, 0.5 * 200 + 0.5 * 100 = 150; read, its
    255s pull the fill up."""
    rgb = np.full((60, 80, 3), 100, np.uint8)
    rgb[:, :6] = 255  # the frame, down the left side
    mask = np.zeros((60, 80), np.uint8)
    mask[20:40, 6:30] = 255  # the mark, from the frame's edge inward
    rgb[20:40, 6:30] = 0
    restored = rgb.copy()
    restored[mask > 0] = 200
    frame = np.zeros((60, 80), bool)
    frame[:, :6] = True
    out = even_fill(rgb, restored.copy(), mask, blend=0.5, unread=frame)
    assert np.abs(out[mask > 0].astype(int) - 150).max() <= 1
    read = even_fill(rgb, restored.copy(), mask, blend=0.5)
    assert read[20:40, 6].astype(int).min() > 170  # beside the frame, nearly its 255 in the membrane
    assert np.array_equal(out[mask == 0], rgb[mask == 0])  # nothing outside the mask moves


def test_nothing_masked_leaves_the_image_as_it_was():
    rgb, restored, _ = _painted()
    before = restored.copy()
    out = even_fill(rgb, restored, np.zeros(rgb.shape[:2], np.uint8))
    assert out is restored and np.array_equal(out, before)


def test_a_mark_too_large_to_fill_here_keeps_the_network_fill(monkeypatch):
    rgb, restored, mask = _painted()
    mask[5:15, 5:15] = 255  # a second, small mark
    restored[5:15, 5:15] = 200
    monkeypatch.setattr(fill, "MAX_BOX", 40 * 40)  # the 30x40 mark's box with its margin is larger
    out = even_fill(rgb, restored.copy(), mask)
    assert (out[40:70, 50:90] == 200).all()  # kept
    assert (out[5:15, 5:15] < 200).all()  # evened out


def test_restore_run_evens_the_fill_unless_asked_not_to(tmp_path):
    from restore_core.heldout import heldout_set

    case = heldout_set(1, photos="selection")[0]
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(case.corrupted).save(src / "a.png")
    outs = {}
    for name, extra in (("even", []), ("raw", ["--no-even-fill"])):
        done = subprocess.run([sys.executable, "-m", "runtime.cli", str(src), str(tmp_path / name), "--device", "cpu",
                               "-q", "--save-mask", *extra], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outs[name] = np.asarray(Image.open(tmp_path / name / "a.png"))
    mask = np.asarray(Image.open(tmp_path / "even" / "masks" / "a.png")) > 0
    assert mask.any()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "raw" / "masks" / "a.png")) > 0, mask)  # the same mask
    assert np.array_equal(outs["even"][~mask], case.corrupted[~mask])  # outside it: the input's pixels
    assert np.array_equal(outs["raw"][~mask], case.corrupted[~mask])
    assert not np.array_equal(outs["even"][mask], outs["raw"][mask])  # inside it: evened out


@pytest.mark.parametrize("shape", [(3, 3), (1, 1), (2, 7)])
def test_tiny_images(shape):
    rgb = RNG.integers(0, 256, shape + (3,), dtype=np.uint8)
    mask = np.zeros(shape, np.uint8)
    mask[0, 0] = 255
    out = even_fill(rgb, rgb.copy(), mask)  # nothing around the mark beyond the rim: kept as it was
    assert out.shape == rgb.shape


# -- a chroma-subsampled JPEG's mask, grown by a pixel ----------------------------------------


def _saved(save: str):
    from restore_core.degrade import decode
    from restore_core.heldout import heldout_set, saved_case

    c, data = saved_case(heldout_set(2, photos="selection")[1], save)
    return c, data, decode(data)


@pytest.fixture(scope="module")
def restorers():
    from runtime import Restorer

    # The grow by subsampling alone: no grow over paint, no blends unblended (runtime/paint_grow.py).
    return (Restorer(device="cpu", even_fill=False, paint_grow=False),
            Restorer(device="cpu", even_fill=False, grow_subsampled=False, paint_grow=False))


def test_the_grown_ring_takes_the_prediction_and_nothing_else_moves(restorers):
    grows, keeps = restorers
    _c, _data, x = _saved("jpeg-90-420")
    out, mask, raw, _ = grows.restore_rgb(x, predicted=True, grow=True)
    base, base_mask, _, _ = keeps.restore_rgb(x, predicted=True)
    from runtime.fill import dilated

    assert base_mask.any() and np.array_equal(mask > 0, dilated(base_mask > 0))  # one pixel, 8-connected
    ring = (mask > 0) & (base_mask == 0)
    assert np.array_equal(out[ring], raw[ring])  # the grown pixels: the graph's prediction
    assert np.array_equal(out[~ring], base[~ring])  # every other pixel as before
    # The image decoder on crops (the CPU default) gives the same pixels as on the whole image.
    crops, crops_mask, _, _ = grows.restore_rgb(x, predicted=False, grow=True)
    assert np.array_equal(crops, out) and np.array_equal(crops_mask, mask)


def test_tiles_grow_the_mask_exactly_as_one_pass(restorers):
    grows, _ = restorers
    _c, _data, x = _saved("jpeg-75-420")
    whole = grows.run_rgb(x, None, predicted=False, grow=True)
    tiled = grows.run_rgb(x, 96, predicted=False, grow=True)
    assert tiled[3] > 1
    assert np.array_equal(whole[0], tiled[0]) and np.array_equal(whole[1], tiled[1])


def test_the_whole_graph_grows_the_same_as_its_halves(monkeypatch, restorers):
    from runtime import Restorer, split
    from runtime.runner import Runner

    def refuse(model):
        raise ValueError("cannot cut")

    grows, _ = restorers
    _c, _data, x = _saved("jpeg-90-420")
    monkeypatch.setattr(split, "split_pixels_graph", refuse)
    whole = Restorer(device="cpu", even_fill=False)
    assert isinstance(whole.runner, Runner)
    a = whole.restore_rgb(x, predicted=False, grow=True)
    b = grows.restore_rgb(x, predicted=False, grow=True)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def _lossless_webp(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


@pytest.mark.parametrize("save, grown", [("jpeg-90-420", True), ("jpeg-95-444", False), ("png", False),
                                         ("webp-90", True), ("webp-75", True), ("webp-lossless", False)])
def test_which_files_grow(tmp_path, save, grown):
    """A JPEG with subsampled chroma and a lossy WebP (whose chroma is always at half size) have
    their masks grown by a pixel; a 4:4:4 JPEG, a PNG and a lossless WebP keep them as found."""
    from runtime.fill import dilated

    _c, data, _x = _saved("png" if save == "webp-lossless" else save)
    if save == "webp-lossless":  # the PNG's exact pixels in a lossless WebP
        data = _lossless_webp(data)
    src = tmp_path / "in"
    src.mkdir()
    name = "a" + {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[save.split("-")[0]]
    (src / name).write_bytes(data)
    masks = {}
    for run, extra in (("default", []), ("kept", ["--no-jpeg-grow"])):  # the grow by subsampling alone
        done = subprocess.run([sys.executable, "-m", "runtime.cli", str(src), str(tmp_path / run), "--device", "cpu",
                               "-q", "--save-mask", "--no-paint-grow", *extra], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        masks[run] = np.asarray(Image.open(tmp_path / run / "masks" / (name if save == "png" else name + ".png"))) > 0
    assert masks["kept"].any()
    expected = dilated(masks["kept"]) if grown else masks["kept"]
    assert np.array_equal(masks["default"], expected)


@pytest.mark.parametrize("save", ["jpeg-90-420", "webp-90"])
def test_restorer_restore_grows_a_pillow_jpeg_by_its_subsampling(restorers, save):
    """A Pillow JPEG with subsampled chroma grows; so does a Pillow WebP, which is taken as lossy
    (whether it is shows only in its file)."""
    import io

    from runtime.fill import dilated

    grows, keeps = restorers
    _c, data, _x = _saved(save)
    grown = np.asarray(grows.restore(Image.open(io.BytesIO(data))).mask) > 0
    kept = np.asarray(keeps.restore(Image.open(io.BytesIO(data))).mask) > 0
    assert kept.any() and np.array_equal(grown, dilated(kept))
    as_array = grows.restore(np.asarray(Image.open(io.BytesIO(data)))).mask > 0  # an array has no file to read
    assert np.array_equal(as_array, kept)


@pytest.mark.parametrize("save, exact", [("png", True), ("jpeg-95-444", True), ("jpeg-90-420", False),
                                         ("webp-90", False)])
def test_which_files_are_exact(restorers, monkeypatch, tmp_path, save, exact):
    """A file whose colours are exact at full resolution (lossless, or a JPEG not subsampled) has
    the smooth fill alone near each mark's edge: restore-run and Restorer.restore say so alike."""
    import io

    from runtime import Restorer
    from runtime.batch import RunOptions, run_folder

    seen = []
    after_graph = Restorer.after_graph

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("exact", args[6] if len(args) > 6 else None))
        return after_graph(self, *args, **kwargs)

    monkeypatch.setattr(Restorer, "after_graph", spy)
    _c, data, _x = _saved(save)
    src = tmp_path / "in"
    src.mkdir()
    (src / ("a" + {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[save.split("-")[0]])).write_bytes(data)
    grows, _ = restorers
    result = run_folder(grows, src, tmp_path / "out", RunOptions(progress=False))
    assert result.records[0].status == "ok", result.records[0].error
    grows.restore(Image.open(io.BytesIO(data)))
    assert seen == [exact, exact]
    grows.restore(np.asarray(Image.open(io.BytesIO(data))))  # an array: taken as exact
    assert seen[-1] is True
