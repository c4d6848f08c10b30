"""Benchmark inputs: real photos with synthetic corruption, the same for every backend.

Zeros or noise would flatter some backends (constant activations, denormals, trivially
compressible masks) and make parity meaningless; crops of scikit-image's bundled photos with
the project's own corruption are what the model is for. Seeded, so two runs see equal inputs.
"""

from __future__ import annotations

from typing import List

import numpy as np

from restore_core.photos import bundled_photos, random_crop
from restore_toolkit.corruption import corrupt, sample_rng

SEED = 2024
CALIBRATION_SEED = 7  # int8 calibration images are other crops than the timed ones


def corrupted_batch(batch: int, height: int, width: int, seed: int = SEED) -> np.ndarray:
    """uint8 (batch, height, width, 3): crops of different bundled photos, each corrupted.

    Args:
        batch: images in the batch; photo i of the batch is bundled photo i (cycling).
        height, width: output size; non-square sizes crop a square of the longer side and
            cut it, so the content stays a natural photo.
        seed: picks crop positions and corruption shapes.
    """
    photos = [img for _, img in sorted(bundled_photos().items())]
    side = max(height, width)
    out = np.empty((batch, height, width, 3), dtype=np.uint8)  # (N, H, W, 3)
    for i in range(batch):
        rng = sample_rng(seed, side, i)
        clean = random_crop(photos[i % len(photos)], side, rng, augment=False)[:height, :width]
        out[i], _ = corrupt(np.ascontiguousarray(clean), rng)
    return out


def calibration_batches(count: int, height: int, width: int) -> List[np.ndarray]:
    """`count` single-image batches for int8 calibration, disjoint in seed from the timed inputs."""
    return [corrupted_batch(1, height, width, seed=CALIBRATION_SEED * 1000 + k) for k in range(count)]


def input_bytes(batch: int, size: int) -> int:
    """Bytes of one grid cell's inputs alone: the uint8 images and their float32 copy (N, 3, H, W)."""
    return batch * size * size * 3 * (1 + 4)

