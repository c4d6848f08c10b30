"""What `restore-export` shows while it works: the calibration's lines and bar, and no exporter
chatter about torchvision during an ONNX export."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

import export.cli as export_cli
from export.cli import main
from restore_core.calibrate import CALIBRATION_SEEDS
from restore_core.checkpoint import save_release
from tests.test_export_onnx import confident_tiny_model, one_thread  # noqa: F401 (fixture)


@pytest.fixture
def one_crop(monkeypatch):
    """The CLI's calibration on two crops (the release uses 300): these tests check what it
    prints, not the choice, and scoring the offsets takes about a second a crop."""
    import restore_core.calibrate as cal

    every = cal.calibration_cases
    monkeypatch.setattr(cal, "calibration_cases", lambda: every(seeds=CALIBRATION_SEEDS[:1], per_photo=1)[:2])


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    path = tmp_path_factory.mktemp("release") / "m.safetensors"
    save_release(path, confident_tiny_model(seed=4))
    return path


def calibrate(release, output, *args):
    result = CliRunner().invoke(main, ["weights", "--model", str(release), "--calibrate", "-o", str(output), *args])
    assert result.exit_code == 0, result.output
    return result


def test_calibrate_says_what_it_does_in_a_line_per_phase(release, tmp_path, one_crop):
    result = calibrate(release, tmp_path / "cal.safetensors")
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("calibrating the mask head on ") and "selection crops" in lines[0]
    assert lines[1].startswith("chose mask offset ") and "mask opening" in lines[1] and "PSNR" in lines[1]
    # Not a terminal: no bar, and the table and the "wrote" line stay on stdout.
    assert "calibrating:" not in result.stderr and "\r" not in result.stderr
    assert "<- chosen" in result.stdout and result.stdout.splitlines()[-1].startswith("wrote ")


def test_calibrate_draws_a_bar_on_a_terminal_unless_quiet(release, tmp_path, one_crop, monkeypatch):
    monkeypatch.setattr(export_cli, "_stderr_is_a_terminal", lambda: True)
    shown = calibrate(release, tmp_path / "bar.safetensors")
    assert "calibrating: 100%" in shown.stderr and "crop" in shown.stderr
    quiet = calibrate(release, tmp_path / "quiet.safetensors", "-q")
    assert "calibrating:" not in quiet.stderr and "%|" not in quiet.stderr
    assert [line.split(" in ")[0] for line in quiet.stderr.splitlines()] == \
        [line.split(" in ")[0] for line in shown.stderr.splitlines() if line and "calibrating:" not in line]


def test_onnx_export_logs_nothing_about_torchvision(release, tmp_path):
    # torch's own handler writes to the stderr it found at import, which no capture here sees:
    # what matters is that no record about torchvision reaches a handler at all.
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    logger.addHandler(handler)
    try:
        result = CliRunner().invoke(main, ["onnx", "--model", str(release), "-o", str(tmp_path / "m.onnx"),
                                           "--no-verify"])
    finally:
        logger.removeHandler(handler)
    assert result.exit_code == 0, result.output
    assert not [r.getMessage() for r in records if "torchvision" in r.getMessage()]
    assert result.stderr == "" and result.stdout.splitlines()[0].startswith("wrote ")
