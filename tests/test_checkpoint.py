"""Checkpoints and released weights load safely, or are refused with one clear line."""

import pytest
import torch

from restore_core.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint, save_release
from restore_core.model import DualDecoderUNet
from tests.conftest import TINY, make_tiny_model


def _state(model):
    from dataclasses import asdict

    return {"model": model.state_dict(), "model_config": asdict(model.cfg), "threshold": 0.2, "step": 7}


def test_checkpoint_round_trip(tmp_path):
    model = make_tiny_model(seed=1)
    save_checkpoint(_state(model), tmp_path / "a.ckpt")
    loaded = load_model(tmp_path / "a.ckpt")
    assert loaded.threshold == 0.2 and loaded.config == TINY
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k
    assert not list(tmp_path.glob(".*.tmp")), "temp file left behind"


def test_release_round_trip(tmp_path):
    model = make_tiny_model(seed=2)
    save_release(tmp_path / "m.safetensors", model, threshold=0.15)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.threshold == 0.15 and loaded.config == TINY
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in model.state_dict().items())


class Evil:
    def __reduce__(self):
        return (print, ("this ran code while loading",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "restore-checkpoint", "format_version": 1, "model": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)


def test_foreign_truncated_and_missing_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": DualDecoderUNet(TINY).state_dict()}, foreign)
    with pytest.raises(CheckpointError, match="not a restore checkpoint"):
        load_checkpoint(foreign)

    good = tmp_path / "good.ckpt"
    save_checkpoint(_state(make_tiny_model()), good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.ckpt: not a readable checkpoint"):
        load_checkpoint(truncated)

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.ckpt")

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_model(junk)


def test_weights_that_do_not_fit_the_config_are_named(tmp_path):
    state = _state(make_tiny_model())
    state["model_config"] = dict(state["model_config"], base_channels=8)
    save_checkpoint(state, tmp_path / "mismatch.ckpt")
    with pytest.raises(CheckpointError, match="do not match the model config"):
        load_model(tmp_path / "mismatch.ckpt")


def test_artifacts_get_umask_permissions_not_owner_only(tmp_path):
    from restore_core import fileio

    fileio.atomic_write_text(tmp_path / "report.json", "{}")
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o666 & ~fileio._UMASK
