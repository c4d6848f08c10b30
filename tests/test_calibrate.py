"""Mask-offset calibration: the sweep scores what the calibrated model does, the choice follows
its rule, and `restore-export weights --calibrate` writes exactly that model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from export.cli import main
from restore_core.calibrate import (
    CALIBRATION_SEEDS,
    OffsetScore,
    apply_mask_offset,
    calibration_cases,
    choose_offset,
    cut,
    made_worse_by_false_positives,
    sweep_mask_offset,
)
from restore_core.checkpoint import load_model, save_release
from restore_core.heldout import HELDOUT_SEED, SELECTION_PHOTOS, Case, evaluate, heldout_set, score_case
from restore_core.pipeline import RestorationPipeline
from restore_core.validate import pixel_restorer
from tests.test_export_onnx import confident_tiny_model, one_thread  # noqa: F401 (fixture)


def test_cut_moves_the_threshold_by_the_offset_in_logits():
    assert cut(0.1, 0.0) == pytest.approx(0.1)
    assert cut(0.1, 1.0) == pytest.approx(1 / (1 + 9 * np.exp(-1.0)))  # odds 1:9 times e
    assert cut(0.1, 3.0) > cut(0.1, 1.0) > 0.1


def test_apply_mask_offset_lowers_the_mask_logits_and_nothing_else():
    model = confident_tiny_model(seed=1)
    shifted = copy.deepcopy(model)
    apply_mask_offset(shifted, 1.5)
    x = torch.rand(1, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        img0, logit0 = model(x)
        img1, logit1 = shifted(x)
    assert torch.equal(img0, img1)
    torch.testing.assert_close(logit1, logit0 - 1.5, rtol=0, atol=1e-5)
    changed = [k for k, v in shifted.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert changed == ["mask_decoder.head.bias"]


def test_sweep_scores_what_the_calibrated_model_restores():
    model = confident_tiny_model(seed=2)
    cases = heldout_set(2, seed=5, photos="selection")  # 4 small crops
    scores = sweep_mask_offset(RestorationPipeline(model).eval(), cases, offsets=(0.0, 0.8, 2.0), openings=(0, 3))
    assert [(s.offset, s.opening) for s in scores] == [(0.0, 0), (0.0, 3), (0.8, 0), (0.8, 3), (2.0, 0), (2.0, 3)]
    for s in scores:
        calibrated = copy.deepcopy(model)
        apply_mask_offset(calibrated, s.offset)
        pipeline = RestorationPipeline(calibrated, mask_opening=s.opening).eval()
        summary, _ = evaluate(cases, pixel_restorer(pipeline))
        # Thresholding at cut() equals the calibrated model up to float ties at the threshold.
        assert s.mask_iou == pytest.approx(summary["mask_iou"], abs=2e-3)
        assert s.psnr == pytest.approx(summary["psnr"], abs=0.02)
        assert s.worse == summary["worse"]
        assert 0 <= s.worse_by_false_positives <= s.worse
    assert scores[0].mask_iou != scores[4].mask_iou  # the offsets really move the mask
    assert scores[0].mask_iou != scores[1].mask_iou  # and the opening removes pixels


def test_an_image_is_blamed_on_false_positives_only_when_they_made_it_worse():
    clean = np.full((8, 8, 3), 100, np.uint8)
    damage = np.zeros((8, 8), bool)
    damage[2:5, 2:5] = True
    painted = clean.copy()
    painted[damage] = 110  # paint close to the photo: a fill of 160 is further from it
    case = Case("c", "s", clean, painted, damage)
    good_fill, bad_fill = np.full_like(clean, 100), np.full_like(clean, 160)

    def blamed(predicted, mask):
        restored = np.where(mask[..., None], predicted, case.corrupted)
        return made_worse_by_false_positives(case, predicted, mask, score_case(case, restored, mask))

    assert not blamed(good_fill, damage)  # better than the paint: not worse at all
    assert not blamed(bad_fill, damage)  # worse, but by the fill of the damage alone
    wide = damage.copy()
    wide[6:, :] = True  # two rows of clean pixels flagged and filled 60 levels off
    assert blamed(np.where(damage[..., None], 100, 40).astype(np.uint8), wide)  # the fill is exact: the rows did it
    assert not blamed(np.where(damage[..., None], 160, 40).astype(np.uint8), wide)  # worse even without the rows
    unpainted = Case("u", "s", clean, clean, np.zeros((8, 8), bool))  # nothing painted: any change is a false positive
    restored = np.where(wide[..., None], bad_fill, clean)
    assert made_worse_by_false_positives(unpainted, bad_fill, wide, score_case(unpainted, restored, wide))


def test_choose_offset_counts_only_the_images_false_positives_made_worse():
    def s(offset, psnr, worse, blamed):
        return OffsetScore(offset, 0.9, psnr, 20.0, worse, 5, blamed)

    # Two images made worse by their fill at offset 1 do not send the rule to offset 3, which
    # leaves the marks unfound; a false positive's image does.
    assert choose_offset([s(0, 30.0, 4, 2), s(1, 31.0, 2, 0), s(3, 29.5, 0, 0)]).offset == 1
    assert choose_offset([s(0, 30.0, 4, 2), s(1, 31.0, 2, 1), s(3, 29.5, 0, 0)]).offset == 3
    # A sweep recorded before the count (None) blames every image made worse, as the rule did then.
    assert OffsetScore(1, 0.9, 31.0, 20.0, 2).blamed == 2


def test_choose_offset_takes_the_best_psnr_among_the_fewest_made_worse():
    def s(offset, psnr, worse=0):
        return OffsetScore(offset, 0.9, psnr, 20.0, worse)

    assert choose_offset([s(0, 30.0), s(1, 30.4), s(2, 30.2)]).offset == 1
    assert choose_offset([s(0, 30.0), s(1, 30.4), s(2, 30.4)]).offset == 1  # a tie: the smaller
    assert choose_offset([s(0, 30.0, 1), s(1, 30.9, 2), s(2, 30.5, 1)]).offset == 2  # no more worse
    # One image made worse is not bought with a higher mean: 3 makes none worse.
    assert choose_offset([s(0, 30.0, 3), s(1, 31.0, 1), s(2, 31.3, 1), s(3, 31.2, 0), s(4, 30.9, 0)]).offset == 3
    assert choose_offset([s(0, 30.0), s(1, 29.0)]).offset == 0
    # Openings compete on the same rule; on a tie the smaller offset, then the smaller opening.
    opened = [OffsetScore(1, 0.9, 30.4, 20.0, 1, 0), OffsetScore(0, 0.9, 30.2, 20.0, 0, 5),
              OffsetScore(0, 0.9, 30.2, 20.0, 0, 3), OffsetScore(1, 0.9, 30.2, 20.0, 0, 3)]
    assert (choose_offset(opened).offset, choose_offset(opened).opening) == (0, 3)


def test_calibration_never_sees_the_reported_set():
    cases = calibration_cases(seeds=(1,), per_photo=3)
    assert {c.source for c in cases} == set(SELECTION_PHOTOS)  # the selection photos only
    # Saved as users' files are: PNG cases keep the paint exact, JPEG ones carry its ringing
    # into the damage mask, and unpainted ones have none.
    empty = [c for c in cases if not c.mask.any()]
    jpeg = [c for c in cases if c.mask.any() and not np.array_equal(c.corrupted[~c.mask], c.clean[~c.mask])]
    assert len(empty) == 4 and all(np.array_equal(c.corrupted, c.clean) for c in empty)
    assert len(jpeg) >= 4 and len(cases) == 15 + 4
    assert HELDOUT_SEED not in CALIBRATION_SEEDS


@pytest.fixture
def fewer_crops(monkeypatch):
    """The CLI's calibration on 2 crops of each selection photo at 2 seeds (the release uses 12 at
    4): what these tests check is the writing of the choice, not the choice's figures."""
    import restore_core.calibrate as cal

    every = cal.calibration_cases
    monkeypatch.setattr(cal, "calibration_cases", lambda: every(seeds=CALIBRATION_SEEDS[:2], per_photo=2))


