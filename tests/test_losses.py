"""L = 2 Lx + Lm against values computed by hand, and the validation metrics likewise."""

import math

import pytest
import torch
import torch.nn.functional as F

from restore_core.losses import mask_bce, masked_l1, restoration_loss
from restore_core.metrics import PSNR_CAP, MetricAccumulator, psnr


def _one_image():
    # 2 x 2 image, target all zeros; corrupted pixels (0,0) and (1,0).
    pred = torch.zeros(1, 3, 2, 2)
    pred[0, :, 0, 0] = torch.tensor([0.5, -0.5, 0.25])
    pred[0, :, 0, 1] = torch.tensor([1.0, 1.0, 1.0])  # outside the mask: must not count
    pred[0, :, 1, 0] = torch.tensor([0.1, 0.2, 0.3])
    target = torch.zeros(1, 3, 2, 2)
    mask = torch.tensor([[[[1, 0], [1, 0]]]], dtype=torch.bool)
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    return pred, logits, target, mask


def test_hand_computed_loss():
    pred, logits, target, mask = _one_image()
    # Lx: channel-summed |error| over the 2 corrupted pixels, divided by 2 pixels.
    lx = ((0.5 + 0.5 + 0.25) + (0.1 + 0.2 + 0.3)) / 2  # 0.925
    # Lm: BCE per pixel: y=1 -> log(1 + e^-z), y=0 -> log(1 + e^z); mean of 4 pixels.
    lm = (math.log(1 + math.exp(0)) + math.log(1 + math.exp(2)) + math.log(1 + math.exp(1))
          + math.log(1 + math.exp(3))) / 4  # 1.795481...
    parts = restoration_loss(pred, logits, target, mask)
    assert parts.lx.item() == pytest.approx(0.925, abs=1e-6) and lx == pytest.approx(0.925)
    assert parts.lm.item() == pytest.approx(lm, abs=1e-6)
    assert lm == pytest.approx(1.7954805, abs=1e-6)
    assert parts.total.item() == pytest.approx(2 * 0.925 + lm, abs=1e-6)


def test_batch_counts_every_corrupted_pixel_once():
    pred, logits, target, mask = _one_image()
    # Second image: one corrupted pixel with channel errors 1, 1, 1 -> batch Lx = (1.85 + 3) / 3.
    pred2, target2 = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    pred2[0, :, 1, 1] = 1.0
    mask2 = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    mask2[0, 0, 1, 1] = True
    lx = masked_l1(torch.cat([pred, pred2]), torch.cat([target, target2]), torch.cat([mask, mask2]))
    assert lx.item() == pytest.approx((1.85 + 3.0) / 3, abs=1e-6)


def test_images_reduction_weighs_each_image_the_same():
    pred, logits, target, mask = _one_image()  # Lx 0.925 over 2 pixels
    pred2, target2 = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    pred2[0, :, 1, 1] = 1.0  # one corrupted pixel, Lx 3
    mask2 = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    mask2[0, 0, 1, 1] = True
    empty = torch.zeros(1, 1, 2, 2, dtype=torch.bool)  # no corrupted pixel: Lx 0, still one image
    p, t, m = torch.cat([pred, pred2, pred2]), torch.cat([target, target2, target2]), torch.cat([mask, mask2, empty])
    assert masked_l1(p, t, m, "images").item() == pytest.approx((0.925 + 3.0 + 0.0) / 3, abs=1e-6)
    assert masked_l1(p, t, m, "pixels").item() == pytest.approx((1.85 + 3.0) / 3, abs=1e-6)
    # One image: both reductions are the reference design's formula.
    assert masked_l1(pred, target, mask, "images").item() == pytest.approx(0.925, abs=1e-6)
    parts = restoration_loss(p, torch.cat([logits] * 3), t, m, lx_reduction="images")
    assert parts.total.item() == pytest.approx(2 * parts.lx.item() + parts.lm.item(), abs=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        masked_l1(p, t, m, "batch")


def test_no_corrupted_pixel_is_finite():
    pred = torch.rand(2, 3, 4, 4, requires_grad=True)
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    parts = restoration_loss(pred, logits, torch.zeros(2, 3, 4, 4), mask)
    assert parts.lx.item() == 0.0 and torch.isfinite(parts.total)
    parts.total.backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(logits.grad).all()


def test_bce_from_logits_equals_bce_on_sigmoid_and_stays_finite():
    logits = torch.randn(2, 1, 5, 5) * 3
    mask = torch.rand(2, 1, 5, 5) > 0.5
    ref = F.binary_cross_entropy(torch.sigmoid(logits), mask.float())
    assert mask_bce(logits, mask).item() == pytest.approx(ref.item(), rel=1e-5)
    # Saturated logits: sigmoid rounds to exactly 1.0 in float32, the logit form stays exact.
    big = torch.full((1, 1, 1, 1), 100.0, requires_grad=True)
    loss = mask_bce(big, torch.zeros(1, 1, 1, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx(100.0, rel=1e-6)
    loss.backward()
    assert torch.isfinite(big.grad).all()


def test_loss_under_bf16_autocast_is_float32():
    pred, logits, target, mask = _one_image()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = restoration_loss(pred.bfloat16(), logits.bfloat16(), target, mask)
    assert parts.total.dtype == torch.float32
    assert parts.lm.item() == pytest.approx(1.7954805, abs=1e-2)


def test_psnr_by_hand():
    a = torch.full((3, 4, 4), 100, dtype=torch.uint8)
    b = a + 1
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 1.0))  # 48.13 dB
    assert psnr(a, a) == PSNR_CAP
    m = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert psnr(a, b, m) is None
    b2 = a.clone()
    b2[:, 0, 0] = 110  # error 10 in one pixel
    m[0, 0, 0] = True
    assert psnr(a, b2, m) == pytest.approx(10 * math.log10(255**2 / 100.0))  # 28.13 dB inside the mask
    assert psnr(a, b2) == pytest.approx(10 * math.log10(255**2 / (100.0 / 16)))


def test_mask_metrics_by_hand():
    # True mask: 4 pixels; predicted: 3 of them plus 1 false positive -> TP 3, FP 1, FN 1.
    true = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    true[0, 0, 0, :] = True
    prob = torch.zeros(1, 1, 4, 4)
    prob[0, 0, 0, :3] = 0.9
    prob[0, 0, 3, 3] = 0.1  # exactly the threshold counts as corrupted
    clean = torch.zeros(1, 3, 4, 4)
    u8 = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    acc = MetricAccumulator(threshold=0.1)
    acc.update(clean, prob, clean, true, u8, u8)
    r = acc.result()
    assert r["mask_iou"] == pytest.approx(3 / 5)
    assert r["mask_f1"] == pytest.approx(6 / 8)
    assert r["mask_precision"] == pytest.approx(3 / 4) and r["mask_recall"] == pytest.approx(3 / 4)
    assert r["l1_corrupted"] == 0.0 and r["psnr"] == PSNR_CAP and r["share_psnr_at_least"] == 1.0
    # BCE: 3 hits at 0.9 (-log 0.9), 1 miss at p=0 (log clamped at -100), 1 FP at 0.1 (-log 0.9),
    # 11 correct zeros (0).
    assert r["bce"] == pytest.approx((4 * -math.log(0.9) + 100.0) / 16, rel=1e-5)
