"""The GPU proof kit without a GPU: pieces round-trip byte for byte, the install lands in a private
folder, every planned transfer fits the limit, step 3's comparison judges real pixels, and the
check run here stops cleanly at step 1 with "no CUDA device"."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.gpukit.check import COMMANDS, NO_CUDA_EXIT, REPORT_FILES
from benchmarks.gpukit.install import InstallError, install, stash
from benchmarks.gpukit.pack import pack
from benchmarks.gpukit.plan import PlanError, make_plan, tree_bytes

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20
PIECE = MiB // 2  # small pieces: several of them from a 2 MB archive


def _fake_wheels(folder: Path):
    """An onnxruntime-gpu-like wheel (a few MB of random 'libraries') and a pure-Python extra."""
    rng = np.random.default_rng(0)
    files = {
        "onnxruntime/__init__.py": b"__version__ = '1.31.1'\n",
        # Random bytes do not compress (and xz is slow on them): a compressible tail besides.
        "onnxruntime/capi/libonnxruntime_providers_cuda.so": rng.bytes(3 * MiB // 2) + bytes(MiB // 2),
        "onnxruntime/capi/onnxruntime_pybind11_state.cpython-312-x86_64-linux-gnu.so": rng.bytes(MiB // 4),
        "onnxruntime/capi/libonnxruntime.so.1.31.1": rng.bytes(MiB // 8),  # left out by DROP
        "onnxruntime/transformers/onnx_utils.py": b"def f():\n    return 1\n",
        "onnxruntime_gpu-1.31.1.dist-info/METADATA": b"Name: onnxruntime-gpu\nVersion: 1.31.1\n",
    }
    record = "".join(f"{name},sha256=x,{len(data)}\n" for name, data in files.items())
    files["onnxruntime_gpu-1.31.1.dist-info/RECORD"] = (record + "onnxruntime_gpu-1.31.1.dist-info/RECORD,,\n").encode()
    ort = folder / "onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(ort, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, (2025, 10, 23, 14, 18, 0))
            info.external_attr = (0o100755 if name.endswith((".so", ".1")) else 0o100644) << 16
            zf.writestr(info, data)
    png = folder / "pypng-0.20220715.0-py3-none-any.whl"
    with zipfile.ZipFile(png, "w") as zf:
        zf.writestr("png.py", "def from_array(*a):\n    pass\n")
        zf.writestr("pypng-0.20220715.0.dist-info/METADATA", "Name: pypng\n")
    return [ort, png], files


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A git checkout holding a few files, with the kit's ignored folder packed from fake wheels."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tmp_path = tmp_path_factory.mktemp("kit")
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitignore").write_text("/.gpukit/\n/ignored.bin\n")
    (root / "code.py").write_bytes(b"x" * 300_000)
    (root / "ignored.bin").write_bytes(b"y" * 5 * MiB)  # ignored: does not travel
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", ".gitignore", "code.py"], cwd=root, check=True)
    (root / "untracked.txt").write_bytes(b"z" * 1000)  # untracked, not ignored: travels
    wheels, files = _fake_wheels(tmp_path)
    manifest = pack(wheels, root / ".gpukit", max_piece=PIECE, preset=0)
    return root, manifest, files


@pytest.fixture
def kit(packed, tmp_path):
    """A copy of the packed checkout each test may change."""
    root, manifest, files = packed
    shutil.copytree(root, tmp_path / "repo", symlinks=True)
    return tmp_path / "repo", tmp_path / "repo" / ".gpukit", manifest, files


def test_pieces_round_trip_byte_exact_and_install_privately(kit, tmp_path):
    root, kit_dir, manifest, files = kit
    pieces = manifest["pieces"]
    assert len(pieces) == math.ceil(manifest["archive"]["bytes"] / PIECE) >= 3
    assert all(p["bytes"] <= PIECE for p in pieces) and sum(p["bytes"] for p in pieces) == manifest["archive"]["bytes"]
    joined = b"".join((kit_dir / p["folder"] / p["name"]).read_bytes() for p in pieces)
    assert hashlib.sha256(joined).hexdigest() == manifest["archive"]["sha256"]

    stash_dir = tmp_path / "stash"
    state = stash(kit_dir, stash_dir)
    assert state["missing"] == [] and len(state["have"]) == len(pieces)
    done = install(stash_dir)
    site = Path(done["site"])
    assert site == stash_dir / "site" and not done["reused"]
    for name, data in files.items():
        if name.endswith("RECORD"):
            continue
        if "libonnxruntime.so" in name:
            assert not (site / name).exists()  # left out
        else:
            assert (site / name).read_bytes() == data, name  # byte for byte
    record = (site / "onnxruntime_gpu-1.31.1.dist-info/RECORD").read_text()
    assert "libonnxruntime.so" not in record and "libonnxruntime_providers_cuda.so" in record
    assert (site / "png.py").exists()
    assert os.access(site / "onnxruntime/capi/libonnxruntime_providers_cuda.so", os.X_OK)
    assert manifest["archive"]["dropped"] == [{"path": "onnxruntime/capi/libonnxruntime.so.1.31.1", "bytes": MiB // 8,
                                               "why": manifest["archive"]["dropped"][0]["why"]}]
    # The private folder is importable ahead of everything else, and nothing else changed.
    out = subprocess.run([sys.executable, "-c", "import png, onnxruntime; print(onnxruntime.__file__)"],
                         env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == str(site / "onnxruntime" / "__init__.py")
    assert install(stash_dir)["reused"]


def test_pieces_staged_one_call_at_a_time(kit, tmp_path):
    """Each call's checkout holds one transfer folder; the stash gathers them across calls."""
    _, kit_dir, manifest, _ = kit
    stash_dir = tmp_path / "stash"
    for k, piece in enumerate(manifest["pieces"], 1):
        checkout = tmp_path / f"call{k}"
        shutil.copytree(kit_dir / piece["folder"], checkout / ".gpukit" / piece["folder"])
        state = stash(checkout / ".gpukit", stash_dir)
        assert state["have"] == [p["name"] for p in manifest["pieces"][:k]]
    partial = tmp_path / "partial"  # a machine replaced before the last call
    shutil.copytree(stash_dir, partial)
    (partial / manifest["pieces"][-1]["name"]).unlink()
    with pytest.raises(InstallError, match=f"pieces missing in {partial}: {manifest['pieces'][-1]['name']}"):
        install(partial)
    assert install(stash_dir)["files"] == manifest["archive"]["files"]


