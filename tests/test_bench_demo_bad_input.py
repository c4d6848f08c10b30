"""Bad input to restore-bench and restore-demo: one `error:` line before any slow work, and
nothing of the user's replaced or half-written (hostile-input sweep 2, #2, #4, #6, #10, #12, #13, #15)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.cli import main as bench
from restore_demo.cli import MARKER
from restore_demo.cli import main as demo

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
QUICK = ["--backends", "eager", "--sizes", "16", "--batch-sizes", "1", "--min-runs", "1", "--min-seconds", "0",
         "--warmup", "0", "--heldout-per-photo", "0", "--quiet"]


def _empty_refused(result, option):
    # an empty name is a usage error, said by click before the command runs (restore_toolkit.console.NamedPath)
    assert result.exit_code == 2 and f"{option}': empty; name" in result.output, result.output


def _one_error(result, *needles):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], result.output


@pytest.fixture
def no_run(monkeypatch):
    """restore-bench's run, failing the test if a refusal let it start."""

    def run(*args, **kwargs):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr("benchmarks.runner.run_benchmark", run)


@pytest.fixture
def fake_run(monkeypatch):
    """restore-bench's run replaced by a stored report (the checks around it are under test)."""
    import json

    report = json.loads((RESULTS / "cpu-256.json").read_text())
    monkeypatch.setattr("benchmarks.runner.run_benchmark", lambda settings, log=None: dict(report))
    return report


# ---------------------------------------------------------------------------------------------
# restore-bench --report / --markdown (#2, #6, #13).


def test_bench_refuses_to_replace_a_user_file_or_its_own_other_report(tmp_path, no_run):
    keep = tmp_path / "keep.json"
    keep.write_text('{"mine": 1}')
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    _one_error(CliRunner().invoke(bench, ["--report", str(keep)]), "--report", "keep.json", "--overwrite")
    _one_error(CliRunner().invoke(bench, ["--markdown", str(notes)]), "--markdown", "notes.md", "--overwrite")
    same = tmp_path / "same.json"
    _one_error(CliRunner().invoke(bench, ["--report", str(same), "--markdown", str(same), "--overwrite"]),
               "another output")
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights")
    _one_error(CliRunner().invoke(bench, ["--model", str(model), "--report", str(model), "--overwrite"]),
               "an input")
    assert keep.read_text() == '{"mine": 1}' and notes.read_text() == "# my notes\n"
    assert model.read_bytes() == b"weights" and not same.exists()


def test_bench_replaces_an_earlier_report_and_a_user_file_with_overwrite(tmp_path, fake_run):
    old_json, old_md = tmp_path / "r.json", tmp_path / "r.md"
    shutil.copy(RESULTS / "cpu-256.json", old_json)
    shutil.copy(RESULTS / "cpu-256.md", old_md)
    old_json.write_text(old_json.read_text().replace('"schema"', '"old":1,"schema"', 1))
    result = CliRunner().invoke(bench, ["--report", str(old_json), "--markdown", str(old_md), "--json"])
    assert result.exit_code == 0, result.output
    assert '"old"' not in old_json.read_text() and old_md.read_text().startswith("## Benchmark")
    user = tmp_path / "user.json"
    user.write_text("{}")
    result = CliRunner().invoke(bench, ["--report", str(user), "--overwrite", "--json"])
    assert result.exit_code == 0, result.output
    assert '"schema"' in user.read_text()


def test_bench_unwritable_report_is_refused_before_the_run(tmp_path, monkeypatch, no_run):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)  # as a locked folder answers a non-root user
    _one_error(CliRunner().invoke(bench, ["--report", str(tmp_path / "ro" / "r.json")]),
               "--report", "r.json", "cannot write there")


def test_bench_empty_report_path_and_empty_backends_are_refused(no_run):
    _empty_refused(CliRunner().invoke(bench, ["--report", ""]), "--report")
    _empty_refused(CliRunner().invoke(bench, ["--markdown", " "]), "--markdown")
    result = CliRunner().invoke(bench, ["--backends", ""])
    assert result.exit_code == 2 and "no backend named" in result.output


# ---------------------------------------------------------------------------------------------
# restore-bench numbers (#10, #17) and --int8-onnx (#12).


