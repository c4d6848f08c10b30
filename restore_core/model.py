"""The dual-decoder U-Net of the reference design.

One shared encoder of ResNet blocks, two decoders that mirror it: one predicts the clean
image (tanh, [-1, 1]), the other the mask of corrupted pixels (sigmoid, [0, 1]).

Reading order: config -> blocks -> encoder -> decoder -> the full network -> counting helpers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    """Width and depth of the U-Net.

    The defaults are the reference design's network, width 24: 4.78 M parameters and 25.2
    GFLOP per 256x256 image (`count_parameters`, `count_flops`; tests/test_model.py keeps these
    figures true). The shipped default model is the same network at width 16
    (configs/shipped-model/): 2.75 M parameters and 11.8 GFLOP.
    """

    in_channels: int = 3
    base_channels: int = 24  # channels of the first stage; each deeper stage doubles them
    depth: int = 4  # down-sampling stages; the network's stride is 2**depth
    blocks_per_stage: int = 1  # ResNet blocks after each stage's entry convolution
    max_channels: int = 256  # cap on the doubling, so deep configs stay affordable

    @property
    def stride(self) -> int:
        return 2**self.depth

    def widths(self) -> List[int]:
        """Channels at each resolution, from full (index 0) to the bottleneck (index depth)."""
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(self.depth + 1)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        for k, v in d.items():
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"model config key {k!r} must be an integer, got {v!r}")
        cfg = cls(**d)
        if cfg.depth < 1 or cfg.base_channels < 1 or cfg.blocks_per_stage < 0 or cfg.in_channels < 1:
            raise ValueError(f"model config out of range: {d}")
        return cfg

    @classmethod
    def from_json(cls, s: str) -> "ModelConfig":
        return cls.from_dict(json.loads(s))


# ---------------------------------------------------------------------------------------------
# Blocks. Norm and activation are arguments (timm style) so a variant is one line, not a copy.


class ConvNormAct(nn.Module):
    """3x3 conv -> norm -> activation; changes the channel count where a ResNet block cannot."""

    def __init__(self, c_in: int, c_out: int, norm=nn.BatchNorm2d, act=nn.SiLU):
        super().__init__()
        # No conv bias: BatchNorm's shift makes it redundant.
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = norm(c_out)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResNetBlock(nn.Module):
    """The reference design's block: 3x3 conv -> BatchNorm -> sum with the block input -> SiLU."""

    def __init__(self, channels: int, norm=nn.BatchNorm2d, act=nn.SiLU):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm = norm(channels)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)) + x)


class Stage(nn.Module):
    """Entry conv to the stage's width, then `blocks` ResNet blocks, all at one resolution."""

    def __init__(self, c_in: int, c_out: int, blocks: int):
        super().__init__()
        self.entry = ConvNormAct(c_in, c_out)
        self.blocks = nn.Sequential(*[ResNetBlock(c_out) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.entry(x))


# ---------------------------------------------------------------------------------------------
# Encoder and decoder.


class Encoder(nn.Module):
    """Stages then MaxPool; the skip of each stage is taken before its pool (reference design)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.widths()
        self.stages = nn.ModuleList(
            [Stage(cfg.in_channels if i == 0 else w[i - 1], w[i], cfg.blocks_per_stage) for i in range(cfg.depth)]
        )
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = Stage(w[cfg.depth - 1], w[cfg.depth], cfg.blocks_per_stage)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        skips: List[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)  # (N, w[i], H / 2**i, W / 2**i)
            skips.append(x)
            x = self.pool(x)  # (N, w[i], H / 2**(i+1), W / 2**(i+1))
        return self.bottleneck(x), skips  # (N, w[depth], H / stride, W / stride)


class Decoder(nn.Module):
    """Upsample by interpolation, concatenate the matching skip, convolve; then a 1x1 head."""

    def __init__(self, cfg: ModelConfig, out_channels: int):
        super().__init__()
        w = cfg.widths()
        # stages[j] brings resolution depth-j up to depth-j-1.
        self.stages = nn.ModuleList(
            [Stage(w[i + 1] + w[i], w[i], cfg.blocks_per_stage) for i in reversed(range(cfg.depth))]
        )
        self.head = nn.Conv2d(w[0], out_channels, 1)

    def forward(self, x: torch.Tensor, skips: List[torch.Tensor]) -> torch.Tensor:
        # Index the list instead of zip(stages, reversed(skips)): TorchScript cannot script that.
        n = len(skips)
        for j, stage in enumerate(self.stages):
            skip = skips[n - 1 - j]
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))  # (N, w[i], H / 2**i, W / 2**i)
        return self.head(x)


class DualDecoderUNet(nn.Module):
    """Shared encoder, image decoder (tanh) and mask decoder (sigmoid).

    `forward` returns the mask *logits*: the loss takes them (BCE-with-logits equals BCE on the
    sigmoid, but is stable and safe under autocast); `predict` applies the reference design's sigmoid head.
    Inputs are normalized images in [-1, 1] whose H and W are multiples of `stride`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stride = cfg.stride
        self.encoder = Encoder(cfg)
        self.image_decoder = Decoder(cfg, out_channels=3)
        self.mask_decoder = Decoder(cfg, out_channels=1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feats, skips = self.encoder(x)  # (N, w[depth], H/s, W/s), depth skips
        image = torch.tanh(self.image_decoder(feats, skips))  # (N, 3, H, W) in [-1, 1]
        mask_logits = self.mask_decoder(feats, skips)  # (N, 1, H, W)
        return image, mask_logits

    def predict(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        image, mask_logits = self.forward(x)
        return image, torch.sigmoid(mask_logits)


# ---------------------------------------------------------------------------------------------
# Counting: computed from the module, never written down by hand.


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, size: int = 256) -> int:
    """FLOPs (2 x multiply-accumulates) of one forward pass on a `size`x`size` RGB image.

    Uses torch's own FLOP counter, which counts convolutions and matrix products, the work
    that dominates this network.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, size, size, device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
