"""The flip ensemble: the network on the image and its mirror image, averaged, carried by the
release into every export, and counted twice by the benchmark."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from restore_core.checkpoint import CheckpointError, load_model, save_release
from restore_core.img_utils import normalize
from restore_core.pipeline import RestorationPipeline
from tests.conftest import make_tiny_model, random_pixels


def _by_hand(model, x):
    """The ensemble written out: each view padded on its right and run alone, cropped, the
    mirror's outputs un-mirrored, then the means (the mask's in logits)."""
    h, w = x.shape[-2:]
    s = model.stride
    pad = [0, (s - w % s) % s, 0, (s - h % s) % s]
    a_pred, a_logit = (t[:, :, :h, :w] for t in model(F.pad(x, pad, mode="replicate")))
    b_pred, b_logit = (t[:, :, :h, :w].flip(-1) for t in model(F.pad(x.flip(-1), pad, mode="replicate")))
    return (a_pred + b_pred) / 2, torch.sigmoid((a_logit + b_logit) / 2)


@pytest.mark.parametrize("shape", [(1, 16, 16), (2, 19, 27)])
def test_ensemble_is_the_mean_of_the_two_views(shape):
    n, h, w = shape
    model = make_tiny_model(seed=4)
    pipe = RestorationPipeline(model, flip_ensemble=True).eval()
    x = normalize(random_pixels(n, h, w, seed=5).permute(0, 3, 1, 2))
    with torch.inference_mode():
        pred, prob, composite = pipe.forward_tensor(x)
        ref_pred, ref_prob = _by_hand(model, x)
        single_pred, single_prob, _ = RestorationPipeline(model).eval().forward_tensor(x)
    torch.testing.assert_close(pred, ref_pred, rtol=0, atol=1e-6)
    torch.testing.assert_close(prob, ref_prob, rtol=0, atol=1e-6)
    assert not torch.allclose(prob, single_prob, atol=1e-3), "the ensemble changed nothing"
    m = (prob >= 0.1).float()
    assert torch.equal(composite, (1 - m) * x + m * pred)  # the reference design's compositing, unchanged


def test_ensemble_keeps_input_bytes_outside_the_mask_and_is_mirror_symmetric():
    pipe = RestorationPipeline(make_tiny_model(seed=6), flip_ensemble=True).eval()
    image = random_pixels(2, 19, 23, seed=7)
    with torch.inference_mode():
        restored, mask, predicted = pipe(image)
        m_restored, m_mask, m_predicted = pipe(image.flip(2))
    outside = (mask == 0).expand_as(image)
    assert 0.05 < (~outside).float().mean() < 0.95
    assert torch.equal(restored[outside], image[outside])
    # Mirroring the input mirrors the output (padding included): both views are in every answer.
    assert (m_mask.flip(2) != mask).float().mean() < 0.002
    assert (m_predicted.flip(2).int() - predicted.int()).abs().max() <= 1


def test_release_carries_the_setting(tmp_path):
    model = make_tiny_model(seed=8)
    save_release(tmp_path / "on.safetensors", model, flip_ensemble=True)
    save_release(tmp_path / "off.safetensors", model)
    assert load_model(tmp_path / "on.safetensors").pipeline().flip_ensemble is True
    assert load_model(tmp_path / "off.safetensors").pipeline().flip_ensemble is False
    save_release(tmp_path / "bad.safetensors", model, extra={"restore.flip_ensemble": "yes"})
    with pytest.raises(CheckpointError, match=r"bad.safetensors: restore.flip_ensemble is 'yes'"):
        load_model(tmp_path / "bad.safetensors")


def test_cli_sets_it_and_every_onnx_export_follows_it(tmp_path):
    from export.cli import main
    from runtime.metadata import read_metadata
    from runtime.restorer import Restorer

    src = tmp_path / "src.safetensors"
    model = make_tiny_model(seed=9)
    save_release(src, model)
    run = lambda *a: CliRunner().invoke(main, [str(v) for v in a])  # noqa: E731
    on = tmp_path / "on.safetensors"
    result = run("weights", "--model", src, "--flip-ensemble", "-o", on)
    assert result.exit_code == 0 and "flip ensemble" in result.output, result.output
    result = run("inspect", on)
    assert "flip_ensemble: True" in result.output, result.output

    graph = tmp_path / "on.onnx"
    result = run("onnx", "--model", on, "-o", graph)  # verified against eager PyTorch at export
    assert result.exit_code == 0 and "parity: passed" in result.output, result.output
    assert read_metadata(graph).extra["flip_ensemble"] == "true"
    single = tmp_path / "single.onnx"
    result = run("onnx", "--model", on, "--no-flip-ensemble", "-o", single, "--no-verify")
    assert result.exit_code == 0 and read_metadata(single).extra["flip_ensemble"] == "false"
    scripted = tmp_path / "on.pt"  # TorchScript scripts the ensemble's branch too
    result = run("torchscript", "--model", on, "-o", scripted)
    assert result.exit_code == 0 and "parity: passed" in result.output, result.output
    assert "flip_ensemble: true" in run("inspect", scripted).output

    image = random_pixels(1, 21, 26, seed=10)
    with torch.inference_mode():
        want, _, _ = RestorationPipeline(model, flip_ensemble=True).eval()(image)
        single_want, _, _ = RestorationPipeline(model).eval()(image)
    got = Restorer(graph, even_fill=False).restore(image[0].numpy()).image  # the graph's own fill: its parity
    assert (torch.from_numpy(got).int() - want[0].int()).abs().max() <= 1
    assert not torch.equal(want, single_want)


def test_benchmark_counts_both_passes(tmp_path):
    from benchmarks.runner import BenchSettings
    from benchmarks.subject import flops_per_image, load_subject
    from restore_core.model import count_flops

    model = make_tiny_model(seed=11)
    save_release(tmp_path / "on.safetensors", model, flip_ensemble=True)
    pipeline, info, _ = load_subject(BenchSettings(checkpoint=tmp_path / "on.safetensors"))
    assert pipeline.flip_ensemble and info["flip_ensemble"] is True
    one = count_flops(model, 20)  # 18 px pads to 20 at stride 4
    assert flops_per_image(info["_flops_model"], [18], True) == {18: 2 * one}
    assert flops_per_image(info["_flops_model"], [18], False) == {18: one}
    pipeline, info, _ = load_subject(BenchSettings(checkpoint=tmp_path / "on.safetensors", flip_ensemble=False))
    assert not pipeline.flip_ensemble and info["flip_ensemble"] is False


def test_validate_runs_the_release_as_it_ships(tmp_path):
    """restore-validate on a dataset restores with the release's own pipeline: its binary masks
    are the ensemble's, and metrics.json says which pipeline ran."""
    import json

    import numpy as np
    from PIL import Image

    from restore_core.data import synthesize_dataset
    from restore_core.validate import validate

    synthesize_dataset(tmp_path / "data", count=1, size=18, seed=2, val_count=2)
    model = make_tiny_model(seed=12)
    save_release(tmp_path / "on.safetensors", model, flip_ensemble=True)
    report = validate(tmp_path / "on.safetensors", tmp_path / "data", tmp_path / "out", device="cpu")
    assert report["model"]["flip_ensemble"] is True
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["model"]["flip_ensemble"] is True
    pipe = RestorationPipeline(model, flip_ensemble=True).eval()
    for path in sorted((tmp_path / "data" / "val" / "corrupted").iterdir()):
        image = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy())[None]
        with torch.inference_mode():
            _, mask, _ = pipe(image)
        written = np.asarray(Image.open(tmp_path / "out" / "binary_masks" / path.name))
        assert np.array_equal(written, mask[0, ..., 0].numpy())

