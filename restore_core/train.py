"""Training: `train(cfg)` runs the reference design's recipe and returns a summary; `restore-train` calls it.

Per step: normalize the uint8 batch on the device, forward (autocast where asked), L = 2 Lx + Lm,
backward (grad scaler for fp16), clip, AdamW, warm-up + cosine schedule. Per epoch: validate
with `RestorationPipeline` (the deployed code path), print one line, log JSON, write
`last.ckpt`, and `best.ckpt` + `best.safetensors` when the validation loss improves.

Exact resume: the data of every step follows from (seed, epoch, index) and the sampler skips
the steps already taken, so a resumed run computes the same losses and weights as one that was
never interrupted (on the same device and thread count).
"""

from __future__ import annotations

import json
import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from restore_core.checkpoint import load_checkpoint, save_checkpoint, save_release, weights_sha256
from restore_core.config import Config, ConfigError, config_to_dict
from restore_core.data import (
    VAL_STREAM,
    EpochBatchSampler,
    PairedFolderDataset,
    SyntheticDataset,
    check_dataset,
    seed_worker,
    source_images,
    source_weights,
)
from restore_core.distributed import (
    DistInfo,
    all_mean,
    barrier,
    cleanup_distributed,
    describe_device,
    init_distributed,
    resolve_device,
    sync_buffers,
)
from restore_core.img_utils import normalize, unnormalize
from restore_core.losses import IMAGE_WEIGHT, restoration_loss
from restore_core.metrics import MetricAccumulator
from restore_core.model import DualDecoderUNet, count_parameters
from restore_core.pipeline import RestorationPipeline

LAST, BEST, RELEASE, LOG = "last.ckpt", "best.ckpt", "best.safetensors", "train_log.jsonl"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


# ---------------------------------------------------------------------------------------------
# Set-up helpers.


