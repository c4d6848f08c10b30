"""Validation metrics, accumulated over batches (`MetricAccumulator`), and `evaluate`, which runs the
validation set through the deployed pipeline and reads them.

All figures are over the whole validation set unless named `mean_*` (a mean of per-image values):
- `l1_corrupted`: the loss's Lx (channel-summed L1 on corrupted pixels, [-1, 1] units).
- `bce`: the loss's Lm (mean BCE of the mask probability over all pixels).
- `loss`: 2 * l1_corrupted + bce, the figure that picks the best checkpoint.
- `mask_iou`, `mask_f1`, `mask_precision`, `mask_recall`: of the binarized mask (probability >=
  threshold) against the true mask, from pixel counts summed over the set.
- `psnr`: PSNR (dB, peak 255) of the reconstruction (the composite, uint8) against the clean image.
  `psnr_in_mask`: the same inside the true mask only (images without corrupted pixels skipped).
  A perfect image's PSNR is capped at `PSNR_CAP` so means stay finite.
- `share_psnr_at_least`: share of images whose reconstruction reaches `PSNR_GOOD` dB or more
  against the clean image (about where remaining differences become hard to see).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from restore_core.img_utils import normalize, unnormalize
from restore_core.losses import IMAGE_WEIGHT
from restore_core.model import DualDecoderUNet
from restore_core.pipeline import RestorationPipeline

PSNR_CAP = 100.0
PSNR_GOOD = 30.0


class NonFiniteOutputError(ValueError):
    """The model's outputs are NaN or infinite (a diverged run): no figure can be computed."""