def test_restore_export_weights_calibrate_writes_the_chosen_offset(tmp_path, fewer_crops):
    from safetensors import safe_open

    model = confident_tiny_model(seed=4)
    src = tmp_path / "m.safetensors"
    save_release(src, model)
    out = tmp_path / "cal.safetensors"
    result = CliRunner().invoke(main, ["weights", "--model", str(src), "--calibrate", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<- chosen" in result.output
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    offset = float(meta["restore.mask_offset"])
    sweep = json.loads(meta["restore.calibration"])["sweep"]
    chosen = choose_offset([OffsetScore(**r) for r in sweep])
    assert offset == chosen.offset and {r["opening"] for r in sweep} == {0, 3, 5}
    assert int(meta["restore.mask_opening"]) == chosen.opening == load_model(out).mask_opening
    from export.inspection import describe, format_description

    info = describe(out)
    assert info["mask_offset"] == offset and f"mask_offset: {offset}" in format_description(info)
    assert "mask_offset" not in describe(src)
    got = load_model(out).model.state_dict()
    for key, value in model.state_dict().items():
        want = value - offset if key == "mask_decoder.head.bias" else value
        torch.testing.assert_close(got[key], want, rtol=0, atol=1e-6)


def test_a_calibrated_release_is_calibrated_again_from_its_trained_head(tmp_path, fewer_crops):
    model = confident_tiny_model(seed=4)
    src = tmp_path / "m.safetensors"
    save_release(src, model)
    once, twice = tmp_path / "once.safetensors", tmp_path / "twice.safetensors"
    for a, b in ((src, once), (once, twice)):
        result = CliRunner().invoke(main, ["weights", "--model", str(a), "--calibrate", "-o", str(b)])
        assert result.exit_code == 0, result.output
    from restore_core.checkpoint import release_mask_offset

    assert release_mask_offset(twice) == release_mask_offset(once) and release_mask_offset(src) == 0.0
    first, second = load_model(once).model.state_dict(), load_model(twice).model.state_dict()
    for key, value in first.items():
        torch.testing.assert_close(second[key], value, rtol=0, atol=1e-6)
