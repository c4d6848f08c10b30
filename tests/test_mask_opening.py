"""The mask opening: specks and hairlines of the binarized mask removed, solid marks kept exactly,
carried by releases and ONNX files, and tiled with a halo that covers it."""

from __future__ import annotations

import pytest
import torch

from export.onnx_export import build_metadata, save_onnx, to_onnx_proto
from export.parity import FP32, pixel_parity, violations
from restore_core.checkpoint import FORMAT_VERSION, RELEASE_FORMAT, CheckpointError, load_model, save_release
from restore_core.pipeline import RestorationPipeline, open_mask
from runtime import Restorer
from runtime.metadata import ModelFileError, read_metadata
from runtime.tiling import receptive_radius
from tests.conftest import random_pixels
from tests.test_export_onnx import confident_tiny_model


def _blocky(h: int, w: int, seed: int, cell: int = 8) -> torch.Tensor:
    """(1, h, w, 3) uint8 of random cells of `cell` pixels: the tiny model's mask comes in blobs."""
    small = random_pixels(1, h // cell + 1, w // cell + 1, seed=seed)
    return small.repeat_interleave(cell, 1).repeat_interleave(cell, 2)[:, :h, :w].contiguous()


def _mask(h: int, w: int, *boxes) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w, dtype=torch.bool)
    for y0, y1, x0, x1 in boxes:
        m[0, 0, y0:y1, x0:x1] = True
    return m


def test_opening_removes_what_is_narrower_than_the_square_and_keeps_the_rest_exactly():
    block = (0, 6, 0, 6)  # a 6x6 mark in the corner: the border must not erode it
    plus = (8, 14, 8, 14)  # a 6x6 mark with a 1-pixel spur and a 2-pixel-wide arm
    mask = _mask(20, 20, block, plus, (10, 11, 14, 18), (15, 17, 9, 19), (18, 19, 2, 3))
    opened = open_mask(mask, 3)[0, 0]
    # Hand-computed: both 6x6 squares survive whole; the 1-pixel spur (row 10, x 14-17) and the
    # lone pixel at (18, 2) go; the 2-pixel-high bar (rows 15-16) is narrower than 3 and goes.
    assert torch.equal(opened, _mask(20, 20, block, plus)[0, 0])
    # A 5x5 square keeps both 6x6 marks too. A 7x7 one removes the inner mark; the corner block
    # stays, since as far as the opening can tell it goes on past the border.
    assert torch.equal(open_mask(mask, 5)[0, 0], _mask(20, 20, block, plus)[0, 0])
    assert torch.equal(open_mask(mask, 7)[0, 0], _mask(20, 20, block)[0, 0])
    assert torch.equal(open_mask(_mask(9, 9), 3), _mask(9, 9))  # nothing flagged stays so


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return confident_tiny_model(seed=3, spread=4.0)


def test_pipeline_composites_with_the_opened_mask(model):
    image = random_pixels(2, 37, 53, seed=7)
    plain = RestorationPipeline(model).eval()
    opened = RestorationPipeline(model, mask_opening=3).eval()
    with torch.no_grad():
        restored, mask, predicted = opened(image)
        _, raw, predicted_plain = plain(image)
        x = image.permute(0, 3, 1, 2).float() / 127.5 - 1
        _, _, composite = opened.forward_tensor(x)
    want = open_mask((raw > 0).permute(0, 3, 1, 2), 3).permute(0, 2, 3, 1)  # (N, H, W, 1)
    assert torch.equal(mask > 0, want) and torch.equal(predicted, predicted_plain)
    assert 0 < want.sum() < (raw > 0).sum()  # not vacuous: the opening removed some pixels
    assert torch.equal(restored, torch.where(want, predicted, image))  # the input's bytes elsewhere
    outside = ~want.permute(0, 3, 1, 2).expand_as(x)
    assert torch.equal(composite[outside], x[outside])
    with pytest.raises(ValueError, match="mask_opening"):
        RestorationPipeline(model, mask_opening=4)