def psnr(a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Optional[float]:
    """PSNR in dB between uint8 images (3, H, W); inside `mask` (1, H, W) bool when given.

    Returns None when the mask is empty, `PSNR_CAP` when the images are equal there.
    """
    d2 = (a.to(torch.float64) - b.to(torch.float64)) ** 2  # (3, H, W)
    if mask is not None:
        n = int(mask.sum()) * a.shape[0]
        if n == 0:
            return None
        mse = float((d2 * mask).sum()) / n
    else:
        mse = float(d2.mean())
    if mse == 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


class MetricAccumulator:
    """Sums what the metrics need, batch by batch; `result()` gives the figures.

    Args:
        threshold: mask probability at or above which a pixel counts as corrupted.
    """

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.l1_sum = self.mask_pixels = self.bce_sum = self.pixels = 0.0
        self.tp = self.fp = self.fn = 0
        self.per_image: List[Dict[str, Optional[float]]] = []

    @torch.no_grad()
    def update(self, pred: torch.Tensor, prob: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor,
               restored_u8: torch.Tensor, clean_u8: torch.Tensor,
               hit: Optional[torch.Tensor] = None) -> List[Dict[str, Optional[float]]]:
        """Add a batch and return its per-image figures.

        Args:
            pred: predicted image (N, 3, H, W) in [-1, 1].
            prob: mask probability (N, 1, H, W).
            clean: clean image (N, 3, H, W) in [-1, 1].
            mask: true mask (N, 1, H, W) bool.
            restored_u8: the reconstruction, uint8 (N, 3, H, W).
            clean_u8: the clean image, uint8 (N, 3, H, W).
            hit: the binarized mask (N, 1, H, W) bool the composite used (the pipeline's, after
                its mask opening); default: `prob >= threshold`.

        Raises:
            NonFiniteOutputError: `pred` or `prob` holds NaN or infinite values.
        """
        pred, prob, clean = pred.float().cpu(), prob.float().cpu(), clean.float().cpu()
        if not (torch.isfinite(pred).all() and torch.isfinite(prob).all()):
            raise NonFiniteOutputError("the model's outputs are not finite numbers (NaN or infinite)")
        mask, restored_u8, clean_u8 = mask.bool().cpu(), restored_u8.cpu(), clean_u8.cpu()
        m = mask.float()
        l1 = ((pred - clean).abs() * m).sum(dim=(1, 2, 3))  # (N,)
        # F.binary_cross_entropy clamps log at -100, so a saturated wrong pixel stays finite.
        bce = F.binary_cross_entropy(prob, m, reduction="none").sum(dim=(1, 2, 3))  # (N,)
        hit = prob >= self.threshold if hit is None else hit.bool().cpu()  # (N, 1, H, W)
        tp = (hit & mask).sum(dim=(1, 2, 3))
        fp = (hit & ~mask).sum(dim=(1, 2, 3))
        fn = (~hit & mask).sum(dim=(1, 2, 3))
        out = []
        for i in range(pred.shape[0]):
            n_mask, n_pix = float(m[i].sum()), float(m[i].numel())
            self.l1_sum += float(l1[i])
            self.mask_pixels += n_mask
            self.bce_sum += float(bce[i])
            self.pixels += n_pix
            t, f_p, f_n = int(tp[i]), int(fp[i]), int(fn[i])
            self.tp, self.fp, self.fn = self.tp + t, self.fp + f_p, self.fn + f_n
            union = t + f_p + f_n
            rec = {
                "l1_corrupted": float(l1[i]) / max(n_mask, 1.0),
                "bce": float(bce[i]) / n_pix,
                "mask_iou": t / union if union else 1.0,  # both empty: a perfect answer
                "mask_f1": 2 * t / (2 * t + f_p + f_n) if union else 1.0,
                "psnr": psnr(restored_u8[i], clean_u8[i]),
                "psnr_in_mask": psnr(restored_u8[i], clean_u8[i], mask[i]),
                "corrupted_share": n_mask / n_pix,
            }
            self.per_image.append(rec)
            out.append(rec)
        return out

    def result(self) -> Dict[str, float]:
        """The set's figures (see the module docstring); an empty accumulator raises ValueError."""
        if not self.per_image:
            raise ValueError("no validation samples were measured")
        l1 = self.l1_sum / max(self.mask_pixels, 1.0)
        bce = self.bce_sum / self.pixels
        union = self.tp + self.fp + self.fn

        def mean(key):
            vals = [r[key] for r in self.per_image if r[key] is not None]
            return sum(vals) / len(vals) if vals else None

        return {
            "loss": IMAGE_WEIGHT * l1 + bce,
            "l1_corrupted": l1,
            "bce": bce,
            "mask_iou": self.tp / union if union else 1.0,
            "mask_f1": 2 * self.tp / (2 * self.tp + self.fp + self.fn) if union else 1.0,
            "mask_precision": self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0,
            "mask_recall": self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0,
            "mean_mask_iou": mean("mask_iou"),
            "psnr": mean("psnr"),
            "psnr_in_mask": mean("psnr_in_mask"),
            "share_psnr_at_least": sum(r["psnr"] >= PSNR_GOOD for r in self.per_image) / len(self.per_image),
            "psnr_good_db": PSNR_GOOD,
            "threshold": self.threshold,
            "samples": len(self.per_image),
        }


@torch.no_grad()
def evaluate(model: DualDecoderUNet, loader: DataLoader, device: torch.device, threshold: float) -> Dict[str, float]:
    """Validation figures (`MetricAccumulator`) through `RestorationPipeline.forward_tensor`, in fp32."""
    was_training = model.training
    model.eval()
    pipe = RestorationPipeline(model, threshold).eval()
    acc = MetricAccumulator(threshold)
    for corrupted, clean, mask in loader:
        corrupted, clean, mask = corrupted.to(device), clean.to(device), mask.to(device)
        pred, prob, composite = pipe.forward_tensor(normalize(corrupted))  # (N,3,H,W), (N,1,H,W), (N,3,H,W)
        acc.update(pred, prob, normalize(clean), mask, unnormalize(composite), clean)
    model.train(was_training)
    return acc.result()
