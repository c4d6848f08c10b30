"""The network itself: shapes, ranges, gradients, counting."""

import pytest
import torch

from restore_core.model import DualDecoderUNet, ModelConfig, count_flops, count_parameters
from tests.conftest import TINY


def test_shapes_ranges_and_finite():
    torch.manual_seed(0)
    model = DualDecoderUNet(TINY)
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    image, logits = model(x)
    assert image.shape == (2, 3, 16, 24) and logits.shape == (2, 1, 16, 24)
    assert torch.isfinite(image).all() and torch.isfinite(logits).all()
    assert image.abs().max() <= 1.0  # tanh head
    _, prob = model.predict(x)
    assert 0.0 <= prob.min() and prob.max() <= 1.0  # sigmoid head
    assert torch.allclose(prob, torch.sigmoid(logits))


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = DualDecoderUNet(TINY)
    image, logits = model(torch.rand(2, 3, 16, 16) * 2 - 1)
    (image.square().mean() + logits.square().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_structure_follows_the_seed():
    cfg = ModelConfig(base_channels=8, depth=3, blocks_per_stage=2)
    model = DualDecoderUNet(cfg)
    assert model.stride == 8
    assert len(model.encoder.stages) == 3
    assert len(model.image_decoder.stages) == len(model.mask_decoder.stages) == 3
    # Two heads of the reference design's widths: 3 image channels, 1 mask channel, both 1x1.
    assert model.image_decoder.head.out_channels == 3 and model.image_decoder.head.kernel_size == (1, 1)
    assert model.mask_decoder.head.out_channels == 1 and model.mask_decoder.head.kernel_size == (1, 1)
    # The decoders share the encoder but not weights with each other.
    assert model.image_decoder.stages[0].entry.conv.weight is not model.mask_decoder.stages[0].entry.conv.weight


def test_parameter_and_flop_counts_are_computed():
    cfg = ModelConfig(base_channels=4, depth=1, blocks_per_stage=0)
    model = DualDecoderUNet(cfg)
    # Hand count: encoder entry 3->4 (3*3*3*4 + BN 8), bottleneck 4->8 (4*9*8 + 16),
    # each decoder stage (8+4)->4 (12*9*4 + 8), heads 4->3 (+3) and 4->1 (+1).
    enc = 3 * 9 * 4 + 8 + 4 * 9 * 8 + 16
    dec = 12 * 9 * 4 + 8
    assert count_parameters(model) == enc + 2 * dec + (4 * 3 + 3) + (4 * 1 + 1)
    # FLOPs scale with the pixel count.
    assert count_flops(model, 32) * 4 == count_flops(model, 64)


def test_config_rejects_unknown_and_mistyped_keys():
    with pytest.raises(ValueError, match="unknown model config key"):
        ModelConfig.from_dict({"base_channels": 8, "widht": 3})
    with pytest.raises(ValueError, match="must be an integer"):
        ModelConfig.from_dict({"base_channels": "8"})
    assert ModelConfig.from_json(ModelConfig(base_channels=8).to_json()) == ModelConfig(base_channels=8)


@pytest.mark.parametrize("width", [24, 16])  # the defaults (the reference design), the shipped model
def test_model_docstring_figures_are_what_the_code_computes(width):
    model = DualDecoderUNet(ModelConfig(base_channels=width)).eval()
    doc = " ".join(ModelConfig.__doc__.split())
    assert f"{count_parameters(model) / 1e6:.2f} M parameters and {count_flops(model, 256) / 1e9:.1f}" in doc
    assert f"width {width}" in doc