def test_release_carries_the_opening_and_refuses_a_malformed_one(model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "opened.safetensors"
    save_release(path, model, mask_opening=5)
    loaded = load_model(path)
    assert loaded.mask_opening == 5 and loaded.pipeline().mask_opening == 5
    plain = tmp_path / "plain.safetensors"
    save_release(plain, model)
    assert load_model(plain).mask_opening == 0
    bad = tmp_path / "bad.safetensors"
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"restore.format": RELEASE_FORMAT, "restore.format_version": str(FORMAT_VERSION),
            "restore.model_config": model.cfg.to_json(), "restore.threshold": "0.1", "restore.mask_opening": "4"}
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match="bad.safetensors: restore.mask_opening is '4'"):
        load_model(bad)


@pytest.fixture(scope="module")
def opened_onnx(model, tmp_path_factory):
    pipeline = RestorationPipeline(model, mask_opening=5).eval()
    path = tmp_path_factory.mktemp("opened") / "opened.onnx"
    save_onnx(to_onnx_proto(pipeline, "pixels"), path, build_metadata(pipeline, "pixels", "fp32", parity=None))
    return pipeline, path


def test_onnx_graph_opens_the_mask_as_the_pipeline_does(opened_onnx):
    import onnxruntime as ort

    pipeline, path = opened_onnx
    assert read_metadata(path).mask_opening == 5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = _blocky(45, 61, seed=11)
    with torch.no_grad():
        ref = [t.numpy() for t in pipeline(image)]
    out = session.run(["restored", "mask", "predicted"], {"image": image.numpy()})
    figures = pixel_parity(image.numpy(), ref, out)
    assert violations(figures, FP32) == [], figures
    assert figures["outside_mask_exact"] and 0.05 < (out[1] > 0).mean() < 0.95


def test_tiles_carry_the_opening_in_their_halo(opened_onnx):
    pipeline, path = opened_onnx
    restorer = Restorer(path, device="cpu")
    # 5x5: 2 + 2 pixels, and 1 for a grown JPEG mask (Restorer.infer)
    assert restorer.halo == receptive_radius(restorer.metadata.model_config) + 4 + 1
    rgb = _blocky(70, 90, seed=12)[0].numpy()
    whole = restorer.restore_rgb(rgb, tile=0)
    tiled = restorer.restore_rgb(rgb, tile=16)
    assert tiled[3] > 1 and 0.05 < (whole[1] > 0).mean() < 0.95
    figures = pixel_parity(rgb[None], [whole[0][None], whole[1][None, ..., None], whole[2][None]],
                           [tiled[0][None], tiled[1][None, ..., None], tiled[2][None]])
    assert violations(figures, FP32) == [], figures


def test_a_graph_whose_opening_is_malformed_is_refused():
    from runtime.metadata import ModelMetadata

    meta = ModelMetadata("1", "pixels", "NHWC", "RGB", 0.1, 4, True, "fp32", {}, "x", {}, None,
                         extra={"mask_opening": "two"})
    with pytest.raises(ModelFileError, match="mask_opening is 'two'"):
        assert meta.mask_opening
    # Files written before the key existed have no opening.
    assert ModelMetadata("1", "pixels", "NHWC", "RGB", 0.1, 4, True, "fp32", {}, "x", {}, None).mask_opening == 0


def test_torchscript_and_exported_program_open_the_mask_too(model):
    import warnings

    pipeline = RestorationPipeline(model, mask_opening=5).eval()
    image = _blocky(45, 61, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script's deprecation notice
        scripted = torch.jit.script(pipeline)
    exported = torch.export.export(pipeline, (image,)).module()
    with torch.no_grad():
        want = pipeline(image)
        for got in (scripted(image), exported(image)):
            assert all(torch.equal(a, b) for a, b in zip(got, want))
    assert 0.05 < (want[1] > 0).float().mean() < 0.95
