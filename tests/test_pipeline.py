"""`RestorationPipeline`: pixels to pixels, compositing exact to the bit outside the mask."""

import pytest
import torch

from restore_core.img_utils import normalize, unnormalize
from restore_core.pipeline import RestorationPipeline
from tests.conftest import random_pixels


def test_normalize_round_trips_every_uint8_value():
    x = torch.arange(256, dtype=torch.uint8)
    y = normalize(x)
    assert y.min() == -1.0 and y.max() == 1.0
    assert torch.equal(unnormalize(y), x)


@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 17, 23), (2, 5, 7), (1, 1, 1), (2, 40, 9)])
def test_pixels_any_size(tiny_pipeline, shape):
    n, h, w = shape
    image = random_pixels(n, h, w, seed=h * w)
    with torch.inference_mode():
        restored, mask, predicted = tiny_pipeline(image)
    assert restored.shape == (n, h, w, 3) and restored.dtype == torch.uint8
    assert mask.shape == (n, h, w, 1) and mask.dtype == torch.uint8
    assert predicted.shape == (n, h, w, 3) and predicted.dtype == torch.uint8
    assert set(mask.unique().tolist()) <= {0, 255}


def test_composite_is_bit_exact_outside_and_prediction_inside(tiny_pipeline):
    image = random_pixels(3, 37, 29, seed=1)
    with torch.inference_mode():
        restored, mask, predicted = tiny_pipeline(image)
    outside = (mask == 0).expand_as(image)
    inside = ~outside
    # The fixture's calibrated mask head gives a genuinely mixed mask.
    assert 0.1 < inside.float().mean() < 0.9
    assert torch.equal(restored[outside], image[outside])
    assert torch.equal(restored[inside], predicted[inside])


def test_tensor_path_matches_the_seed_formula(tiny_pipeline):
    x = normalize(random_pixels(2, 20, 28, seed=2).permute(0, 3, 1, 2))
    with torch.inference_mode():
        pred, prob, composite = tiny_pipeline.forward_tensor(x)
    m_bin = (prob >= 0.1).float()
    expected = (1 - m_bin) * x + m_bin * pred  # the reference design's equation
    assert torch.allclose(composite, expected, atol=0, rtol=0)


def test_padding_does_not_change_a_stride_multiple(tiny_pipeline):
    """At a multiple of the stride, the pipeline is the bare model: no padding happens."""
    x = normalize(random_pixels(1, 16, 24, seed=3).permute(0, 3, 1, 2))
    with torch.inference_mode():
        pred, prob, _ = tiny_pipeline.forward_tensor(x)
        ref_pred, ref_prob = tiny_pipeline.model.predict(x)
    assert torch.equal(pred, ref_pred) and torch.equal(prob, ref_prob)


def test_threshold_is_checked(tiny_model):
    with pytest.raises(ValueError):
        RestorationPipeline(tiny_model, threshold=0.0)
