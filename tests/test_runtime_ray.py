"""`restore-run --engine ray`: the local runner's outputs and report from Ray Data, and a killed worker.

One local Ray (3 logical CPUs: two 1-CPU inference actors and the decoding tasks) serves the
module. Without Ray the tests that need it skip, naming the install command.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.batch import PlanError, RunOptions, run_folder
from runtime.cli import main
from runtime.restorer import Restorer
from runtime.session import provider_problem

ROOT = Path(__file__).resolve().parents[1]
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed: pip install -e '.[ray]'")
HAVE_CUDA_HERE = provider_problem("cuda") is None
pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

# Timings and where the files went differ between engines; everything else must not.
VARYING = {"seconds", "read_seconds", "infer_seconds", "write_seconds", "output", "mask", "predicted"}
TILE_BUDGET = 3_000  # 'big.png' (60x70) takes the tiling path


def _rgb(rng, h, w, c=3):
    return rng.integers(0, 256, (h, w, c), dtype=np.uint8)


def _mixed_folder(root: Path) -> Path:
    """Sizes, modes, formats, a sub-folder, a tiled image and a bad file."""
    rng = np.random.default_rng(5)
    (root / "sub").mkdir(parents=True)
    Image.fromarray(_rgb(rng, 24, 30)).save(root / "rgb.png")
    Image.fromarray(_rgb(rng, 24, 30)).save(root / "rgb2.png")
    Image.fromarray(_rgb(rng, 20, 22, 4), "RGBA").save(root / "rgba.png")
    Image.fromarray(_rgb(rng, 17, 13)[..., 0]).save(root / "sub" / "grey.png")
    Image.fromarray(rng.integers(0, 65536, (15, 19)).astype(np.uint16)).save(root / "sub" / "deep16.png")
    Image.fromarray(_rgb(rng, 16, 16)).quantize(8).save(root / "sub" / "pal.png", transparency=2)
    Image.fromarray(_rgb(rng, 18, 26)).save(root / "photo.jpg", quality=90)
    Image.fromarray(_rgb(rng, 60, 70)).save(root / "big.png")
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def _files(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "restore-report.json"}


def _content(report: dict) -> dict:
    records = [{k: v for k, v in r.items() if k not in VARYING} for r in report["records"]]
    s = report["summary"]
    counts = {k: s[k] for k in ("model", "providers", "batch_size", "input", "total", "ok", "skipped", "failed",
                                "pixels", "lossy", "note")}
    return {"version": report["report_version"], "summary": counts, "records": records}


@pytest.fixture(scope="module")
def ray_cluster():
    if not HAVE_RAY:
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    import ray

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@needs_ray
def test_mixed_folder_matches_the_local_runner_byte_for_byte(ray_cluster, tiny_onnx, tmp_path):
    from runtime.ray_engine import RayOptions, run_folder_ray

    src = _mixed_folder(tmp_path / "in")
    opts = dict(batch_size=2, save_mask=True, save_predicted=True, tile_budget=TILE_BUDGET, progress=False)
    local = run_folder(Restorer(tiny_onnx, device="cpu"), src, tmp_path / "local", RunOptions(**opts))
    ray = run_folder_ray(tiny_onnx, src, tmp_path / "ray", RunOptions(**opts), RayOptions(actors=2, device="cpu"))

    assert ray.exit_code == local.exit_code == 3  # the broken file fails alone, in both
    assert ray.summary.ok == 8 and ray.summary.failed == 1
    assert any(r.tiles > 1 for r in ray.records)
    local_files, ray_files = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert len(local_files) == 3 * 8 and sorted(ray_files) == sorted(local_files)
    assert [n for n in local_files if ray_files[n] != local_files[n]] == []
    local_report = json.loads((tmp_path / "local" / "restore-report.json").read_text())
    ray_report = json.loads((tmp_path / "ray" / "restore-report.json").read_text())
    assert _content(ray_report) == _content(local_report)
    assert [r["output"] for r in ray_report["records"]] == [str(tmp_path / "ray" / Path(r["output"]).relative_to(
        tmp_path / "local")) for r in local_report["records"]]
    assert ray_report["summary"]["images_per_second"] > 0 and ray_report["summary"]["inference_seconds"] > 0
    assert any("FAILED sub/broken.png:" in line for line in ray.lines)
    assert any(line.startswith("engine: ray, 2 actor(s)") for line in ray.lines)
    assert not list((tmp_path / "ray").rglob("*.tmp"))


@needs_ray
def test_input_uri_read_through_pyarrow_gives_the_same_outputs(ray_cluster, tiny_onnx, tmp_path):
    """INPUT as a URI (file:// here; s3://, gs://... the same way): read by the Ray tasks through pyarrow."""
    from runtime.ray_engine import RayOptions, run_folder_ray
    from runtime.ray_inputs import plan_uri

    src = _mixed_folder(tmp_path / "in")
    (src / "sub" / "deeper").mkdir()
    Image.fromarray(np.zeros((9, 7, 3), np.uint8)).save(src / "sub" / "deeper" / "z.png")
    Image.fromarray(np.zeros((9, 7, 3), np.uint8)).save(src / "sub" / "a.png")
    opts = dict(batch_size=2, save_mask=True, tile_budget=TILE_BUDGET, progress=False)
    uri = src.as_uri()
    jobs, _, _ = plan_uri(uri, tmp_path / "planned", RunOptions(**opts))
    local = run_folder(Restorer(tiny_onnx, device="cpu"), src, tmp_path / "local", RunOptions(**opts))
    assert [j.record.input for j in jobs] == [r.input for r in local.records]  # the same jobs, same order
    ray = run_folder_ray(tiny_onnx, uri, tmp_path / "ray", RunOptions(**opts), RayOptions(actors=2, device="cpu"))
    assert ray.exit_code == local.exit_code == 3 and ray.summary.ok == local.summary.ok == 10
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    ray_report = json.loads((tmp_path / "ray" / "restore-report.json").read_text())
    local_report = json.loads((tmp_path / "local" / "restore-report.json").read_text())
    assert ray_report["summary"]["input"] == uri
    ray_report["summary"]["input"] = local_report["summary"]["input"]
    assert _content(ray_report) == _content(local_report)
    with pytest.raises(PlanError, match="no such file or folder"):
        plan_uri(uri + "/nope", tmp_path / "x", RunOptions())


def _actor_pids() -> list:
    """Processes of Ray Data's inference actors (their title names the callable class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"_RestoreActor" in cmdline and b"ray::" in cmdline:
                pids.append(int(entry.name))
    return pids


@needs_ray
@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/proc/self/cmdline").exists(),
                    reason="holds the run open with a FIFO and finds the actor through /proc")
def test_a_worker_killed_midway_loses_no_output_and_a_rerun_completes(ray_cluster, tiny_onnx, tmp_path):
    from runtime.ray_engine import RayOptions, run_folder_ray

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(9)
    n = 24
    for i in range(n):
        Image.fromarray(_rgb(rng, 64, 64 + i % 3)).save(src / f"{i:02d}.png")  # three sizes
    # The last input is large (2.4 Mpx against 4 kpx), so the run is still going when the first output
    # appears and an actor is killed. (A FIFO used to hold the run; FIFOs are refused unopened now.)
    Image.fromarray(_rgb(rng, 1536, 1536)).save(src / "zz.png", compress_level=1)
    out = tmp_path / "out"
    opts = dict(batch_size=1, progress=False)
    first: dict = {}
    runner = threading.Thread(target=lambda: first.setdefault(
        "result", run_folder_ray(tiny_onnx, src, out, RunOptions(**opts), RayOptions(actors=2, device="cpu"))))
    runner.start()
    deadline, killed = time.monotonic() + 120, None
    while time.monotonic() < deadline and runner.is_alive() and killed is None:
        pids = _actor_pids()
        done = list(out.glob("*.png"))
        if done and pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, "no output or no actor process within two minutes"
    assert len(done) < n + 1  # killed midway
    runner.join(180)
    assert not runner.is_alive()
    result = first["result"]
    # Whatever the run reports as restored is on disk, whole. Ray restarts the actor and retries
    # its batch, so the run usually completes; if it gave up, the rest fails with a reason.
    for rec in result.records:
        if rec.status == "ok":
            Image.open(rec.output).load()
        else:
            assert "rerun to finish the rest" in rec.error, rec.error

    rerun = run_folder_ray(tiny_onnx, src, out, RunOptions(**opts), RayOptions(actors=2, device="cpu"))
    assert rerun.exit_code == 0 and rerun.summary.ok + rerun.summary.skipped == n + 1
    reference = run_folder(Restorer(tiny_onnx, device="cpu"), src, tmp_path / "local", RunOptions(**opts))
    assert reference.summary.ok == n + 1
    assert _files(out) == _files(tmp_path / "local")  # every output valid: identical to a clean local run
    assert not list(out.rglob("*.tmp"))


@needs_ray
def test_when_ray_gives_up_the_rest_fails_with_a_reason_and_a_rerun_completes(ray_cluster, tiny_onnx, tmp_path,
                                                                              monkeypatch):
    """A job Ray cannot finish (a node lost for good): done stays done, the rest fails, exit 3."""
    from runtime.ray_engine import RayOptions, run_folder_ray

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(4)
    for i in range(6):
        Image.fromarray(_rgb(rng, 16, 20)).save(src / f"{i}.png")
    real = ray_cluster.data.Dataset.iter_rows

    def two_rows_then_lost(self, *args, **kwargs):
        for k, row in enumerate(real(self, *args, **kwargs)):
            if k == 2:
                raise ray_cluster.exceptions.ActorDiedError()
            yield row

    monkeypatch.setattr(ray_cluster.data.Dataset, "iter_rows", two_rows_then_lost)
    opts = dict(batch_size=1, progress=False)
    first = run_folder_ray(tiny_onnx, src, tmp_path / "out", RunOptions(**opts), RayOptions(actors=1, device="cpu"))
    assert first.exit_code == 3 and first.summary.failed >= 4, first.lines
    lost = [r for r in first.records if r.status == "failed"]
    assert all("the Ray job stopped (ActorDiedError" in r.error and "rerun to finish the rest" in r.error for r in lost)
    report = json.loads((tmp_path / "out" / "restore-report.json").read_text())
    assert [r["status"] for r in report["records"]] == [r.status for r in first.records]
    monkeypatch.undo()
    rerun = run_folder_ray(tiny_onnx, src, tmp_path / "out", RunOptions(**opts), RayOptions(actors=1, device="cpu"))
    # The actors may have written some of the unconfirmed ones (whole) before the driver lost them.
    assert rerun.exit_code == 0 and rerun.summary.ok <= len(lost) and rerun.summary.ok + rerun.summary.skipped == 6
    run_folder(Restorer(tiny_onnx, device="cpu"), src, tmp_path / "local", RunOptions(**opts))
    assert _files(tmp_path / "out") == _files(tmp_path / "local")


@needs_ray
def test_cli_engine_ray_resumes_and_keeps_the_exit_codes(ray_cluster, tiny_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(_rgb(rng, 20, 24)).save(src / "a.png")
    (src / "b.png").write_bytes(b"")
    args = ["--model", str(tiny_onnx), str(src), str(tmp_path / "out"), "--engine", "ray", "--actors", "1",
            "--device", "cpu", "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 3, first.output
    assert "1 restored, 0 skipped" in first.output and "FAILED b.png: empty file" in first.output
    (src / "b.png").unlink()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "0 restored, 1 skipped" in again.output, again.output


@needs_ray
def test_gpus_the_cluster_lacks_are_refused_in_one_line(ray_cluster, tiny_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a.png")
    result = CliRunner().invoke(main, ["--model", str(tiny_onnx), str(src), str(tmp_path / "out"), "--engine", "ray",
                                       "--gpus-per-actor", "1", "--quiet"])
    assert result.exit_code == 1 and "need GPUs; the Ray cluster has 0" in result.output, result.output
    assert not (tmp_path / "out").exists()


@needs_ray
def test_model_and_device_errors_exit_as_the_local_runner(ray_cluster, tiny_onnx, tmp_path):
    """Checked on a worker with an actor's resources, before any image: one line, nothing written."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a.png")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")

    def run(*args):
        result = CliRunner().invoke(main, [str(src), str(tmp_path / "out"), "--engine", "ray", "--quiet", *args])
        return result.exit_code, result.output

    code, out = run("--model", str(junk))
    assert code == 1 and f"error: {junk}: not a readable ONNX model" in out, out
    if not HAVE_CUDA_HERE:  # CUDA asked for where the actor cannot run it: an error, never a CPU run
        code, out = run("--model", str(tiny_onnx), "--device", "cuda", "--gpus-per-actor", "0")
        assert code == 1 and "CUDA" in out and out.strip().splitlines()[-1].startswith("error: "), out
    code, out = run("--model", str(tiny_onnx), "--device", "cpu", "--provider", "tensorrt")
    assert code == 2, out
    assert not (tmp_path / "out").exists()


def test_an_actor_keeps_the_fixed_default_budget(tiny_onnx, monkeypatch):
    # Several actors share a node: each may add DEFAULT_RUN_MEMORY unless --max-memory names a
    # figure, never half of what the node has free, as a local run may (runtime/memory.py).
    import types

    from runtime import memory
    from runtime.memory import DEFAULT_RUN_MEMORY, MB
    from runtime.ray_engine import RayOptions, _RestoreActor
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(get=lambda ref: ref))
    monkeypatch.setattr(memory, "machine_room", lambda: (22_000 * MB, "the machine's available memory"))
    actor = _RestoreActor([str(tiny_onnx)], RayOptions(device="cpu"), RunOptions(progress=False))
    plan = actor.restorer.plan_memory(actor.options.max_memory, None, actor.options.room_share)
    assert plan.capacity == DEFAULT_RUN_MEMORY  # a local run here would get 11,000 MB
    # The refusal names the default, not a --max-memory that was never given.
    assert plan.why == "the default of 1,200 MB per run (--max-memory sets another)"
    named = _RestoreActor([str(tiny_onnx)], RayOptions(device="cpu"), RunOptions(max_memory=500 * MB, progress=False))
    plan = named.restorer.plan_memory(named.options.max_memory, None, named.options.room_share)
    assert plan.capacity == 500 * MB and plan.why == "--max-memory 500 MB"


