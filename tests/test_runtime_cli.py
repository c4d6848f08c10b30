"""`restore-run` exit codes and messages, and the promise that the runtime never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.cli import main
from runtime.session import provider_problem

ROOT = Path(__file__).resolve().parents[1]


def _folder(path: Path, bad: bool = False) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path / "a.png")
    Image.fromarray(rng.integers(0, 256, (17, 13), dtype=np.uint8)).save(path / "b.jpg")
    if bad:
        (path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return path


def _run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_all_good_exits_0_with_summary_and_report(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--save-mask", "--quiet")
    assert code == 0, out
    assert "2 restored, 0 skipped" in out and "images/s end to end" in out and "inference only" in out
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "masks" / "b.jpg.png").exists()
    report = json.loads((tmp_path / "out" / "restore-report.json").read_text())
    assert {r["status"] for r in report["records"]} == {"ok"}
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--save-mask", "--quiet")
    assert code == 0 and "0 restored, 2 skipped" in out


def test_a_failed_input_exits_3_after_the_rest(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in", bad=True)
    report = tmp_path / "elsewhere" / "r.json"
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--report", report,
                     "--format", "webp", "--quiet")
    assert code == 3, out
    assert "FAILED broken.png:" in out and "2 restored" in out
    assert (tmp_path / "out" / "a.webp").exists() and (tmp_path / "out" / "b.webp").exists()
    records = json.loads(report.read_text())["records"]
    assert [r["status"] for r in records] == ["ok", "ok", "failed"]  # a.png, b.jpg, broken.png sorted


def test_model_that_is_not_ours_exits_1_with_one_line(tmp_path):
    src = _folder(tmp_path / "in")
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"garbage")
    code, out = _run("--model", fake, src, tmp_path / "out")
    assert code == 1
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and "model.onnx" in lines[0] and "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_missing_input_and_output_equal_input_exit_1(tiny_onnx, tmp_path):
    code, out = _run("--model", tiny_onnx, tmp_path / "nope", tmp_path / "out", "--device", "cpu", "--quiet")
    assert code == 1 and "no such file or folder" in out
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, src, "--device", "cpu", "--quiet")
    assert code == 1 and "would overwrite the input" in out


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_report_on_an_input_or_a_users_file_is_refused_and_nothing_is_lost(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    before = _sha(src / "a.png")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--report", src / "a.png", "--quiet")
    assert code == 1 and "would overwrite an input" in out and _sha(src / "a.png") == before
    assert not (tmp_path / "out").exists()
    # OUTPUT is INPUT: a file of the user's where the report goes is not a report, so not replaced.
    (src / "restore-report.json").write_text("my notes\n")
    code, out = _run("--model", tiny_onnx, src, src, "--format", "webp", "--device", "cpu", "--quiet")
    assert code == 1 and "not a report of this tool" in out and (src / "restore-report.json").read_text() == "my notes\n"
    assert out.strip().count("\n") == 0 and not (src / "a.webp").exists()
    # An earlier run's report is replaced, as a rerun does; --overwrite replaces the user's file.
    code, out = _run("--model", tiny_onnx, src, src, "--format", "webp", "--device", "cpu", "--overwrite", "--quiet")
    assert code == 0, out
    assert json.loads((src / "restore-report.json").read_text())["report_version"]
    code, out = _run("--model", tiny_onnx, src, src, "--format", "webp", "--device", "cpu", "--quiet")
    assert code == 0 and "0 restored, 2 skipped" in out


def test_a_named_output_file_must_be_a_format_written_and_agree_with_format(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src / "a.png", tmp_path / "o" / "out.jpg", "--format", "webp", "--device", "cpu")
    assert code == 1 and "names a JPEG file but --format asks for WEBP; name it out.webp" in out
    code, out = _run("--model", tiny_onnx, src / "a.png", tmp_path / "o" / "out.gif", "--device", "cpu")
    assert code == 1 and "out.gif: GIF is read but not written; name a .png, .jpg, .webp, .bmp or .tif file" in out
    assert not (tmp_path / "o").exists()
    code, out = _run("--model", tiny_onnx, src / "a.png", tmp_path / "o" / "out.webp", "--format", "webp", "--device", "cpu")
    assert code == 0 and Image.open(tmp_path / "o" / "out.webp").format == "WEBP"


def test_more_threads_than_cpus_are_lowered_to_the_cpus_with_a_note(tiny_onnx, tmp_path):
    from runtime.session import available_cpus

    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--threads", 10_000, "--quiet")
    usable = available_cpus()
    assert code == 0, out
    assert f"note: --threads 10000 lowered to {usable}, the CPUs this process may use" in out
    assert f", {usable} threads" in out and "2 restored" in out


def test_pillows_warnings_on_reading_a_file_are_one_line_naming_it(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    rgb = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    # An EXIF block whose one IFD lies past its end: Pillow warns "Corrupt EXIF data" as it reads it.
    for name in ("c.jpg", "d.jpg"):
        Image.fromarray(rgb).save(src / name, exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff", quality=90)
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--quiet")
    assert code == 0, out
    assert "UserWarning" not in out and "TiffImagePlugin" not in out
    warned = [line for line in out.splitlines() if line.startswith("WARNED")]
    assert [line.split(":")[0] for line in warned] == ["WARNED c.jpg", "WARNED d.jpg"]  # each file, every time
    assert all("Corrupt EXIF data" in line for line in warned)
    records = {r["input"]: r for r in json.loads((tmp_path / "out" / "restore-report.json").read_text())["records"]}
    assert any(n.startswith("read with a warning: Corrupt EXIF data") for n in records["c.jpg"]["notes"])
    assert not any(n.startswith("read with a warning") for n in records["a.png"]["notes"])


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tiny_onnx, tmp_path, monkeypatch):
    import os

    import runtime.plan

    src = _folder(tmp_path / "in")
    locked = tmp_path / "locked"
    locked.mkdir()
    # A folder this user may not write to (root may write anywhere, so the check is asked of it).
    real_access = os.access
    monkeypatch.setattr(runtime.plan.os, "access",
                        lambda path, mode: not (Path(path) == locked and mode & os.W_OK) and real_access(path, mode))
    code, out = _run("--model", tiny_onnx, src, locked, "--device", "cpu")
    assert code == 1 and out.strip() == f"error: OUTPUT {locked} is not writable", out
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(provider_problem("cuda") is None, reason="ORT can use a GPU here")
def test_cuda_unusable_exits_1_saying_what_is_missing(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cuda")
    assert code == 1
    assert out.strip().count("\n") == 0 and "CUDA" in out and ("driver" in out or "missing" in out or "onnxruntime" in out)


def test_empty_and_non_numbers_are_refused_naming_the_option(tiny_onnx, tmp_path):
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "o", "--device", "cpu", "--report", "")
    assert code == 2 and "Invalid value for '--report': empty; name a file" in out
    code, out = _run("--model", "", src, tmp_path / "o")
    assert code == 2 and "Invalid value for '--model': empty; name an ONNX file or 'default'" in out
    code, out = _run("--model", tiny_onnx, src, tmp_path / "o", "--engine", "ray", "--gpus-per-actor", "nan")
    assert code == 2 and "Invalid value for '--gpus-per-actor': nan is not a finite number" in out
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(tiny_onnx, tmp_path):
    assert _run("--model", tiny_onnx, tmp_path, tmp_path / "o", "--batch-size", "0")[0] == 2
    assert _run("--model", tiny_onnx, tmp_path, tmp_path / "o", "--device", "gpu")[0] == 2
    assert _run("--model", tiny_onnx, tmp_path, tmp_path / "o", "--device", "cpu", "--provider", "tensorrt")[0] == 2
    code, out = _run("--help")
    assert code == 0 and "--save-mask" in out and "--max-pixels" in out and "--tile" in out


def test_runtime_never_imports_torch(tiny_onnx, tmp_path):
    """The inference path must run where PyTorch is not installed: import and restore, then look."""
    src = _folder(tmp_path / "in")
    code = f"""