def test_damaged_pieces_are_refused(kit, tmp_path):
    _, kit_dir, manifest, _ = kit
    second = manifest["pieces"][1]
    path = kit_dir / second["folder"] / second["name"]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InstallError, match=second["name"]):
        stash(kit_dir, tmp_path / "stash")
    # Damaged after staging (same size): the archive's sha256 stops the unpacking.
    stash_dir = tmp_path / "stash2"
    path.write_bytes(bytes(data[:100]) + bytes([data[100] ^ 0xFF]) + bytes(data[101:]))  # repaired
    stash(kit_dir, stash_dir)
    staged = stash_dir / second["name"]
    staged.write_bytes(bytes(data))
    with pytest.raises(InstallError, match=f"nothing was unpacked; damaged and removed: {second['name']}$"):
        install(stash_dir)
    assert not (stash_dir / "site").exists() and not staged.exists()  # the next call stages it again
    assert stash(kit_dir, stash_dir)["missing"] == [] and install(stash_dir)["files"] == manifest["archive"]["files"]


def test_every_planned_transfer_fits_the_limit(kit):
    root, kit_dir, manifest, _ = kit
    tree, files = tree_bytes(root)
    assert (tree, files) == (len("/.gpukit/\n/ignored.bin\n") + 300_000 + 1000, 3)  # the ignored 5 MiB stays home
    limit = tree + PIECE + 64 * 1024  # one piece and its manifest copy fit
    plan = make_plan(root, kit_dir, manifest, limit=limit)
    calls = plan["calls"]
    assert [c["carry"] for c in calls] == [[f".gpukit/{p['folder']}"] for p in manifest["pieces"]]
    assert all(c["bytes"]["total"] <= limit and c["bytes"]["tree"] == tree for c in calls)
    assert all("install --from .gpukit" in c["command"] and "check" not in c["command"] for c in calls[:-1])
    assert calls[-1]["command"].endswith('check --out "$OUT"') and calls[-1]["timeout_s"] <= 600
    assert all(len(c["command"]) <= 2000 for c in calls)
    with pytest.raises(PlanError, match="call 1 would carry"):
        make_plan(root, kit_dir, manifest, limit=tree + PIECE // 2)


def test_the_real_checkout_leaves_room_for_pieces():
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    from benchmarks.gpukit.plan import LIMIT_BYTES, piece_budget

    tree, _ = tree_bytes(REPO)
    assert 8 * MiB <= piece_budget(tree) < LIMIT_BYTES - tree


def test_result_files_are_compact_json():
    """The result files travel with every GPU call, so they are written without indentation
    (`benchmarks.report.write_json`); an indented one would take a fifth more of the kit's room."""
    loose = [p.name for p in sorted((REPO / "benchmarks" / "results").glob("*.json"))
             if p.read_text() != json.dumps(json.loads(p.read_text()), separators=(",", ":")) + "\n"]
    assert loose == []


def test_write_json_writes_compact(tmp_path):
    from benchmarks.report import write_json

    write_json({"command": "x", "rows": [{"a": 1.5, "b": [1, 2]}]}, tmp_path / "r.json")
    assert (tmp_path / "r.json").read_text() == '{"command":"x","rows":[{"a":1.5,"b":[1,2]}]}\n'


def _save(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def test_step3_comparison_judges_pixels(tmp_path):
    from benchmarks.gpukit.steps import compare_runs

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 10:30] = 255
    predicted = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    restored = np.where(mask[..., None] > 0, predicted, image)
    folder = tmp_path / "in"
    folder.mkdir()
    _save(folder / "a.png", image)

    def report(name, restored_, mask_, predicted_):
        d = tmp_path / name
        d.mkdir()
        return {"records": [{"input": "a.png", "status": "ok", "output": _save(d / "r.png", restored_),
                             "mask": _save(d / "m.png", mask_), "predicted": _save(d / "p.png", predicted_)}]}

    cpu = report("cpu", restored, mask, predicted)
    one_level = predicted.copy()
    one_level[12, 12, 0] ^= 1  # one value, one level: within fp32's tolerance
    same = compare_runs(folder, report("cuda1", np.where(mask[..., None] > 0, one_level, image), mask, one_level), cpu)
    assert same["violations"] == [] and same["worst"]["max_level_diff"] == 1 and same["images"] == 1
    outside = restored.copy()
    outside[0, 0] = image[0, 0] ^ 8  # outside the mask, not the input's byte
    bad = compare_runs(folder, report("cuda2", outside, mask, predicted), cpu)
    assert "pixels outside the mask differ from the input" in bad["violations"]
    failed = {"records": [{"input": "a.png", "status": "failed"}]}
    assert "not restored by both runs: a.png" in compare_runs(folder, failed, cpu)["violations"]


def test_every_cuda_row_of_the_bench_is_run():
    from benchmarks.cli import BACKEND_NAMES
    from benchmarks.gpukit.steps import cuda_rows

    rows = cuda_rows()
    gpu = {n for n in BACKEND_NAMES if "cuda" in n or "tensorrt" in n}
    every = [n for part in rows.values() for n in part]
    assert set(every) == gpu and len(every) == len(gpu) == 11  # each row in one part, none twice
    assert rows["compile"] == ["compile-cuda"]


def test_console_commands_are_the_projects():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert all(scripts[name] == target for name, target in COMMANDS.items())


@pytest.mark.skipif(sys.platform != "linux", reason="the GPU machine runs Linux")
def test_dry_run_stops_at_step_one_without_a_cuda_device(tmp_path):
    from runtime.session import cuda_driver_problem

    if cuda_driver_problem() is None:
        pytest.skip("a CUDA device is here: the dry run needs a machine without one")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpukit", "check", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--stash", str(tmp_path / "stash")],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == NO_CUDA_EXIT, done.stderr
    assert "step 1 provider: FAIL no CUDA device" in done.stdout
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(REPORT_FILES[:3]) and len(written) <= 8
    doc = json.loads((out / "gpukit-report.json").read_text())
    assert doc["exit_code"] == NO_CUDA_EXIT
    assert doc["command"].startswith("python -m benchmarks.gpukit check --out ")  # a committed result names its command
    assert [s["status"] for s in doc["steps"]] == ["fail", "skip", "skip", "skip", "pass"]
    assert all(s["reason"].startswith("no CUDA device: ") for s in doc["steps"][:4])
    assert doc["install"]["installed"] is False and doc["table"] == []
    assert "exit 4 (no CUDA device: stopped at step 1)" in (out / "gpukit-report.md").read_text()


