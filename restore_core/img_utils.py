"""Pixel scaling between uint8 images and the network's [-1, 1] range (the reference design's helpers).

These are the only two places where the scale lives: data loading, `RestorationPipeline` and
therefore every exported graph go through them. Both keep the tensor's layout.
"""

from __future__ import annotations

import torch


def normalize(img: torch.Tensor) -> torch.Tensor:
    """uint8 (or float in 0..255) pixels -> float32 in [-1, 1]; 0 -> -1, 255 -> 1."""
    return img.to(torch.float32) / 127.5 - 1.0


def unnormalize(img: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] -> uint8 in 0..255, rounding half to even (as ONNX Round does).

    `unnormalize(normalize(x)) == x` exactly for every uint8 value, which is what keeps
    pixels outside the mask bit-exact through a float round trip.
    """
    return torch.round((img.to(torch.float32) + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)
