"""The state of one training run: where it stands (`Progress`), what its process holds (`Run`),
its learning-rate schedule (`lr_factor`) and the RNG states its checkpoint keeps, so that a
resumed run continues exactly (`resume`), or a fine-tune starts from saved weights
(`init_weights`). restore_core/train.py builds a `Run` and advances it.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from restore_core.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from restore_core.config import Config, ConfigError, config_to_dict
from restore_core.data import EpochBatchSampler
from restore_core.distributed import DistInfo
from restore_core.model import DualDecoderUNet

logger = logging.getLogger("restore_core.train")  # the training's lines, whichever module says them

LAST = "last.ckpt"  # the resume checkpoint, in the run's save_dir
SUMMARY_KEYS = {"stopped", "paths", "weights_sha256"}  # keys every summary of `train` (restore-train --report) has


def is_run_summary(path: Path) -> bool:
    """Whether `path` holds a run summary as `restore-train --report` writes it (JSON with `SUMMARY_KEYS`)."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and SUMMARY_KEYS <= summary.keys()


def file_stamp(path: Path):
    """(inode, mtime, size) of `path`, None when it is missing: a checkpoint written since has another."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def lr_factor(step: int, warmup: int, total: int, min_ratio: float, elapsed: float = 0.0) -> float:
    """Linear warm-up to 1 over `warmup` steps, then cosine down to `min_ratio` at `total`.

    `elapsed` (0 to 1) is how much of a time budget is spent: the decay follows the steps or the
    clock, whichever is further along, so a timed run ends its schedule at its limit.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max(elapsed, (step - warmup) / max(1, total - warmup)))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def rng_state() -> Dict[str, Any]:
    """Global RNG states as tensors and lists, so the checkpoint loads with weights_only=True."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class JsonLog:
    """Append-only JSON-lines log, one record per line, flushed as written (main process only)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, **record) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")


@dataclass
class Progress:
    """Where a run stands; saved in every checkpoint, so a resumed run continues exactly.

    Attributes:
        step, epoch, batch_in_epoch: optimizer steps taken, whole epochs done, steps into the
            current epoch.
        best_loss, best_step: the best validation loss so far and its step (`best.ckpt`).
        early_stop_loss, epochs_without_improvement: early stopping's own record; it counts
            whole epochs only, so stopping and resuming mid-epoch does not change it.
        seconds: time spent in training steps (data waits included, validation and saving
            not), what `max_minutes` counts.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_loss: float = math.inf
    best_step: int = -1
    early_stop_loss: float = math.inf
    epochs_without_improvement: int = 0
    seconds: float = 0.0

    # Names in checkpoints written before these fields had their own names.
    _OLD_NAMES = {"es_best": "early_stop_loss", "bad_epochs": "epochs_without_improvement"}

    @classmethod
    def from_checkpoint(cls, saved: Dict[str, Any]) -> "Progress":
        return cls(**{cls._OLD_NAMES.get(k, k): v for k, v in saved.items()})


@dataclass
class Run:
    """What one training process holds: built by `_setup`, advanced by `_train_epoch`."""

    cfg: Config
    info: DistInfo
    device: torch.device
    amp_dtype: Optional[torch.dtype]
    memory_format: torch.memory_format
    model: DualDecoderUNet  # the bare model: what is saved, validated and released
    trained: nn.Module  # the model the optimizer steps: `model`, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    train_ds: Any
    sampler: EpochBatchSampler
    val_loader: DataLoader
    data_desc: str
    log: JsonLog
    progress: Progress = field(default_factory=Progress)
    samples_per_s: float = float("nan")
    total_steps: int = 0  # the schedule's length: every epoch's steps
    tick: float = 0.0  # the training clock's reading at the last step

    def lr_scale(self, step: int) -> float:
        """The learning-rate factor at `step` (see `lr_factor`), on the clock too under `max_minutes`."""
        t = self.cfg.train
        elapsed = self.progress.seconds / (60 * t.max_minutes) if t.max_minutes else 0.0
        return lr_factor(step, t.warmup_steps, self.total_steps, t.min_lr_ratio, elapsed)

    def out_of_time(self) -> bool:
        t = self.cfg.train
        return bool(t.max_minutes) and self.progress.seconds >= 60 * t.max_minutes

    @property
    def save_dir(self) -> Path:
        return Path(self.cfg.train.save_dir)

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def say(self, message: str) -> None:
        """One line for the user, from the first process only."""
        if self.info.is_main:
            logger.info(message)

    def checkpoint(self, metrics: Optional[Dict[str, float]]) -> Dict[str, Any]:
        """The resume checkpoint: everything needed to continue exactly (see DESIGN: Checkpoints)."""
        return {
            "model": self.model.state_dict(),
            "model_config": asdict(self.cfg.model),
            "threshold": self.cfg.train.threshold,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.progress.step,
            "epoch": self.progress.epoch,
            "progress": asdict(self.progress),
            "rng": rng_state(),
            "config": config_to_dict(self.cfg),
            "metrics": metrics or {},
        }

    def save_last(self, metrics: Optional[Dict[str, float]] = None) -> None:
        if self.info.is_main:
            save_checkpoint(self.checkpoint(metrics), self.save_dir / LAST)


@dataclass
class EpochResult:
    """What one pass over the training data did (a pass may stop early at `max_steps`)."""

    number: int  # 1-based
    train_lx: float
    train_lm: float
    seconds: float
    complete: bool  # False when a limit stopped it mid-epoch
    limit: Optional[str] = None  # "max_steps" or "max_minutes" when one stopped it


def _check_model_config(run: Run, source, saved: Dict[str, Any]) -> None:
    """Weights from `source` fit only the model config they were saved with."""
    if saved != asdict(run.cfg.model):
        raise ConfigError(f"{source}: its model config {saved} differs from the configured one {asdict(run.cfg.model)}")


RESUME_ENTRIES = ("model_config", "model", "optimizer", "scheduler", "scaler", "progress", "rng")  # what save writes


def resume(run: Run, path: str) -> None:
    """Load weights, optimizer, schedule, scaler, progress and RNG states from a resume checkpoint."""
    ckpt = load_checkpoint(path, map_location="cpu")  # RNG states must stay CPU tensors
    missing = [k for k in RESUME_ENTRIES if k not in ckpt]
    if missing:  # a release or a hand-made file: not a run's last.ckpt
        raise CheckpointError(f"{path}: not a checkpoint a run can resume from (no {', '.join(missing)} "
                              "entry); --init starts a new run from its weights")
    _check_model_config(run, path, ckpt["model_config"])
    run.model.load_state_dict(ckpt["model"])
    run.opt.load_state_dict(ckpt["optimizer"])
    run.sched.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"]:  # empty when saved without fp16 (a disabled scaler)
        run.scaler.load_state_dict(ckpt["scaler"])
    run.progress = Progress.from_checkpoint(ckpt["progress"])
    set_rng_state(ckpt["rng"])
    p = run.progress
    run.say(f"resumed from {path} at step {p.step} (epoch {p.epoch + 1}, batch {p.batch_in_epoch})")


def init_weights(run: Run, path: str) -> None:
    """Fine-tuning: start from the weights of `path` (.ckpt, .safetensors or `default`), with the
    fresh optimizer, schedule and step count of a new run."""
    loaded = load_model(path, device="cpu")
    _check_model_config(run, loaded.source, asdict(loaded.config))
    run.model.load_state_dict(loaded.model.state_dict())
    run.say(f"starting from the weights of {loaded.source}")
