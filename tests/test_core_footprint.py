"""A size or width no machine could train or synthesize is refused before any work: one `error:`
line naming the setting, the estimate and the room, exit 1, nothing written; the shipped configs
and the defaults pass; the estimate stays above a measured peak, and not far above it.

No test allocates more than a tiny run: the room is set by monkeypatching where a refusal of a
moderate config is wanted."""

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore_core import footprint
from restore_core.cli import data_cli, train_cli
from restore_core.config import Config, load_config
from restore_core.footprint import check_synth, check_training, step_bytes, synth_bytes
from tests.test_core_cli import TINY_ARGS, _one_line_error, _run

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
ONE_STEP = ["--max-steps", "1", "--epochs", "1", *TINY_ARGS]


@pytest.fixture
def room(monkeypatch):
    """Set the memory the process may use (bytes) as restore_toolkit.room would report it."""

    def set_room(n, what="the machine's available memory"):
        monkeypatch.setattr("restore_toolkit.room.machine_room", lambda: (n, what))

    set_room(24 * GIB)
    return set_room


# ---------------------------------------------------------------------------------------------
# Absurd sizes: refused at once, nothing written


def test_synth_refuses_a_size_no_machine_holds(room, tmp_path):
    """--size 100000 grew to 20 GB and ran for minutes before anything was said."""
    out = tmp_path / "out"
    line = _one_line_error(_run(data_cli, ["synth", str(out), "--size", "100000", "--count", "1"]),
                           "--size 100000", "one sample needs about", "GB", "may use 25.8 GB",
                           "(the machine's available memory)", "lower --size")
    assert not out.exists()
    assert line.startswith("error: --size 100000: one sample needs about 690.3 GB")


@pytest.mark.parametrize("args,named,hint", [
    (["--set", "data.size=100000"], "data.size=100000", "lower data.size or train.batch_size"),
    (["--batch-size", "100000"], "train.batch_size=100000", "lower train.batch_size or data.size"),
    (["--set", "model.base_channels=100000", "--set", "model.max_channels=100000"], "model.base_channels=100000",
     "lower model.base_channels or model.max_channels"),
    (["--set", "model.base_channels=5000", "--set", "model.max_channels=1000000"], "model.base_channels=5000",
     "lower model.base_channels or model.max_channels"),
])
def test_train_refuses_a_step_no_machine_holds(room, tmp_path, args, named, hint):
    """data.size=100000, a huge batch or width: an allocation traceback or a swap storm before."""
    run = tmp_path / "run"
    line = _one_line_error(_run(train_cli, ["--synthetic", "-o", str(run), "--device", "cpu", *args]),
                           f"error: {named}: one training step needs about ", "this process may use 25.8 GB "
                           "(the machine's available memory)", hint)
    assert line.endswith(hint)
    assert not run.exists()


def test_train_refuses_a_moderate_step_beyond_a_small_room(room, tmp_path):
    """The same check on a config that fits a workstation, against a process held to 2 GB."""
    room(2 * 10**9, "the cgroup's memory.max")
    run = tmp_path / "run"
    line = _one_line_error(_run(train_cli, ["--synthetic", "-o", str(run), "--device", "cpu", "--batch-size", "64"]),
                           "train.batch_size=64", "this process may use 2.0 GB (the cgroup's memory.max)")
    assert not run.exists()
    assert float(line.split("needs about ")[1].split(" GB")[0]) > 2
    # A small run in the same room starts.
    assert _run(train_cli, ["-o", str(run), *ONE_STEP]).exit_code == 0


def test_synth_refuses_a_moderate_size_beyond_a_small_room(room, tmp_path):
    room(500 * 10**6)
    out = tmp_path / "out"
    _one_line_error(_run(data_cli, ["synth", str(out), "--size", "4096", "--count", "1"]),
                    "--size 4096: one sample needs about 1.5 GB, this process may use 500 MB")
    assert not out.exists()
    check_synth(512)  # 300 MB + 18 MB: fits


