"""The reference design's training loss, L = 2 * Lx + Lm, exactly as written there.

Lx = ||(x_hat - x) * m||_1 / |m|: the L1 norm runs over every corrupted pixel *and its three
channels* (the norm of the M x N x 3 difference), divided by |m|, the number of corrupted
*pixels*. So Lx is the per-pixel sum of the three channel errors, averaged over corrupted
pixels. The formula is per image; over a batch it can be reduced two ways, both equal to it for
one image:

- "pixels" (the default): numerator and |m| summed over all images before dividing, so each
  corrupted pixel weighs the same and images with large shapes dominate the gradient;
- "images": the mean of the per-image Lx, so each image weighs the same, as in a per-image
  metric (PSNR averaged over images), where small shapes count as much as large ones.

An image or batch with no corrupted pixel has Lx = 0 (|m| is clamped to 1), so the loss stays finite.

Lm = mean binary cross-entropy over all pixels, computed from the mask *logits* with
`binary_cross_entropy_with_logits`: the same value as BCE on the sigmoid output, but stable for
large logits and safe under autocast. Both terms are computed in float32.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

IMAGE_WEIGHT = 2.0  # the reference design's weight of Lx
LX_REDUCTIONS = ("pixels", "images")


class LossParts(NamedTuple):
    total: torch.Tensor  # 2 * lx + lm, a scalar
    lx: torch.Tensor
    lm: torch.Tensor


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, reduction: str = "pixels") -> torch.Tensor:
    """Lx: L1 over corrupted pixels (channels summed) divided by the number of corrupted pixels.

    Args:
        pred: predicted image (N, 3, H, W) in [-1, 1].
        target: clean image (N, 3, H, W) in [-1, 1].
        mask: true mask (N, 1, H, W), 1/True = corrupted.
        reduction: "pixels" (one ratio over the batch) or "images" (the mean of per-image ratios).
    """
    m = mask.to(torch.float32)  # (N, 1, H, W), broadcast over channels
    err = (pred.float() - target.float()).abs() * m  # (N, 3, H, W)
    if reduction == "pixels":
        return err.sum() / m.sum().clamp_min(1.0)
    if reduction == "images":
        return (err.sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1.0)).mean()  # (N,) -> scalar
    raise ValueError(f"Lx reduction must be one of {list(LX_REDUCTIONS)}, got {reduction!r}")


def mask_bce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Lm: mean BCE over all pixels, from mask logits (N, 1, H, W) and the true mask."""
    return F.binary_cross_entropy_with_logits(logits.float(), mask.to(torch.float32), reduction="mean")


def restoration_loss(pred: torch.Tensor, mask_logits: torch.Tensor, target: torch.Tensor,
                     mask: torch.Tensor, lx_reduction: str = "pixels") -> LossParts:
    """L = 2 * Lx + Lm for a batch; returns the total and both terms."""
    lx = masked_l1(pred, target, mask, lx_reduction)
    lm = mask_bce(mask_logits, mask)
    return LossParts(IMAGE_WEIGHT * lx + lm, lx, lm)
