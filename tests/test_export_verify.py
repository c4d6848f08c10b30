"""Parity checking itself: the cases it runs, hand-computed figures, and that it catches
each kind of disagreement (levels, mask flips, touched pixels outside the mask, float drift)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.parity import FP16, FP32, format_table, merge, pixel_parity, tensor_mask_parity, violations
from export.verify import Backend, ParityError, check_parity, parity_cases
from restore_core.pipeline import RestorationPipeline
from tests.test_export_onnx import confident_tiny_model, one_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def pipeline():
    return RestorationPipeline(confident_tiny_model(seed=2)).eval()


@pytest.fixture(scope="module")
def cases():
    return parity_cases()


def _eager_backend(pipeline, pixels_edit=None, tensor_edit=None) -> Backend:
    """Eager itself, optionally with its outputs edited: a backend with known faults."""

    @torch.no_grad()
    def pixels(image):
        out = [t.numpy().copy() for t in pipeline(torch.from_numpy(image))]
        return pixels_edit(image, out) if pixels_edit else out

    @torch.no_grad()
    def tensor(x):
        out = [t.numpy().copy() for t in pipeline.forward_tensor(torch.from_numpy(x))]
        return tensor_edit(x, out) if tensor_edit else out

    return Backend("edited eager", pixels, tensor)


def test_cases_cover_batches_odd_sizes_and_photos(cases):
    shapes = [c.image.shape for c in cases]
    assert (3, 37, 53, 3) in shapes  # batch 3, neither side a multiple of 4 or 16
    assert any(s[1] % 16 == 0 and s[2] % 16 == 0 for s in shapes)
    photos = [c for c in cases if c.name.startswith("photo ")]
    assert len(photos) == 2 and all(c.image.dtype == np.uint8 and c.image.shape[0] == 1 for c in photos)
    # Seeded: the same cases every time.
    assert all(np.array_equal(a.image, b.image) for a, b in zip(cases, parity_cases()))


def test_eager_against_itself_is_exact(pipeline, cases):
    summary = check_parity(_eager_backend(pipeline), pipeline, "fp32", cases)
    worst = summary["worst"]
    assert summary["passed"] and worst["differing_share"] == 0 and worst["mask_disagreement"] == 0
    assert worst["predicted_max_abs_diff"] == 0 and worst["outside_mask_exact"] is True
    table = format_table(summary)
    assert all(c.name in table for c in cases) and "allowed (fp32)" in table


def test_catches_level_drift(pipeline, cases):
    def shift(image, out):
        out[2] = np.clip(out[2].astype(np.int16) + 2, 0, 255).astype(np.uint8)  # predicted +2 levels
        return out

    with pytest.raises(ParityError, match="differ by up to 2 levels"):
        check_parity(_eager_backend(pipeline, pixels_edit=shift), pipeline, "fp32", cases[:2])


def test_catches_touched_pixels_outside_mask(pipeline, cases):
    def touch(image, out):
        restored, mask = out[0], out[1]
        n, h, w = np.nonzero(mask[..., 0] == 0)
        restored[n[0], h[0], w[0], 0] ^= 1  # one byte outside the mask
        return out

    with pytest.raises(ParityError, match="outside the mask differ"):
        check_parity(_eager_backend(pipeline, pixels_edit=touch), pipeline, "fp32", cases[:1])


def test_catches_mask_flips_and_float_drift(pipeline, cases):
    def drift(x, out):
        out[1] = out[1] + np.float32(1e-3)  # probabilities up: masks just below the threshold flip on
        return out

    with pytest.raises(ParityError) as err:
        check_parity(_eager_backend(pipeline, tensor_edit=drift), pipeline, "fp32", cases[:2])
    reasons = str(err.value).splitlines()[-1]
    assert "mask disagrees" in reasons and "mask_prob_max_abs_diff = 1.00e-03 (allowed 1e-04)" in reasons
    assert "predicted_max_abs_diff" not in reasons


def test_pixel_parity_hand_computed():
    image = np.zeros((1, 2, 2, 3), np.uint8)
    ref_pred = np.full((1, 2, 2, 3), 100, np.uint8)
    ref_mask = np.array([[[[255], [0]], [[0], [0]]]], np.uint8)
    ref_restored = np.where(ref_mask > 0, ref_pred, image)
    pred = ref_pred.copy()
    pred[0, 1, 1, 2] = 101  # one predicted value one level off
    mask = ref_mask.copy()
    mask[0, 1, 0, 0] = 255  # one mask bit flipped on
    restored = np.where(mask > 0, pred, image)
    f = pixel_parity(image, [ref_restored, ref_mask, ref_pred], [restored, mask, pred])
    # Restored is compared where the masks agree (3 pixels x 3 values, none differ there);
    # predicted everywhere (12 values, 1 differs): 1 of 21.
    assert f["differing_share"] == pytest.approx(1 / 21)
    assert f["max_level_diff"] == 1
    assert f["mask_disagreement"] == pytest.approx(1 / 4)
    assert f["outside_mask_exact"] is True
    assert violations(f, FP32) == ["4.762% of uint8 values differ (allowed 0.100%)",
                                   "mask disagrees on 25.0000% of pixels (allowed 0.0100%)"]


def test_tensor_mask_parity_hand_computed():
    x = np.array([[[[0.5, -0.5]]]], np.float32)  # (1, 1, 1, 2): one channel keeps it small
    ref = [np.zeros_like(x), np.array([[[[0.2, 0.05]]]], np.float32), np.array([[[[0.0, -0.5]]]], np.float32)]
    test = [ref[0], np.array([[[[0.2, 0.1]]]], np.float32), np.array([[[[0.0, 0.0]]]], np.float32)]
    f = tensor_mask_parity(x, ref, test, threshold=0.1)
    assert f == {"mask_disagreement": 0.5, "outside_mask_exact": True}  # 0.1 >= 0.1 counts as masked
    test[2] = np.array([[[[0.0, -0.25]]]], np.float32)
    test[1] = np.array([[[[0.2, 0.0]]]], np.float32)  # now unmasked, yet the composite is not x
    assert tensor_mask_parity(x, ref, test, 0.1)["outside_mask_exact"] is False


def test_merge_keeps_the_worst():
    merged = merge([{"max_level_diff": 1, "differing_share": 0.1, "outside_mask_exact": True},
                    {"max_level_diff": 0, "differing_share": 0.3, "outside_mask_exact": False}])
    assert merged == {"max_level_diff": 1, "differing_share": 0.3, "outside_mask_exact": False}
    assert FP16.max_mask_disagreement > FP32.max_mask_disagreement


def test_mask_flips_count_over_all_checked_pixels(pipeline, cases):
    """One flipped pixel per image is 0.024% of the 64x64 case but 8 of ~216k checked pixels
    (0.004%): passes. Thirty per image (0.11% of all checked pixels) fails."""

    def flip(count):
        def edit(image, out):
            mask, restored = out[1], out[0]
            n, h, w = mask.shape[:3]
            idx = np.arange(count) * 7 % (h * w)  # distinct pixels, spread out
            for b in range(n):
                for i in idx:
                    y, x = divmod(int(i), w)
                    mask[b, y, x, 0] = 255 - mask[b, y, x, 0]
                    restored[b, y, x] = out[2][b, y, x] if mask[b, y, x, 0] else image[b, y, x]
            return out
        return edit

    one = check_parity(Backend("one flip", _eager_backend(pipeline, pixels_edit=flip(1)).pixels), pipeline, "fp32", cases)
    assert one["passed"] and one["cases"][0]["mask_disagreement"] > FP32.max_mask_disagreement
    assert one["worst"]["mask_disagreement"] < FP32.max_mask_disagreement
    with pytest.raises(ParityError, match="mask disagrees"):
        many = _eager_backend(pipeline, pixels_edit=flip(30)).pixels  # 30 of 4096 = 0.7% per image
        check_parity(Backend("many flips", many), pipeline, "fp32", cases)