def resolve_precision(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype (None: plain fp32). fp16 on CPU is refused; bf16 on old GPUs too."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("config key 'train.precision': fp16 needs CUDA; on a CPU use bf16 or fp32")
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("config key 'train.precision': this GPU has no bf16; use fp16 or fp32")
    return torch.bfloat16


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over `warmup` steps, then cosine down to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_datasets(cfg: Config):
    """(train dataset, val dataset, val batch size, description) for the config's data source."""
    d, seed = cfg.data, cfg.train.seed
    if d.root is not None:
        names = check_dataset(d.root, min_size=d.size)  # every problem named before training
        train_ds = PairedFolderDataset(d.root, "train", crop=d.size, augment=d.augment, seed=seed)
        val_ds = PairedFolderDataset(d.root, "val")
        from PIL import Image

        sizes = set()
        for name in names["val"]:
            with Image.open(val_ds.files["clean"][name]) as im:
                sizes.add(im.size)
        val_bs = cfg.train.batch_size if len(sizes) == 1 else 1  # mixed sizes cannot be stacked
        desc = f"{d.root}: {len(train_ds)} train / {len(val_ds)} val pairs"
        return train_ds, val_ds, val_bs, desc
    train_imgs, val_imgs = source_images(d.source, grey=d.grey_photos)
    weights = source_weights([n for n, _ in train_imgs]) if d.source is None and d.grey_photos else None
    train_ds = SyntheticDataset([a for _, a in train_imgs], d.size, d.epoch_samples, seed, cfg.corruption,
                                augment=d.augment, weights=weights, scenes=d.scenes)
    val_ds = SyntheticDataset([a for _, a in val_imgs], d.size, d.val_count, seed, cfg.corruption,
                              augment=False, stream=VAL_STREAM, fixed=True)
    src = d.source or "scikit-image photos"
    desc = (f"on-the-fly synthesis from {src}: {len(train_imgs)} train photos"
            + (f" + {d.scenes:.0%} procedural scenes" if d.scenes else "") + " "
            f"({d.epoch_samples} crops/epoch), {len(val_imgs)} held-out val photos ({d.val_count} crops)")
    return train_ds, val_ds, cfg.train.batch_size, desc


def _rng_state() -> Dict[str, Any]:
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


def _set_rng_state(state: Dict[str, Any]) -> None:
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


# ---------------------------------------------------------------------------------------------
# Validation during training.


@torch.no_grad()
def evaluate(model: DualDecoderUNet, loader: DataLoader, device: torch.device, threshold: float) -> Dict[str, float]:
    """Validation figures (see `metrics`) through `RestorationPipeline.forward_tensor`, in fp32."""
    was_training = model.training
    model.eval()
    pipe = RestorationPipeline(model, threshold).eval()
    acc = MetricAccumulator(threshold)
    for corrupted, clean, mask in loader:
        corrupted, clean, mask = corrupted.to(device), clean.to(device), mask.to(device)
        pred, prob, composite = pipe.forward_tensor(normalize(corrupted))  # (N,3,H,W), (N,1,H,W), (N,3,H,W)
        acc.update(pred, prob, normalize(clean), mask, unnormalize(composite), clean)
    model.train(was_training)
    return acc.result()


# ---------------------------------------------------------------------------------------------
# The loop.


def train(cfg: Config) -> Dict[str, Any]:
    """Train as configured and return a summary (final and best figures, artifact paths).

    Writes `last.ckpt` (each epoch, every `checkpoint_every` steps and at the end), `best.ckpt`
    and `best.safetensors` (whenever the validation loss improves) and `train_log.jsonl` into
    `cfg.train.save_dir`. Under torchrun, every process trains its shard and the first writes.

    Raises:
        ConfigError, DatasetError, SourceError, DeviceError, CheckpointError: bad input, named.
        NonFiniteLossError: the loss became NaN or infinite (no checkpoint is written for it).
    """
    t = cfg.train
    threads = torch.get_num_threads()
    if t.threads:
        torch.set_num_threads(t.threads)
    info = init_distributed(t.device)
    try:
        return _train(cfg, info)
    finally:
        cleanup_distributed()
        torch.set_num_threads(threads)  # a library call leaves the process as it found it


def _train(cfg: Config, info: DistInfo) -> Dict[str, Any]:
    t, d = cfg.train, cfg.data
    device = resolve_device(t.device, info.local_rank)
    amp_dtype = resolve_precision(t.precision, device)
    save_dir = Path(t.save_dir)
    main = info.is_main
    say = print if main else (lambda *a, **k: None)

    # Same seed on every rank: identical initial weights (DDP also broadcasts them).
    torch.manual_seed(t.seed)
    np.random.seed(t.seed % 2**32)
    random.seed(t.seed)

    train_ds, val_ds, val_bs, data_desc = build_datasets(cfg)
    sampler = EpochBatchSampler(len(train_ds), t.batch_size, t.seed, shuffle=True, rank=info.rank,
                                world_size=info.world_size)
    total_steps = t.epochs * sampler.steps_per_epoch
    val_loader = DataLoader(val_ds, batch_size=val_bs, shuffle=False, num_workers=0)

    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    model = DualDecoderUNet(cfg.model).to(device=device, memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, t.warmup_steps, total_steps, t.min_lr_ratio))
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    st = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_loss": math.inf, "best_step": -1,
          "es_best": math.inf, "bad_epochs": 0}
    if t.resume:
        ckpt = load_checkpoint(t.resume, map_location="cpu")  # RNG states must stay CPU tensors
        if ckpt["model_config"] != asdict(cfg.model):
            raise ConfigError(f"{t.resume}: its model config {ckpt['model_config']} differs from the "
                              f"configured one {asdict(cfg.model)}")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        if ckpt["scaler"]:  # empty when saved without fp16 (a disabled scaler)
            scaler.load_state_dict(ckpt["scaler"])
        for k in st:
            st[k] = ckpt["progress"][k]
        _set_rng_state(ckpt["rng"])
        say(f"resumed from {t.resume} at step {st['step']} (epoch {st['epoch'] + 1}, "
            f"batch {st['batch_in_epoch']})")
    raw = model
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    if main:
        save_dir.mkdir(parents=True, exist_ok=True)
    log = JsonLog(save_dir / LOG, main)
    prec = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
    say(f"device: {describe_device(device)}, precision {prec}, "
        f"{'channels-last' if t.channels_last else 'contiguous'}"
        + (f", {info.world_size} processes" if info.enabled else ""))
    say(f"data: {data_desc}")
    say(f"model: {count_parameters(raw) / 1e6:.2f} M parameters, {json.dumps(asdict(cfg.model))}")
    log.write(type="start", step=st["step"], device=str(device), precision=prec, world_size=info.world_size,
              config=config_to_dict(cfg), parameters=count_parameters(raw))

    def state_dict(metrics: Optional[Dict[str, float]]) -> Dict[str, Any]:
        return {
            "model": raw.state_dict(),
            "model_config": asdict(cfg.model),
            "threshold": t.threshold,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(),
            "step": st["step"],
            "epoch": st["epoch"],
            "progress": dict(st),
            "rng": _rng_state(),
            "config": config_to_dict(cfg),
            "metrics": metrics or {},
        }

    def save_last(metrics=None) -> None:
        if main:
            save_checkpoint(state_dict(metrics), save_dir / LAST)

    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else nullcontext
    from tqdm import tqdm

    stop_reason, val, epoch_seconds = "epochs", None, 0.0
    samples_per_s = float("nan")
    while st["epoch"] < t.epochs:
        if t.max_steps and st["step"] >= t.max_steps:  # resumed at or past the limit
            stop_reason = "max_steps"
            break
        epoch = st["epoch"]
        sampler.set_epoch(epoch, skip=st["batch_in_epoch"])
        train_ds.set_epoch(epoch)
        g = torch.Generator().manual_seed(t.seed * 7919 + epoch)  # worker seeds, per epoch
        loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=d.num_workers,
                            worker_init_fn=seed_worker, generator=g, pin_memory=device.type == "cuda")
        model.train()
        sums = {"lx": 0.0, "lm": 0.0, "n": 0}
        t0 = time.perf_counter()
        window_t, window_n = t0, 0
        bar = tqdm(total=len(sampler), desc=f"epoch {epoch + 1}/{t.epochs}", disable=not (main and t.progress),
                   unit="step", leave=False, dynamic_ncols=True)
        hit_max = False
        for corrupted, clean, mask in loader:
            x = normalize(corrupted.to(device, non_blocking=True)).contiguous(memory_format=memory_format)
            y = normalize(clean.to(device, non_blocking=True))  # (N, 3, H, W) in [-1, 1]
            m = mask.to(device, non_blocking=True)  # (N, 1, H, W) bool
            with autocast():
                pred, logits = model(x)  # (N, 3, H, W), (N, 1, H, W)
            parts = restoration_loss(pred, logits, y, m)
            # Mean over ranks: every process must agree to stop on a bad value, and logs show
            # the whole step, not one shard.
            stats = all_mean(torch.stack([parts.total.detach(), parts.lx.detach(), parts.lm.detach()]), info)
            loss_value, lx, lm = (float(v) for v in stats.float().cpu())
            if not math.isfinite(loss_value):
                bar.close()
                raise NonFiniteLossError(
                    f"loss became {loss_value} at step {st['step'] + 1} (epoch {epoch + 1}); stopped without "
                    f"writing a checkpoint for it" + (f" (last good: {save_dir / LAST})" if (save_dir / LAST).exists()
                                                      else ""))
            opt.zero_grad(set_to_none=True)
            scaler.scale(parts.total).backward()
            if t.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            st["step"] += 1
            st["batch_in_epoch"] += 1

            n = x.shape[0] * info.world_size
            sums["lx"] += lx
            sums["lm"] += lm
            sums["n"] += 1
            window_n += n
            now = time.perf_counter()
            if now - window_t > 0:
                samples_per_s = window_n / (now - window_t)
            if window_n >= 20 * n:  # a sliding estimate that forgets the start-up
                window_t, window_n = now, 0
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", samples_s=f"{samples_per_s:.1f}", refresh=False)
            if st["step"] % t.log_every == 0:
                log.write(type="step", step=st["step"], epoch=epoch + 1, loss=loss_value, lx=lx, lm=lm,
                          lr=sched.get_last_lr()[0], samples_per_s=samples_per_s)
            if t.checkpoint_every and st["step"] % t.checkpoint_every == 0:
                save_last()
            if t.max_steps and st["step"] >= t.max_steps:
                hit_max = True
                break
        bar.close()
        epoch_seconds = time.perf_counter() - t0
        epoch_done = not hit_max or st["batch_in_epoch"] >= sampler.steps_per_epoch
        if epoch_done:
            st["epoch"] += 1
            st["batch_in_epoch"] = 0

        sync_buffers(raw, info)  # every rank validates and saves rank 0's exact model
        val = evaluate(raw, val_loader, device, t.threshold)
        improved = val["loss"] < st["best_loss"]
        if improved:
            st["best_loss"], st["best_step"] = val["loss"], st["step"]
        # Early stopping counts whole epochs only, so a stop-and-resume does not change it.
        if epoch_done:
            if val["loss"] < st["es_best"] - t.min_delta:
                st["es_best"], st["bad_epochs"] = val["loss"], 0
            else:
                st["bad_epochs"] += 1
        k = max(sums["n"], 1)
        train_lx, train_lm = sums["lx"] / k, sums["lm"] / k
        say(f"epoch {epoch + 1}/{t.epochs} step {st['step']}: train L1 {train_lx:.4f} BCE {train_lm:.4f} | "
            f"val L1 {val['l1_corrupted']:.4f} BCE {val['bce']:.4f} IoU {val['mask_iou']:.3f} "
            f"PSNR {val['psnr']:.2f} | {samples_per_s:.1f} samples/s, {epoch_seconds:.0f}s"
            + (" | best" if improved else "") + ("" if epoch_done else " (partial epoch)"))
        log.write(type="epoch", epoch=epoch + 1, step=st["step"], complete=epoch_done, train_lx=train_lx,
                  train_lm=train_lm, train_loss=IMAGE_WEIGHT * train_lx + train_lm, val=val, best=improved,
                  seconds=epoch_seconds, samples_per_s=samples_per_s)
        save_last(val)
        if improved and main:
            save_checkpoint(state_dict(val), save_dir / BEST)
            save_release(save_dir / RELEASE, raw, t.threshold)
        barrier(info)
        if hit_max:
            stop_reason = "max_steps"
            break
        if t.patience and st["bad_epochs"] >= t.patience:
            stop_reason = "early_stopping"
            say(f"early stopping: no better validation loss for {t.patience} epochs")
            break

    best = None
    if (save_dir / BEST).exists():
        best = {"loss": st["best_loss"], "step": st["best_step"], "checkpoint": str(save_dir / BEST),
                "release": str(save_dir / RELEASE)}
    return {
        "stopped": stop_reason,
        "steps": st["step"],
        "epochs_completed": st["epoch"],
        "final": val,
        "best": best,
        "paths": {"last": str(save_dir / LAST), "best": str(save_dir / BEST), "release": str(save_dir / RELEASE),
                  "log": str(save_dir / LOG)},
        "device": str(device),
        "precision": prec,
        "samples_per_s": samples_per_s,
        "weights_sha256": weights_sha256(raw),
        "rank": info.rank,
    }


if __name__ == "__main__":  # torchrun --nproc_per_node=2 -m restore_core.train --config ...
    from restore_core.cli import train_cli

    train_cli()
