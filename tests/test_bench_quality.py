"""restore-bench's quality columns, CPU instruction sets, bf16 skipped where emulated, and the
OpenVINO row. Reuses the run of tests/test_bench.py where it can."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from benchmarks.cli import main
from tests.conftest import CPU_BACKENDS  # noqa: F401 (bench_run, the shared run, is conftest's)

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
FAST = ["--sizes", "20", "--batch-sizes", "1", "--min-runs", "1", "--min-seconds", "0", "--warmup", "0"]


def test_every_ok_row_has_quality_and_the_reference_is_recorded(bench_run):  # noqa: F811
    out, result = bench_run
    report = json.loads((out / "r.json").read_text())
    ref = report["quality_reference"]
    assert ref["images"] == len(ref["sources"]) and 0 <= ref["mask_iou"] <= 1  # one crop per photo
    for row in report["rows"]:
        if row["status"] != "ok":
            continue
        q = row["quality"]
        assert q["status"] == "ok", row["backend"]
        assert set(q) >= {"mask_iou", "psnr_inside", "mask_iou_drop", "psnr_inside_drop", "within_bounds"}
        if row["backend"] == "eager":  # the reference itself
            assert q["mask_iou_drop"] == 0 and q["psnr_inside_drop"] == 0 and q["within_bounds"]
    md = (out / "r.md").read_text()
    assert "| mask IoU (Δ) | PSNR in mask dB (Δ) | quality |" in md and "held-out images" in md
    assert "CPU instruction sets: AVX2" in md
    isa = report["machine"]["cpu_isa"]
    assert set(isa) >= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "native_bf16", "vnni", "amx"}
    assert " IoU " in result.output and "PSNRm" in result.output


def test_int8_and_openvino_rows(bench_run):  # noqa: F811
    out, _ = bench_run
    rows = {r["backend"]: r for r in json.loads((out / "r.json").read_text())["rows"] if r["batch"] == 1}
    int8 = rows["ort-cpu-int8"]
    assert int8["status"] == "ok" and int8["parity"]["outside_mask_exact"] is True
    assert int8["quality"]["status"] == "ok"
    ov = rows["openvino"]
    if HAS_OPENVINO:
        assert ov["status"] == "ok", ov
        assert ov["parity"]["outside_mask_exact"] is True
        # fp32 inside: at most a mask pixel on the threshold flips (as for ort-cpu in test_bench).
        assert all(v.startswith("mask disagrees") for v in ov["parity"]["violations"])
        assert ov["quality"]["status"] == "ok"
    else:
        assert ov["status"] == "skipped" and "pip install openvino" in ov["reason"]


def test_bf16_rows_skip_where_emulated_unless_forced(tiny_release, tmp_path, monkeypatch):
    import restore_core.cpu as cpu

    monkeypatch.setattr(cpu, "native_bf16", lambda: False)
    args = ["--model", str(tiny_release), "--backends", "eager-bf16", "--heldout-per-photo", "0", *FAST,
            "--report", str(tmp_path / "a.json")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    assert row["status"] == "skipped" and "emulated" in row["reason"] and "--force-bf16" in row["reason"]
    r = CliRunner().invoke(main, args + ["--force-bf16"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "a.json").read_text())["rows"][0]["status"] == "ok"


def test_train_bf16_warns_where_emulated(monkeypatch):
    import restore_core.cpu as cpu
    from restore_core.cli import train_cli
    from tests.test_core_cli import TINY_ARGS

    monkeypatch.setattr(cpu, "native_bf16", lambda: False)
    assert "emulated" in cpu.bf16_emulated_reason()
    # data.size=18 is refused right after the options are read: the warning comes first.
    r = CliRunner().invoke(train_cli, ["--precision", "bf16", "--device", "cpu", "--set", "data.size=18", *TINY_ARGS[:4]])
    assert "warning: autocast bf16 is emulated" in r.output and "--precision fp32" in r.output
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)
    assert cpu.bf16_emulated_reason() is None
    r = CliRunner().invoke(train_cli, ["--precision", "bf16", "--device", "cpu", "--set", "data.size=18", *TINY_ARGS[:4]])
    assert "emulated" not in r.output


@pytest.mark.parametrize("flags,native", [({"avx2", "avx512f", "avx512_bf16"}, True), ({"avx2", "fma"}, False)])
def test_native_bf16_from_flags(monkeypatch, flags, native):
    import restore_core.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    assert cpu.native_bf16() is native
    assert cpu.instruction_sets()["native_bf16"] is native
    # The flags alone decide whether bf16 rows and restore-train --precision bf16 warn of emulation.
    assert (cpu.bf16_emulated_reason() is None) is native