def test_ray_options_need_engine_ray(tiny_onnx, tmp_path):
    result = CliRunner().invoke(main, ["--model", str(tiny_onnx), str(tmp_path), str(tmp_path / "o"), "--actors", "2"])
    assert result.exit_code == 2 and "need --engine ray" in result.output
    result = CliRunner().invoke(main, ["--model", str(tiny_onnx), "s3://bucket/photos", str(tmp_path / "o")])
    assert result.exit_code == 2 and "needs --engine ray" in result.output


def test_without_ray_engine_ray_says_how_to_install(tiny_onnx, tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a.png")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    result = CliRunner().invoke(main, ["--model", str(tiny_onnx), str(src), str(tmp_path / "out"), "--engine", "ray"])
    assert result.exit_code == 1, result.output
    assert "pip install -e '.[ray]'" in result.output and result.output.strip().count("\n") == 1  # model line + error
    assert not (tmp_path / "out").exists()


def test_the_runtime_imports_ray_only_for_engine_ray():
    code = "import sys, runtime.cli, runtime.batch, runtime.ray_engine; assert 'ray' not in sys.modules; print('lazy')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "lazy" in proc.stdout, proc.stderr[-2000:]


@needs_ray
def test_rays_own_log_lines_only_with_verbose(tiny_onnx, tmp_path):
    """Ray's C++ core writes to file descriptor 2 itself; a command in a fresh process shows what
    really reaches the terminal: our model line alone, Ray's lines too only with --verbose."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a.png")

    def stderr_lines(out: str, *extra: str):
        proc = subprocess.run([sys.executable, "-m", "runtime.cli", "--model", str(tiny_onnx), str(src),
                               str(tmp_path / out), "--engine", "ray", "--device", "cpu", "--quiet", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=200)
        assert proc.returncode == 0 and "1 restored" in proc.stdout, proc.stderr[-2000:]
        return [line for line in proc.stderr.splitlines() if line.strip()]

    quiet = stderr_lines("quiet")
    assert len(quiet) == 1 and quiet[0].startswith("model "), quiet
    verbose = stderr_lines("verbose", "--verbose")
    assert len(verbose) > 1 and verbose[0].startswith("model "), verbose


def test_rays_python_warnings_are_hidden_with_its_native_lines():
    import warnings

    from runtime.ray_engine import native_lines_hidden

    shown = []
    before = warnings.showwarning
    warnings.showwarning = lambda message, *rest, **kw: shown.append(str(message))
    try:
        with native_lines_hidden(True):
            warnings.warn_explicit("actor pool advice", UserWarning, "pool.py", 1, module="ray.data.pool", registry={})
            warnings.warn_explicit("ours", UserWarning, "run.py", 1, module="runtime.batch", registry={})
        warnings.warn_explicit("after", UserWarning, "pool.py", 2, module="ray.data.pool", registry={})
    finally:
        warnings.showwarning = before
    assert shown == ["ours", "after"]
