"""Training: config checks, artifacts, exact resume, non-finite stop, early stopping, devices."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from restore_core.checkpoint import load_checkpoint, load_model
from restore_core.config import Config, ConfigError, apply_overrides, config_from_dict, config_to_dict, load_config
from restore_core.data import synthesize_dataset
from restore_core.dataset_check import DatasetError
from restore_core.run_state import lr_factor
from restore_core.train import NonFiniteLossError, train
from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[1]


def tiny_config(save_dir, **overrides) -> Config:
    """A config that trains the tiny model on 16 px on-the-fly samples in about a second."""
    base = {
        "model.base_channels": TINY.base_channels, "model.depth": TINY.depth,
        "data.size": 16, "data.epoch_samples": 16, "data.val_count": 4, "data.num_workers": 0,
        "train.batch_size": 4, "train.epochs": 2, "train.device": "cpu", "train.save_dir": str(save_dir),
        "train.progress": False, "train.log_every": 1, "train.warmup_steps": 2, "train.lr": 1e-3,
        "train.threads": 1,  # tiny tensors: one thread is fastest, and immune to a busy machine
    }
    base.update(overrides)
    return apply_overrides(Config(), base)


def _step_losses(log_path):
    recs = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if r["type"] == "step"}


# ---------------------------------------------------------------------------------------------
# Config.


def test_default_toml_equals_builtin_defaults():
    assert load_config(REPO / "configs" / "default.toml") == Config()
    c = Config()
    assert (c.train.epochs, c.train.batch_size, c.train.lr, c.train.threshold) == (25, 16, 3e-4, 0.1)


@pytest.mark.parametrize("text, message", [
    ("[train]\nlrr = 0.1\n", r"bad\.toml: unknown config key 'train\.lrr'"),
    ("[train]\nlr = 'fast'\n", r"'train\.lr' must be a number"),
    ("[model]\nbase_channels = 2.5\n", r"'model\.base_channels' must be an integer"),
    ("[corruption]\nshapes = ['hexagon']\n", r"corruption\.shapes"),
    ("[data]\nsize = 100\n", r"'data\.size' must be a positive multiple of the model's stride 16"),
    ("[data]\nvivid = 1.5\n", r"'data\.vivid' must lie in \[0, 1\], got 1\.5"),
    ("[data]\nhue = -0.1\n", r"'data\.hue' must lie in \[0, 1\]"),
    ("[trian]\n", r"unknown config section 'trian'"),
    ("[train\n", "not valid TOML"),
])
def test_config_errors_name_the_key(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    assert config_from_dict(config_to_dict(Config())) == Config()


def test_lr_schedule():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    # A time budget half spent moves the decay to its middle, however few steps were taken; the
    # steps still lead when they are further along, and warm-up is never cut short.
    assert lr_factor(10, 10, 100, 0.1, elapsed=0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(55, 10, 100, 0.1, elapsed=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(20, 10, 100, 0.1, elapsed=1.7) == pytest.approx(0.1)
    assert lr_factor(3, 10, 100, 0.1, elapsed=0.9) == pytest.approx(0.4)


def test_max_minutes_stops_on_the_clock_with_the_schedule_ended(tmp_path, monkeypatch):
    """A timed run stops once its budget is spent, validated and saved, at the schedule's floor;
    its seconds are saved, so a resumed run with the same budget stops at once."""
    import restore_core.train as train_module

    clock = iter(range(0, 10_000, 6))  # every reading 6 s later: each step costs 6 s
    monkeypatch.setattr(train_module, "_now", lambda: float(next(clock)))
    summary = train(tiny_config(tmp_path, **{"train.epochs": 50, "train.max_minutes": 0.5, "train.warmup_steps": 1}))
    assert summary["stopped"] == "max_minutes"
    assert summary["steps"] == 5 and summary["train_seconds"] == pytest.approx(30.0)  # 5 steps x 6 s = 0.5 min
    assert summary["final"] is not None and (tmp_path / "best.safetensors").exists()
    steps = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()
             if json.loads(x)["type"] == "step"]
    lrs = [r["lr"] for r in steps]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(1e-3 * 0.05)  # decayed on the clock
    again = train(tiny_config(tmp_path, **{"train.epochs": 50, "train.max_minutes": 0.5,
                                           "train.resume": str(tmp_path / "last.ckpt")}))
    assert again["stopped"] == "max_minutes" and again["steps"] == 5


# ---------------------------------------------------------------------------------------------
# Runs.


def test_train_writes_loadable_artifacts(tmp_path):
    summary = train(tiny_config(tmp_path))
    assert summary["stopped"] == "epochs" and summary["steps"] == 8 and summary["epochs_completed"] == 2
    for name in ("last.ckpt", "best.ckpt", "best.safetensors", "train_log.jsonl"):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.glob(".*.tmp"))
    ckpt = load_checkpoint(tmp_path / "last.ckpt")  # weights_only=True
    for key in ("model", "model_config", "threshold", "optimizer", "scheduler", "scaler", "step", "epoch",
                "rng", "config"):
        assert key in ckpt, key
    assert ckpt["model_config"] == asdict(TINY) and ckpt["step"] == 8 and ckpt["threshold"] == 0.1
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert config_from_dict(ckpt["config"]) == tiny_config(tmp_path)
    for path in ("best.ckpt", "best.safetensors"):
        loaded = load_model(tmp_path / path)
        assert loaded.config == TINY and loaded.threshold == 0.1
    final = load_model(tmp_path / "last.ckpt").model
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in final.state_dict().items())
    for key in ("loss", "l1_corrupted", "bce", "mask_iou", "psnr"):
        assert torch.isfinite(torch.tensor(summary["final"][key])), key
    epochs = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()
              if json.loads(x)["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["complete"] for e in epochs)


def test_resume_is_exact(tmp_path):
    """6 steps straight == 3 steps, stop, resume, 3 more: same losses, same weights."""
    straight = train(tiny_config(tmp_path / "a", **{"train.epochs": 3, "train.max_steps": 6}))
    first = train(tiny_config(tmp_path / "b", **{"train.epochs": 3, "train.max_steps": 3}))
    assert first["steps"] == 3 and first["stopped"] == "max_steps"
    resumed = train(tiny_config(tmp_path / "b", **{"train.epochs": 3, "train.max_steps": 6,
                                                   "train.resume": str(tmp_path / "b" / "last.ckpt")}))
    assert straight["steps"] == resumed["steps"] == 6
    a, b = _step_losses(tmp_path / "a" / "train_log.jsonl"), _step_losses(tmp_path / "b" / "train_log.jsonl")
    assert sorted(a) == sorted(b) == list(range(1, 7))
    assert a == b  # bit-identical floats
    wa = load_checkpoint(tmp_path / "a" / "last.ckpt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "last.ckpt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert straight["weights_sha256"] == resumed["weights_sha256"]


def test_resume_refuses_another_model(tmp_path):
    train(tiny_config(tmp_path, **{"train.max_steps": 1}))
    cfg = tiny_config(tmp_path, **{"model.base_channels": 6, "train.resume": str(tmp_path / "last.ckpt")})
    with pytest.raises(ConfigError, match="model config .* differs"):
        train(cfg)


def test_init_starts_from_the_weights_with_a_new_schedule(tmp_path):
    """Fine-tuning: --init takes the weights alone; step, schedule and optimizer start afresh."""
    train(tiny_config(tmp_path / "a", **{"train.max_steps": 3}))
    cfg = tiny_config(tmp_path / "b", **{"train.max_steps": 1, "train.init": str(tmp_path / "a" / "best.safetensors"),
                                         "train.lx_reduction": "images"})
    # Zero learning rate: the weights after one step are the ones started from.
    cfg.train.lr, cfg.train.weight_decay = 1e-30, 0.0
    summary = train(cfg)
    assert summary["steps"] == 1
    ckpt = load_checkpoint(tmp_path / "b" / "last.ckpt")
    assert ckpt["step"] == 1 and ckpt["scheduler"]["last_epoch"] == 1
    best = load_model(tmp_path / "a" / "best.safetensors").model.state_dict()
    for k, v in ckpt["model"].items():
        if k.endswith("num_batches_tracked") or "running_" in k:  # batch-norm statistics move in train mode
            continue
        assert torch.allclose(v, best[k], atol=1e-6), k
    with pytest.raises(ConfigError, match="model config .* differs"):
        train(tiny_config(tmp_path / "c", **{"model.base_channels": 6, "train.init": str(tmp_path / "a" / "last.ckpt")}))


def test_non_finite_loss_stops_naming_the_step(tmp_path, monkeypatch):
    import restore_core.train as train_mod

    real, calls = train_mod.restoration_loss, []

    def poisoned(*args):
        calls.append(1)
        parts = real(*args)
        if len(calls) == 3:
            return parts._replace(total=parts.total * float("nan"))
        return parts

    monkeypatch.setattr(train_mod, "restoration_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 3 \(epoch 1\)"):
        train(tiny_config(tmp_path))
    assert not list(tmp_path.glob("*.ckpt")) and not list(tmp_path.glob("*.safetensors"))


def test_early_stopping(tmp_path):
    # No later epoch can beat the first by 1e9: stop after 1 + patience epochs.
    summary = train(tiny_config(tmp_path, **{"train.epochs": 10, "train.patience": 2, "train.min_delta": 1e9}))
    assert summary["stopped"] == "early_stopping" and summary["epochs_completed"] == 3


def test_training_learns_the_mask(tmp_path):
    """A few dozen steps on a fixed 16 px set: the mask loss falls."""
    root = tmp_path / "data"
    synthesize_dataset(root, count=16, size=16, seed=0, val_count=4)
    summary = train(tiny_config(tmp_path / "run", **{"data.root": str(root), "train.epochs": 12,
                                                     "train.lr": 1e-2, "train.warmup_steps": 0,
                                                     "train.patience": 0}))
    recs = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    epochs = [r for r in recs if r["type"] == "epoch"]
    assert len(epochs) == 12
    assert epochs[-1]["train_lm"] < 0.8 * epochs[0]["train_lm"]
    assert summary["best"]["loss"] < epochs[0]["val"]["loss"]


def test_bad_dataset_is_named_before_training(tmp_path):
    root = tmp_path / "data"
    synthesize_dataset(root, count=4, size=16, seed=0, val_count=2)
    (root / "val" / "corrupted" / "000001.png").unlink()
    with pytest.raises(DatasetError, match=r"val/corrupted/000001\.png: missing"):
        train(tiny_config(tmp_path / "run", **{"data.root": str(root)}))
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_cuda_asked_without_cuda_is_an_error(tmp_path):
    from restore_core.distributed import DeviceError

    with pytest.raises(DeviceError, match="no usable CUDA"):
        train(tiny_config(tmp_path, **{"train.device": "cuda"}))


def test_bf16_on_cpu_trains(tmp_path):
    summary = train(tiny_config(tmp_path, **{"train.precision": "bf16", "train.max_steps": 2}))
    assert summary["precision"] == "bf16" and torch.isfinite(torch.tensor(summary["final"]["loss"]))
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        train(tiny_config(tmp_path, **{"train.precision": "fp16"}))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_channels_last(tmp_path):
    summary = train(tiny_config(tmp_path, **{"train.device": "cuda", "train.max_steps": 4}))
    assert summary["device"].startswith("cuda") and summary["precision"] in ("bf16", "fp16")
    assert torch.isfinite(torch.tensor(summary["final"]["loss"]))
    assert load_model(tmp_path / "best.safetensors").config == TINY
