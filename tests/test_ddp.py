"""DistributedDataParallel under gloo: two CPU processes end with identical replicas."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from restore_core.checkpoint import load_checkpoint, weights_sha256
from restore_core.model import DualDecoderUNet
from tests.conftest import TINY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str, overrides=None, clock_step: float = 0.0) -> None:
    # What torchrun sets for each process.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    import restore_core.train as train_module
    from restore_core.train import train
    from tests.test_train import tiny_config

    if clock_step:  # each rank's clock runs at its own pace: rank r's readings are (r + 1) * clock_step apart
        readings = iter(range(10_000))
        train_module._now = lambda: next(readings) * (rank + 1) * clock_step
    summary = train(tiny_config(os.path.join(out_dir, "run"), **(overrides or {"train.epochs": 2})))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(summary, f, default=str)


@pytest.mark.timeout(300)
def test_two_gloo_processes_hold_the_same_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    s0 = json.loads((tmp_path / "rank0.json").read_text())
    s1 = json.loads((tmp_path / "rank1.json").read_text())
    # 16 samples per epoch, 4 per process per step, 2 processes: 2 steps an epoch.
    assert s0["steps"] == s1["steps"] == 4
    assert s0["weights_sha256"] == s1["weights_sha256"]  # parameters and BatchNorm buffers
    saved = load_checkpoint(tmp_path / "run" / "last.ckpt")["model"]
    assert not any(k.startswith("module.") for k in saved)
    model = DualDecoderUNet(TINY)
    model.load_state_dict(saved)
    assert weights_sha256(model) == s0["weights_sha256"]
    torch.manual_seed(0)
    assert weights_sha256(DualDecoderUNet(TINY)) != s0["weights_sha256"], "no training happened"
    assert s0["final"] == s1["final"]  # both ranks validated the same model


@pytest.mark.timeout(300)
def test_a_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    """Under max_minutes the ranks share one clock (the mean of their step times), so they set the
    same learning rates and stop together, even when one rank's clock runs twice as fast."""
    overrides = {"train.epochs": 50, "train.max_minutes": 0.5, "train.warmup_steps": 1}
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), overrides, 6.0), nprocs=2, join=True)
    s0 = json.loads((tmp_path / "rank0.json").read_text())
    s1 = json.loads((tmp_path / "rank1.json").read_text())
    # Steps of 6 s and 12 s: a shared 9 s a step reaches 30 s at the 4th step (alone: 5 and 3).
    assert s0["stopped"] == s1["stopped"] == "max_minutes" and s0["steps"] == s1["steps"] == 4
    assert s0["weights_sha256"] == s1["weights_sha256"]
