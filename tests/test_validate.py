"""restore-validate's library function: the reference design's three folders, metrics that match the images."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from restore_core.checkpoint import CheckpointError, save_checkpoint
from restore_core.data import synthesize_dataset
from restore_core.dataset_check import DatasetError
from restore_core.validate import OUTPUT_DIRS, validate
from tests.conftest import make_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("val")
    # 18 px: not a multiple of the tiny model's stride 4, so the pipeline's padding is exercised.
    synthesize_dataset(tmp / "data", count=2, size=18, seed=1, val_count=3)
    model = make_tiny_model(seed=3)
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(model.cfg), "threshold": 0.1},
                    tmp / "m.ckpt")
    return tmp


def _img(p):
    with Image.open(p) as im:
        return np.asarray(im)


def test_outputs_and_metrics_agree(setup, tmp_path):
    report = validate(setup / "m.ckpt", setup / "data", tmp_path / "out", device="cpu")
    names = sorted(p.name for p in (setup / "data" / "val" / "clean").iterdir())
    for d in OUTPUT_DIRS:
        assert sorted(p.name for p in (tmp_path / "out" / d).iterdir()) == names, d
    on_disk = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert on_disk["metrics"] == pytest.approx(report["metrics"]) and on_disk["threshold"] == 0.1
    tp = fp = fn = 0
    for name in names:
        corrupted = _img(setup / "data" / "val" / "corrupted" / name)
        true = _img(setup / "data" / "val" / "mask" / name) > 0
        restored = _img(tmp_path / "out" / "reconstructed_images" / name)
        predicted = _img(tmp_path / "out" / "predicted_images" / name)
        binary = _img(tmp_path / "out" / "binary_masks" / name)
        assert restored.shape == predicted.shape == corrupted.shape == (18, 18, 3) and binary.shape == (18, 18)
        assert set(np.unique(binary)) <= {0, 255}
        hit = binary == 255
        assert 0 < hit.sum() < hit.size, "the tiny model should mask some pixels and not others"
        assert np.array_equal(restored[~hit], corrupted[~hit])  # bit-exact outside the mask
        assert np.array_equal(restored[hit], predicted[hit])
        tp, fp, fn = tp + (hit & true).sum(), fp + (hit & ~true).sum(), fn + (~hit & true).sum()
    m = report["metrics"]
    assert m["mask_iou"] == pytest.approx(tp / (tp + fp + fn))
    assert m["mask_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["samples"] == 3 and set(report["per_image"]) == {n[:-4] for n in names}
    for key in ("bce", "l1_corrupted", "psnr", "psnr_in_mask", "share_psnr_at_least"):
        assert np.isfinite(m[key]), key


def test_threshold_override(setup, tmp_path):
    low = validate(setup / "m.ckpt", setup / "data", tmp_path / "low", threshold=0.01, device="cpu")
    high = validate(setup / "m.ckpt", setup / "data", tmp_path / "high", threshold=0.5, device="cpu")
    assert low["threshold"] == 0.01 and high["threshold"] == 0.5
    n_low = sum((_img(p) > 0).sum() for p in (tmp_path / "low" / "binary_masks").iterdir())
    n_high = sum((_img(p) > 0).sum() for p in (tmp_path / "high" / "binary_masks").iterdir())
    assert n_low > n_high


def test_bad_inputs_are_named(setup, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        validate(tmp_path / "none.ckpt", setup / "data", tmp_path / "o", device="cpu")
    with pytest.raises(DatasetError, match="does not exist"):
        validate(setup / "m.ckpt", tmp_path / "nodata", tmp_path / "o", device="cpu")
    assert not (tmp_path / "o").exists()


def test_heldout_report_scores_the_model_against_both_references(tiny_release, tmp_path):
    from click.testing import CliRunner

    from restore_core.cli import validate_cli
    from restore_core.heldout import heldout_photos

    out = tmp_path / "ho"
    result = CliRunner().invoke(validate_cli, ["--model", str(tiny_release), "--heldout", "--heldout-per-photo", "1",
                                               "--device", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "heldout.json").read_text())
    n = len(heldout_photos())
    assert report["images"] == n == len(report["per_image"]) == len(report["per_source"])
    identity = report["results"]["identity (corrupted input)"]
    assert identity["mask_iou"] == 0.0 and identity["worse"] == 0
    model = report["results"]["model"]
    assert 0.0 <= model["mask_iou"] <= 1.0 and model["images"] == n
    assert Image.open(out / "worst.png").height > 0 and Image.open(out / "typical.png").height > 0
    assert "| model |" in result.output