def test_bench_refuses_inputs_larger_than_memory_before_any_backend(monkeypatch):
    monkeypatch.setattr("restore_toolkit.room.machine_room", lambda: (2 * 10**9, "test"))
    monkeypatch.setattr("benchmarks.runner.load_subject", lambda s: pytest.fail("the model was built"))
    _one_error(CliRunner().invoke(bench, ["--backends", "eager", "--sizes", "60000", "--batch-sizes", "1"]),
               "--sizes", "60000x60000", "memory available")
    _one_error(CliRunner().invoke(bench, ["--backends", "eager", "--sizes", "256", "--batch-sizes", "100000000"]),
               "--batch-sizes", "100000000")
    result = CliRunner().invoke(bench, ["--min-seconds", "nan"])
    assert result.exit_code == 2 and "finite" in result.output
    result = CliRunner().invoke(bench, ["--min-seconds", "inf"])
    assert result.exit_code == 2 and "finite" in result.output


def test_bench_refuses_an_int8_onnx_that_is_not_int8(tiny_onnx, tmp_path):
    result = CliRunner().invoke(bench, QUICK[2:] + ["--backends", "ort-cpu-int8", "--int8-onnx", str(tiny_onnx)])
    _one_error(result, "--int8-onnx", str(tiny_onnx), "'fp32'", "not int8")


# ---------------------------------------------------------------------------------------------
# restore-demo -o (#4, #6, #13).

DEMO = ["--samples", "1", "--sample-size", "32", "--device", "cpu"]


def test_demo_refuses_a_folder_of_user_files_and_reruns_its_own(tmp_path):
    mine = tmp_path / "myphotos"
    (mine / "samples").mkdir(parents=True)
    (mine / "samples" / "00_chelsea.png").write_bytes(b"my photo")
    (mine / "contact_sheet.png").write_bytes(b"my sheet")
    _one_error(CliRunner().invoke(demo, DEMO + ["-o", str(mine)]), "--output", "already holds",
               "contact_sheet.png", "samples", "--overwrite")
    assert (mine / "samples" / "00_chelsea.png").read_bytes() == b"my photo"
    assert (mine / "contact_sheet.png").read_bytes() == b"my sheet"
    assert sorted(p.name for p in mine.iterdir()) == ["contact_sheet.png", "samples"]

    out = tmp_path / "demo"
    first = CliRunner().invoke(demo, DEMO + ["-o", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / MARKER).is_file()
    again = CliRunner().invoke(demo, DEMO + ["-o", str(out)])  # an earlier demo's folder: rerun freely
    assert again.exit_code == 0, again.output

    forced = CliRunner().invoke(demo, DEMO + ["-o", str(mine), "--overwrite"])
    assert forced.exit_code == 0, forced.output
    assert (mine / "contact_sheet.png").read_bytes() != b"my sheet"


def test_demo_unwritable_or_empty_output_is_one_line(tmp_path, monkeypatch):
    _empty_refused(CliRunner().invoke(demo, DEMO + ["-o", ""]), "--output")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)
    _one_error(CliRunner().invoke(demo, DEMO + ["-o", str(tmp_path / "ro" / "d")]), "--output", "cannot write there")
    assert not (tmp_path / "ro" / "d" / "samples").exists()


# ---------------------------------------------------------------------------------------------
# restore-demo checks its inputs first (#15).

TRAIN = ["--train", "--max-steps", "2", "--batch-size", "2", "--no-verify", "--base-channels", "4"]


def test_demo_checks_model_and_training_options_before_writing(tmp_path, tiny_release):
    text = tmp_path / "text.onnx"
    text.write_text("not a graph")
    png_ckpt = tmp_path / "png_as.ckpt"
    png_ckpt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    cases = [
        (["--model", str(text)], ["text.onnx", "not a readable ONNX"]),
        (["--model", str(tmp_path / "missing.onnx")], ["missing.onnx", "no such file"]),
        (["--model", str(tiny_release)], ["needs an ONNX model"]),
        (TRAIN + ["--model", str(notes)], ["notes.txt", "not a model file"]),
        (TRAIN + ["--model", str(png_ckpt)], ["--model", "png_as.ckpt"]),
        (TRAIN + ["--depth", "2", "--size", "16", "--lr", "nan"], ["--lr nan", "finite"]),
        (TRAIN + ["--depth", "2", "--size", "16", "--lr", "-1"], ["--lr -1"]),
        (TRAIN + ["--depth", "4", "--size", "24"], ["--size 24", "stride 16"]),
        (TRAIN + ["--depth", "30", "--size", "16"], ["--size 16", "data.size"]),
    ]
    for k, (args, needles) in enumerate(cases):
        out = tmp_path / f"d{k}"
        _one_error(CliRunner().invoke(demo, DEMO + args + ["-o", str(out)]), *needles)
        assert not out.exists(), args
