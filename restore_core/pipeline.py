"""`RestorationPipeline`: decoded pixels in, restored pixels and mask out.

This module *is* the deployed model. Validation runs it, every exporter exports it and the
benchmarks time it, so normalization, padding, thresholding and compositing exist once, here.
It is written for `torch.onnx.export(dynamo=True)` and TorchScript: no Python branch depends
on tensor values, and the padding amount is computed from (symbolic) sizes.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from restore_core.img_utils import normalize, unnormalize
from restore_core.model import DualDecoderUNet

DEFAULT_THRESHOLD = 0.1  # the reference design's binarization threshold for the mask


def check_mask_opening(k: int) -> int:
    """A mask opening is 0 (none) or an odd side of at least 1 (1 is none too)."""
    if k != 0 and (k < 1 or k % 2 == 0):
        raise ValueError(f"mask_opening must be 0 or an odd side >= 1, got {k}")
    return k


def open_mask(corrupted: torch.Tensor, k: int) -> torch.Tensor:
    """Morphological opening of a bool mask (N, 1, H, W) by a k x k square (k odd; 0 or 1: the mask as is).

    Erosion is a min-pool and dilation a max-pool, both stride 1 with k // 2 padding: max-pool
    padding never wins, so the image border neither erodes a mark touching it nor grows one.
    Each pixel of the result depends on the mask within 2 * (k // 2) pixels (tiling's halo).
    """
    if k <= 1:
        return corrupted
    m = corrupted.to(torch.float32)
    eroded = -F.max_pool2d(-m, k, stride=1, padding=k // 2)  # 1 where the whole k x k window is 1
    return F.max_pool2d(eroded, k, stride=1, padding=k // 2) > 0.5  # (N, 1, H, W) bool


class RestorationPipeline(nn.Module):
    """Wraps a `DualDecoderUNet` with everything between pixels and the network.

    Args:
        model: the trained network (put in eval mode by the caller).
        threshold: mask probability at or above which a pixel counts as corrupted.
        flip_ensemble: run the network on the image and on its mirror image in one batch and
            average the two (the prediction, and the mask in logits), at twice the compute.
            The two views' errors are partly independent, so the mean is the better estimate:
            on four draws of the evaluation set it lifts the shipped model's mask IoU by 0.003-0.006 and
            whole-image PSNR by 0.09-0.33 dB (MODEL_CARD.md). The threshold and the composite
            are unchanged; they act on the averaged outputs.
        mask_opening: the side k of a square opening (an erosion, then a dilation, by k x k)
            applied to the binarized mask; 0 or 1 leaves it as it is. A painted mark is a solid
            shape, so what the opening removes, specks and hairlines of flagged pixels narrower
            than k, are the mask head's false positives. Removing them lets a lower mask offset
            find more of the paint: calibrated together on the selection photos, a 5 x 5
            opening and offset 3 found 0.891 of the damage where the bare mask's best offset
            (3.75) found 0.876, with no image made worse (MODEL_CARD.md). Marks narrower than k
            are left as they are. Calibration chooses k with the offset (restore_core/calibrate.py).
    """

    def __init__(self, model: DualDecoderUNet, threshold: float = DEFAULT_THRESHOLD, flip_ensemble: bool = False,
                 mask_opening: int = 0):
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        check_mask_opening(mask_opening)
        self.model = model
        self.threshold = float(threshold)
        self.stride = int(model.stride)
        self.flip_ensemble = bool(flip_ensemble)
        self.mask_opening = int(mask_opening) if mask_opening > 1 else 0

    def binarize(self, prob: torch.Tensor) -> torch.Tensor:
        """The mask probability (N, 1, H, W) to the mask the composite uses: (N, 1, H, W) bool."""
        return open_mask(prob >= self.threshold, self.mask_opening)

    def predict(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Network outputs for `x` (N, 3, H, W) in [-1, 1], any H and W: padded in, cropped out.

        Returns:
            predicted (N, 3, H, W) in [-1, 1] and mask probability (N, 1, H, W) in [0, 1].
        """
        h, w = x.shape[-2], x.shape[-1]
        # Pad bottom/right up to the next multiple of the stride so every pooled size is even;
        # replicate keeps edge statistics close to the image (zeros would read as a dark border).
        pad_h = (self.stride - h % self.stride) % self.stride
        pad_w = (self.stride - w % self.stride) % self.stride
        xp = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")  # (N, 3, H', W')
        if not self.flip_ensemble:
            pred, logits = self.model(xp)
            return pred[:, :, :h, :w], torch.sigmoid(logits[:, :, :h, :w])  # (N, 3|1, H, W)
        # The mirror image is padded on its own right, so the two views also differ in where the
        # padding lies; both run in one batch, then each is cropped and the mirror un-mirrored.
        n = x.shape[0]
        xm = F.pad(x.flip([-1]), [0, pad_w, 0, pad_h], mode="replicate")  # (N, 3, H', W')
        pred2, logits2 = self.model(torch.cat([xp, xm], dim=0))  # (2N, 3|1, H', W')
        pred2, logits2 = pred2[:, :, :h, :w], logits2[:, :, :h, :w]  # (2N, 3|1, H, W)
        pred = (pred2[:n] + pred2[n:].flip([-1])) * 0.5  # (N, 3, H, W)
        logits = (logits2[:n] + logits2[n:].flip([-1])) * 0.5  # (N, 1, H, W): the mean in logits
        return pred, torch.sigmoid(logits)

    @torch.jit.export  # scripted beside forward, so TorchScript files carry the float path too
    def forward_tensor(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The float path: `x` (N, 3, H, W) in [-1, 1], any H and W.

        Returns:
            predicted (N, 3, H, W) in [-1, 1], mask probability (N, 1, H, W) in [0, 1], and the
            composite (N, 3, H, W): `x` where the binarized mask is 0, `predicted` where it is 1.
        """
        pred, prob = self.predict(x)
        corrupted = self.binarize(prob)  # (N, 1, H, W) bool
        # torch.where, not (1 - m) * x + m * pred: selecting copies input values exactly.
        composite = torch.where(corrupted, pred.to(x.dtype), x)
        return pred, prob, composite

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pixel path: `image` uint8 (N, H, W, 3) RGB.

        Returns:
            restored uint8 (N, H, W, 3), mask uint8 (N, H, W, 1) with values 0 or 255, and the
            raw prediction uint8 (N, H, W, 3).
        """
        # contiguous(): a permuted (channels-last strided) input makes torch.export specialize
        # the batch size (its conv meta kernel guards N > 1), so a .pt2 would refuse single images.
        x = normalize(image.permute(0, 3, 1, 2).contiguous())  # (N, 3, H, W) in [-1, 1]
        pred, prob = self.predict(x)
        corrupted = self.binarize(prob).permute(0, 2, 3, 1)  # (N, H, W, 1) bool
        predicted = unnormalize(pred.permute(0, 2, 3, 1))  # (N, H, W, 3) uint8
        # Composite in uint8 so pixels outside the mask are the input bytes by construction.
        restored = torch.where(corrupted, predicted, image)
        mask = corrupted.to(torch.uint8) * 255
        return restored, mask, predicted
