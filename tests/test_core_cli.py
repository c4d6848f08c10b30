"""restore-data, restore-train, restore-validate: help, success, one-line errors, exit codes."""

import json

import pytest
import torch
from click.testing import CliRunner

from restore_core.cli import data_cli, train_cli, validate_cli

TINY_ARGS = ["--set", "model.base_channels=4", "--set", "model.depth=2", "--set", "data.size=16",
             "--set", "data.epoch_samples=8", "--set", "data.val_count=2", "--batch-size", "4",
             "--set", "data.num_workers=0", "--device", "cpu", "-q", "--threads", "1"]


def _run(cmd, args):
    return CliRunner().invoke(cmd, args, catch_exceptions=False)


def _one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("cmd,args", [(data_cli, []), (data_cli, ["synth"]), (train_cli, []), (validate_cli, [])])
def test_help(cmd, args):
    result = _run(cmd, args + ["--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_synth_train_validate_end_to_end(tmp_path):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "out"
    r = _run(data_cli, ["synth", str(data), "--count", "8", "--size", "16", "--seed", "1", "--val-count", "2"])
    assert r.exit_code == 0, r.output
    assert "wrote 8 train and 2 val samples" in r.output
    r = _run(train_cli, ["--config", "configs/default.toml", "--data", str(data), "--epochs", "2", "--lr", "1e-3",
                         "-o", str(run), "--report", str(tmp_path / "s.json"), *TINY_ARGS])
    assert r.exit_code == 0, r.output
    assert "epoch 2/2" in r.output and "best:" in r.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["steps"] == 4 and summary["stopped"] == "epochs"
    for name in ("last.ckpt", "best.ckpt", "best.safetensors"):
        assert (run / name).is_file()
    r = _run(validate_cli, ["--model", str(run / "best.safetensors"), "--data", str(data),
                            "-o", str(out), "--threshold", "0.2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "mask IoU" in r.output
    assert json.loads((out / "metrics.json").read_text())["threshold"] == 0.2
    assert len(list((out / "binary_masks").iterdir())) == 2


def test_train_without_data_and_resume_from_checkpoint_config(tmp_path):
    run = tmp_path / "run"
    r = _run(train_cli, ["-o", str(run), "--epochs", "2", "--max-steps", "1", *TINY_ARGS])
    assert r.exit_code == 0, r.output
    assert "on-the-fly synthesis" in r.output and "stopped (max_steps) after 1 steps" in r.output
    # Resume with nothing but the checkpoint: its config (tiny model, save dir) is reused.
    r = _run(train_cli, ["--resume", str(run / "last.ckpt"), "--max-steps", "3", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "resumed from" in r.output and "after 3 steps" in r.output


def test_user_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch = 3\n")
    _one_line_error(_run(train_cli, ["--config", str(bad)]), "bad.toml", "train.batch")
    _one_line_error(_run(train_cli, ["--data", str(tmp_path / "nothing"), *TINY_ARGS]), "nothing", "does not exist")
    _one_line_error(_run(data_cli, ["synth", str(tmp_path / "d"), "--count", "2", "--size", "16",
                                    "--source", str(tmp_path / "nosrc")]), "nosrc")
    _one_line_error(_run(train_cli, ["--set", "data.size=18", *TINY_ARGS[:4]]), "data.size")  # stride 4

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"format": "restore-checkpoint", "format_version": 1, "x": Evil()}, evil)
    data = tmp_path / "data"
    assert _run(data_cli, ["synth", str(data), "--count", "2", "--size", "16"]).exit_code == 0
    _one_line_error(_run(validate_cli, ["--model", str(evil), "--data", str(data), "-o",
                                        str(tmp_path / "o")]), "evil.ckpt", "refused")
    assert not (tmp_path / "o").exists()
    _one_line_error(_run(train_cli, ["--resume", str(evil)]), "evil.ckpt", "refused")
    if not torch.cuda.is_available():
        _one_line_error(_run(train_cli, ["--device", "cuda", *TINY_ARGS[:4]]), "CUDA")


def test_usage_errors_exit_2(tmp_path):
    assert _run(data_cli, ["synth", str(tmp_path)]).exit_code == 2  # --count missing
    assert _run(validate_cli, ["--model", "x"]).exit_code == 2
    assert _run(train_cli, ["--device", "tpu"]).exit_code == 2