import sys
import runtime, runtime.cli, runtime.batch, runtime.session, runtime.images, runtime.tiling
import runtime.restorer, runtime.report, restore_toolkit.fileio, runtime.metadata
from runtime import Restorer
r = Restorer({str(tiny_onnx)!r}, device='cpu')
res = r.restore_folder({str(src)!r}, {str(tmp_path / 'out')!r}, progress=False)
assert res.summary.ok == 2, res.lines
bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'restore_core', 'export')))
assert not bad, bad
print('clean')
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "clean" in proc.stdout, proc.stderr[-2000:]
    # The console script itself, as users call it.
    proc = subprocess.run([sys.executable, "-m", "runtime.cli", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "INPUT" in proc.stdout


def test_a_tile_below_twice_the_halo_is_raised_with_a_note(tiny_onnx, tmp_path):
    from runtime.restorer import Restorer
    from runtime.tiling import least_tile

    tiny = Restorer(tiny_onnx, device="cpu")
    least = least_tile(tiny.halo, tiny.stride)
    src = _folder(tmp_path / "in")
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out", "--device", "cpu", "--tile", 1, "--quiet")
    assert code == 0, out
    assert f"note: --tile 1 raised to {least}, twice this model's halo of {tiny.halo}" in out
    code, out = _run("--model", tiny_onnx, src, tmp_path / "out2", "--device", "cpu", "--tile", least, "--quiet")
    assert code == 0 and "raised" not in out
    shipped = Restorer(device="cpu")  # the figure --help gives
    assert f"({least_tile(shipped.halo, shipped.stride)} for the default model)" in " ".join(
        CliRunner().invoke(main, ["--help"]).output.split())
