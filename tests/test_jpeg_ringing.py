"""The ring a JPEG's paint leaves around a mark (runtime/jpeg_ringing.py): found on the file's own
block grid, in every EXIF orientation, only where the paint moved the file."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from restore_core.degrade import damage_mask
from runtime.images import ORIENT
from runtime.jpeg_ringing import MCU, _grid, remove_ringing, ringing_applies

H, W = 101, 134  # neither a whole number of MCUs: the grid's far end is a partial block
PAINT = (230, 20, 200)


def _photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([80 + 60 * np.sin(x / 23) + 0.2 * y, 120 + 40 * np.cos(y / 17), 90 + 0.3 * x], -1)
    return np.clip(base + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)


def _jpeg(a: np.ndarray, quality: int, subsampling: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _painted_file(quality: int, subsampling: int):
    """(clean, shapes, decoded file, its qtables, the damage, the clean photo saved alike): a
    square painted, then saved."""
    clean = _photo()
    shapes = np.zeros((H, W), bool)
    shapes[30:61, 40:83] = True
    painted = clean.copy()
    painted[shapes] = PAINT
    data = _jpeg(painted, quality, subsampling)
    with Image.open(io.BytesIO(data)) as im:
        qtables = im.quantization
    rgb = _decoded(data)
    clean_saved = _decoded(_jpeg(clean, quality, subsampling))
    return clean, shapes, rgb, qtables, damage_mask(rgb, clean_saved, shapes, 8), clean_saved


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("quality, subsampling", [(75, 2), (90, 2), (75, 1)])
def test_the_ring_brings_the_mask_to_the_damage(quality, subsampling):
    clean, shapes, rgb, qtables, damage, clean_saved = _painted_file(quality, subsampling)
    filled = np.where(shapes[..., None], clean, rgb)  # the mark filled as a perfect fill would
    restored = filled.copy()
    ring = remove_ringing(rgb, restored, shapes, qtables, subsampling)
    assert not (ring & shapes).any()
    assert np.array_equal(restored[~ring], filled[~ring])  # only the ring's pixels change
    # ... each to the file's pixel less what the paint did there: closer to the photo saved alone.
    error = lambda a: float(np.abs(a[ring].astype(int) - clean_saved[ring]).mean())  # noqa: E731
    assert error(restored) < 0.65 * error(rgb)  # measured: 5.0-6.3 levels against 10.9-19.1 (0.33-0.54)
    outside = damage & ~shapes
    assert outside.sum() > 200  # the file's ring is real: hundreds of pixels beyond the square
    # Measured: precision 0.63-0.78, recall 0.71-0.81, IoU with the damage 0.72-0.84 -> 0.82-0.93.
    assert (ring & outside).sum() > 0.55 * ring.sum()
    assert (ring & outside).sum() > 0.6 * outside.sum()
    assert _iou(shapes | ring, damage) > _iou(shapes, damage) + 0.07


def test_the_ring_stays_in_the_blocks_the_paint_reaches():
    clean, shapes, rgb, qtables, _damage, _ = _painted_file(75, 2)
    ring = remove_ringing(rgb, np.where(shapes[..., None], clean, rgb), shapes, qtables, 2)
    step = MCU[2][0]
    rows, cols = np.nonzero(shapes)
    reached = np.zeros_like(shapes)  # the 16x16 MCUs the square touches, and a pixel of chroma upsampling
    reached[rows.min() // step * step - 1:-(-(rows.max() + 1) // step) * step + 1,
            cols.min() // step * step - 1:-(-(cols.max() + 1) // step) * step + 1] = True
    assert ring.any() and not (ring & ~reached).any()


def test_nothing_moved_means_no_ring():
    clean, shapes, rgb, qtables, _damage, _ = _painted_file(90, 2)
    # The "mark" holds what the file holds there and is "filled" with the same: the two saves agree.
    assert not remove_ringing(rgb, rgb.copy(), shapes, qtables, 2).any()
    assert not remove_ringing(rgb, rgb.copy(), np.zeros_like(shapes), qtables, 2).any()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_turned_photo_rings_as_its_file_does(orientation):
    """The ring of a photo turned by its EXIF orientation is the file's ring, turned: the windows
    lie on the file's own grid (counted from the far end along an axis the turn reversed)."""
    clean, shapes, rgb, qtables, _damage, _ = _painted_file(75, 2)
    filled = np.where(shapes[..., None], clean, rgb)
    coded_out = filled.copy()
    coded = remove_ringing(rgb, coded_out, shapes, qtables, 2)
    turn = ORIENT.get(orientation, lambda a: a)
    shown_out = np.ascontiguousarray(turn(filled))
    shown = remove_ringing(turn(rgb), shown_out, turn(shapes[..., None])[..., 0], qtables, 2, orientation)
    assert coded.any() and np.array_equal(shown, turn(coded[..., None])[..., 0])
    assert np.array_equal(shown_out, turn(coded_out))


def test_windows_snap_to_the_grid():
    """On the file's own grid; a turned photo is turned back first, so its grid lines that count
    from the far end of an axis as shown are covered by the orientation test above."""
    assert _grid(40, 83, 134, 16) == (16, 112)  # one MCU more each way, on lines 0, 16, 32...
    assert _grid(3, 130, 134, 16) == (0, 134)  # clipped to the photo


def test_which_files_ring():
    qtables = {0: [1] * 64, 1: [1] * 64}
    assert ringing_applies(qtables, 2) and ringing_applies(qtables, 0) and ringing_applies(qtables, 1, 6)
    assert not ringing_applies({0: [1] * 64}, -1)  # grey
    assert not ringing_applies({}, 2)  # tables unknown
    assert not ringing_applies(qtables, -1)  # CMYK or an unusual sampling


def _restore_run(src, dst, *extra) -> np.ndarray:
    done = subprocess.run([sys.executable, "-m", "runtime.cli", str(src), str(dst), "--device", "cpu", "-q",
                           "--save-mask", *extra], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return np.asarray(Image.open(dst / "masks" / "a.jpg.png")) > 0


def test_restore_run_grows_a_jpeg_mark_over_its_ring(tmp_path):
    clean = _photo(128, 160, seed=3)
    painted = clean.copy()
    painted[40:80, 50:100] = PAINT
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(_jpeg(painted, 75, 2))
    ringed = _restore_run(src, tmp_path / "ring", "--jpeg-ringing")
    found = _restore_run(src, tmp_path / "found")
    assert found.any() and not (found & ~ringed).any() and ringed.sum() > found.sum()
    # The added pixels are the ring: in the MCUs the found mark reaches (16x16 at 4:2:0, and a
    # pixel of chroma upsampling), and most of them pixels the paint moved by more than 8 levels.
    rows, cols = np.nonzero(found)
    reached = np.zeros_like(found)
    reached[max(0, rows.min() // 16 * 16 - 1):-(-(rows.max() + 1) // 16) * 16 + 1,
            max(0, cols.min() // 16 * 16 - 1):-(-(cols.max() + 1) // 16) * 16 + 1] = True
    added = ringed & ~found
    assert not (added & ~reached).any()
    shapes = np.zeros(clean.shape[:2], bool)
    shapes[40:80, 50:100] = True
    before = _decoded(_jpeg(painted, 75, 2))
    damage = damage_mask(before, _decoded(_jpeg(clean, 75, 2)), shapes, 8)
    assert (added & damage).sum() > 0.4 * added.sum()  # measured: 102 of 222