def test_no_figure_no_refusal(monkeypatch):
    """Where nothing says how much memory there is, nothing is refused on a guess."""
    monkeypatch.setattr("restore_toolkit.room.machine_room", lambda: (None, ""))
    check_synth(100000)
    check_training(Config())


# ---------------------------------------------------------------------------------------------
# Ordinary work passes


@pytest.mark.parametrize("path", [*sorted(glob.glob(str(ROOT / "configs/shipped-model/*.toml"))),
                                  str(ROOT / "configs/default.toml")], ids=lambda p: Path(p).name)
def test_shipped_configs_pass_on_24_gib(room, path):
    cfg = load_config(path)
    cfg.train.device = "cpu"
    check_training(cfg)
    assert step_bytes(cfg) < 16 * GIB  # with room to spare beside the rest of a 24 GiB machine


def test_defaults_and_ordinary_sizes_pass_on_24_gib(room):
    check_training(Config())
    for size in (96, 256, 1024, 4096, 10_000):  # up to a 100 Mpx sample
        check_synth(size)
    assert synth_bytes(10_000) < 8 * GIB


def test_estimate_grows_with_what_costs_memory():
    base = Config()
    bigger = [Config(), Config(), Config(), Config()]
    bigger[0].data.size = 192
    bigger[1].train.batch_size = 32
    bigger[2].model.base_channels = 48
    bigger[3].model.blocks_per_stage = 2
    assert all(step_bytes(c) > step_bytes(base) for c in bigger)
    assert step_bytes(base, on_gpu=True) < step_bytes(base)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_room_is_the_gpus_free_memory():
    free, what = footprint.room("cuda")
    assert what == "the GPU's free memory" and 0 < free <= torch.cuda.mem_get_info()[1]
    check_training(Config())


# ---------------------------------------------------------------------------------------------
# The estimate against a measured peak

MEASURE = r"""
import sys
from restore_core.config import Config, apply_overrides
from restore_core.footprint import step_bytes
from restore_core.train import train
cfg = apply_overrides(Config(), {"data.root": sys.argv[1], "data.size": 128, "train.batch_size": 4,
    "model.base_channels": 8, "model.depth": 3, "data.num_workers": 0, "train.epochs": 1, "train.max_steps": 2,
    "train.device": "cpu", "train.precision": "fp32", "train.progress": False, "train.threads": 1,
    "train.save_dir": sys.argv[2]})
train(cfg)
# VmHWM: this program's own peak. ru_maxrss would also hold the forking parent's size at the fork
# (Linux keeps the larger of the two across exec): a pytest worker grown past a gigabyte.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(step_bytes(cfg), int(hwm.split()[1]) * 1024)
"""


def _pairs(root, split, n, size):
    rng = np.random.default_rng(0)
    for kind in ("clean", "corrupted", "mask"):
        (root / split / kind).mkdir(parents=True)
    for i in range(n):
        clean = rng.integers(0, 256, (size, size, 3), np.uint8)
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4: size // 2, size // 4: size // 2] = 255
        corrupted = clean.copy()
        corrupted[mask > 0] = 255
        for kind, a in (("clean", clean), ("corrupted", corrupted), ("mask", mask)):
            Image.fromarray(a).save(root / split / kind / f"{i:06d}.png")


@pytest.mark.slow
def test_estimate_bounds_a_measured_peak_within_a_factor_of_two(tmp_path):
    """Two steps and a validation pass of 4 crops of 128 px at width 8: the whole process's peak
    RSS lies under the estimate, and the estimate under twice the peak (the margin is 1.5 on
    what grows; the process itself is counted as measured). About 10 s, most of it importing
    torch and the torch._dynamo that AdamW loads, which the peak must include."""
    root = tmp_path / "data"
    _pairs(root, "train", 8, 128)
    _pairs(root, "val", 4, 128)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(root), str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    estimate, peak = (int(x) for x in done.stdout.split()[-2:])
    print(json.dumps({"estimate": estimate, "peak": peak, "ratio": round(estimate / peak, 2)}))
    assert peak < estimate < 2 * peak
