"""The two figures a restored image is judged by: PSNR against the clean image, and the IoU of
the found mask with the true one.

numpy only: the held-out set (`restore_core.heldout`) scores models with them, and the
torch-free demo labels its contact sheet with the same numbers.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, where: Optional[np.ndarray] = None) -> float:
    """PSNR in dB of uint8 images `a` and `b`, over the pixels `where` (bool (H, W)) when given; 100 if equal."""
    d = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        d = d[where]
    mse = float(np.mean(d**2)) if d.size else 0.0
    return 100.0 if mse == 0 else min(100.0, 10 * math.log10(255.0**2 / mse))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty."""
    union = int((pred | truth).sum())
    return 1.0 if union == 0 else float((pred & truth).sum() / union)
