"""`restore-demo`: the shipped model with no PyTorch, and the --train path at a very reduced scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from PIL import Image

from restore_demo.cli import main


def _check_outputs(out, count, side):
    assert Image.open(out / "contact_sheet.png").height > count * side  # one row per sample
    report = json.loads((out / "restored" / "restore-report.json").read_text())
    assert [r["status"] for r in report["records"]] == ["ok"] * count
    for rec in report["records"]:
        before = np.asarray(Image.open(out / "samples" / rec["input"]))
        after = np.asarray(Image.open(rec["output"]))
        mask = np.asarray(Image.open(rec["mask"])) > 0
        assert after.shape == before.shape == (side, side, 3)
        assert np.array_equal(after[~mask], before[~mask])


def test_demo_restores_with_the_default_model_without_torch(tmp_path):
    # A `torch` package that refuses to import, first on the path of the demo and of the
    # restore-run it starts: the default demo must not need PyTorch anywhere.
    blocker = tmp_path / "block"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked for this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.getcwd()])}
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'restore-demo'; "
                           "from restore_demo.cli import main; main()", "--out", str(out), "--samples", "2",
                           "--sample-size", "64", "--device", "cpu"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[3/3]" in proc.stdout and "$ restore-run" in proc.stdout and "$ restore-train" not in proc.stdout
    assert "default model" in proc.stdout
    _check_outputs(out, 2, 64)


def test_demo_train_runs_every_stage_and_resumes_an_unfinished_training(tmp_path):
    out = tmp_path / "demo"
    args = ["--train", "-o", str(out), "--max-steps", "2", "--size", "16", "--batch-size", "2", "--base-channels", "4",
            "--depth", "2", "--samples", "2", "--sample-size", "40", "--device", "cpu", "--no-verify"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for k in range(1, 6):
        assert f"[{k}/5]" in result.output
    assert "toy" in result.output
    assert "$ restore-train" in result.output and "$ restore-run" in result.output
    _check_outputs(out, 2, 40)
    assert (out / "model.onnx").exists() and (out / "train" / "summary.json").exists()
    times = json.loads((out / "demo_times.json").read_text())
    assert set(times["stages"]) == {"samples", "train", "export", "restore", "sheet"}

    # A finished model is reused: nothing is trained or exported anew.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "$ restore-train" not in again.output and "using" in again.output and "kept" in again.output

    # An interrupted training (checkpoints, no summary) is resumed, never taken as finished.
    (out / "train" / "summary.json").unlink()
    third = CliRunner().invoke(main, args)
    assert third.exit_code == 0, third.output
    assert "unfinished training" in third.output and "--resume" in third.output
    assert (out / "train" / "summary.json").exists()

    # --retrain trains the demo's own run again (restore-train refuses a run's folder without --overwrite).
    fourth = CliRunner().invoke(main, [*args, "--retrain"])
    assert fourth.exit_code == 0, fourth.output
    assert "$ restore-train" in fourth.output and "--overwrite" in fourth.output


def test_demo_refuses_a_checkpoint_without_train(tmp_path, tiny_release):
    result = CliRunner().invoke(main, ["--out", str(tmp_path / "d"), "--model", str(tiny_release)])
    assert result.exit_code == 1
    assert "error: " in result.output and "needs an ONNX model" in result.output