def test_every_process_of_the_check_writes_unbuffered(tmp_path):
    """A process stopped by its time limit (SIGKILL) still leaves every line it printed in the log:
    the kit starts each one with PYTHONUNBUFFERED=1, whatever the caller's environment says."""
    from benchmarks.gpukit.check import Kit

    old = os.environ.pop("PYTHONUNBUFFERED", None)
    try:
        kit = Kit(out=tmp_path, work=tmp_path / "work", site=None, budget_s=120)
    finally:
        if old is not None:
            os.environ["PYTHONUNBUFFERED"] = old
    assert kit.env["PYTHONUNBUFFERED"] == "1"
    done = kit.python("env", ["-c", "import os, sys; print(os.environ.get('PYTHONUNBUFFERED'), "
                                    "sys.stdout.write_through, sys.stderr.write_through)"], cap_s=30)
    assert done.rc == 0 and done.stdout.split() == ["1", "True", "True"]
    assert "1 True True" in (tmp_path / "gpukit.log").read_text()


def test_time_limits_leave_the_bench_parts_their_time():
    """With the first H200 run's step times, the ORT and eager parts at their limits still leave
    torch.compile a minute; no step's limit is below what that run took."""
    from benchmarks.gpukit.check import CHECK_BUDGET_S
    from benchmarks.gpukit.steps import BENCH_PARTS, EXPORT_S, PROBE_S, RUN_S, TRAIN_S

    run = json.loads((REPO / "benchmarks" / "results" / "gpukit-h200.json").read_text())
    seconds = {s["name"]: s["seconds"] for s in run["steps"]}
    train = run["steps"][1]["details"]
    assert PROBE_S > seconds["provider"] and TRAIN_S > train["train"]["seconds"] and EXPORT_S > train["export"]["seconds"]
    assert sum(cap for _, cap in RUN_S) > seconds["restore-run"]
    caps = dict(BENCH_PARTS)
    before_bench = seconds["provider"] + seconds["train-export"] + seconds["restore-run"]
    assert before_bench + caps["ort"] + caps["eager"] <= CHECK_BUDGET_S - 10 - 60
    assert caps["compile"] is None
