"""`restore-demo` end to end at a very reduced scale: every stage runs, the sheet and outputs exist."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from runtime.demo import main


def test_demo_runs_every_stage_and_writes_the_contact_sheet(tmp_path):
    out = tmp_path / "demo"
    args = ["--out", str(out), "--steps", "2", "--size", "16", "--batch-size", "2", "--base-channels", "4",
            "--depth", "2", "--samples", "2", "--sample-size", "40", "--device", "cpu", "--no-verify"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for k in range(1, 6):
        assert f"[{k}/5]" in result.output
    assert "$ restore-train" in result.output and "$ restore-run" in result.output

    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 4 * 40 and sheet.height > 2 * 40  # four columns, two rows
    report = json.loads((out / "restored" / "restore-report.json").read_text())
    assert [r["status"] for r in report["records"]] == ["ok", "ok"]
    for rec in report["records"]:
        before = np.asarray(Image.open(out / "samples" / rec["input"]))
        after = np.asarray(Image.open(rec["output"]))
        mask = np.asarray(Image.open(rec["mask"])) > 0
        assert after.shape == before.shape == (40, 40, 3)
        assert np.array_equal(after[~mask], before[~mask])
    assert (out / "model.onnx").exists() and (out / "train" / "best.ckpt").exists()
    times = json.loads((out / "demo_times.json").read_text())
    assert set(times["stages"]) == {"samples", "train", "export", "restore", "sheet"}

    # Run again: the trained model is found and reused, nothing is trained or exported anew.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "$ restore-train" not in again.output and "using" in again.output and "kept" in again.output
