"""Training: `train(cfg)` runs the reference design's recipe and returns a summary; `restore-train` calls it.

Per step: normalize the uint8 batch on the device, forward (autocast where asked), L = 2 Lx + Lm,
backward (grad scaler for fp16), clip, AdamW, warm-up + cosine schedule. Per epoch: validate
with `RestorationPipeline` (the deployed code path), log one line, log JSON, write
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

from restore_core.checkpoint import save_checkpoint, save_release, weights_sha256
from restore_core.config import Config, ConfigError, config_to_dict
from restore_core.data import (
    VAL_STREAM,
    EpochBatchSampler,
    PairedFolderDataset,
    SyntheticDataset,
    seed_worker,
    source_images,
    source_weights,
)
from restore_core.dataset_check import check_dataset
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
from restore_core.img_utils import normalize
from restore_core.losses import IMAGE_WEIGHT, restoration_loss
from restore_core.metrics import NonFiniteOutputError, evaluate
from restore_core.model import DualDecoderUNet, count_parameters
from restore_core.run_state import LAST, EpochResult, JsonLog, Run, init_weights, resume

BEST, RELEASE, LOG = "best.ckpt", "best.safetensors", "train_log.jsonl"
RUN_FILES = (LAST, BEST, RELEASE, LOG)  # what a run writes into its save_dir


class NonFiniteLossError(RuntimeError):
    """The loss (or the validation outputs) became NaN or infinite; the message names the step."""


def _non_finite(run: Run, what: str, step: int, epoch: int) -> NonFiniteLossError:
    last = run.save_dir / LAST
    return NonFiniteLossError(f"{what} at step {step} (epoch {epoch}); stopped without writing a checkpoint for it"
                              + (f" (last good: {last})" if last.exists() else ""))


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
                                augment=d.augment, weights=weights, scenes=d.scenes, sky=d.sky, jpeg=d.jpeg,
                                vivid=d.vivid, hue=d.hue, degraded=d.degraded, unpainted=d.unpainted,
                                degrade=cfg.degrade, zoom=d.zoom)
    val_ds = SyntheticDataset([a for _, a in val_imgs], d.size, d.val_count, seed, cfg.corruption,
                              augment=False, stream=VAL_STREAM, fixed=True, degraded=d.degraded,
                              unpainted=d.unpainted, degrade=cfg.degrade)
    src = d.source or "scikit-image photos"
    desc = (f"on-the-fly synthesis from {src}: {len(train_imgs)} train photos"
            + (f" + {d.scenes:.0%} procedural scenes" if d.scenes else "") + " "
            f"({d.epoch_samples} crops/epoch), {len(val_imgs)} held-out val photos ({d.val_count} crops)")
    return train_ds, val_ds, cfg.train.batch_size, desc


# ---------------------------------------------------------------------------------------------
# The loop, in the order it runs.


def train(cfg: Config) -> Dict[str, Any]:
    """Train as configured and return a summary (final and best figures, artifact paths).

    Writes `last.ckpt` (each epoch, every `checkpoint_every` steps and at the end), `best.ckpt`
    and `best.safetensors` (whenever the validation loss improves) and `train_log.jsonl` into
    `cfg.train.save_dir`. Under torchrun, every process trains its shard and the first writes.
    Progress lines go to the `restore_core.train` logger (`restore-train` prints them).

    Raises:
        ConfigError, DatasetError, SourceError, DeviceError, CheckpointError: bad input, named.
        NonFiniteLossError: the loss or the validation outputs became NaN or infinite (no checkpoint for it).
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
    run = _setup(cfg, info)
    if cfg.train.resume:
        resume(run, cfg.train.resume)
    elif cfg.train.init:
        init_weights(run, cfg.train.init)
    _start(run)
    stop_reason, val = "epochs", None
    while run.progress.epoch < cfg.train.epochs:
        limit = _limit_reached(run)  # resumed at or past a limit
        if limit:
            stop_reason = limit
            break
        epoch = _train_epoch(run)
        val = _validate_and_save(run, epoch)
        if epoch.limit:
            stop_reason = epoch.limit
            break
        if _should_stop_early(run):
            stop_reason = "early_stopping"
            break
    return _summary(run, stop_reason, val)


def _setup(cfg: Config, info: DistInfo) -> Run:
    """Seed, then build data, model, optimizer, schedule and scaler (in this order: it fixes the RNG draws)."""
    t = cfg.train
    device = resolve_device(t.device, info.local_rank)
    amp_dtype = resolve_precision(t.precision, device)

    # Same seed on every rank: identical initial weights (DDP also broadcasts them).
    torch.manual_seed(t.seed)
    np.random.seed(t.seed % 2**32)
    random.seed(t.seed)

    train_ds, val_ds, val_bs, data_desc = build_datasets(cfg)
    sampler = EpochBatchSampler(len(train_ds), t.batch_size, t.seed, shuffle=True, rank=info.rank,
                                world_size=info.world_size)
    val_loader = DataLoader(val_ds, batch_size=val_bs, shuffle=False, num_workers=0)

    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    model = DualDecoderUNet(cfg.model).to(device=device, memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    run = Run(cfg=cfg, info=info, device=device, amp_dtype=amp_dtype, memory_format=memory_format, model=model,
              trained=model, opt=opt, sched=None, scaler=scaler, train_ds=train_ds, sampler=sampler,
              val_loader=val_loader, data_desc=data_desc, log=JsonLog(Path(t.save_dir) / LOG, info.is_main),
              total_steps=t.epochs * sampler.steps_per_epoch)

    def factor(step: int) -> float:  # reads run.progress as it is then (a resume replaces it)
        return run.lr_scale(step)

    run.sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return run


def _limit_reached(run: Run) -> Optional[str]:
    """"max_steps" or "max_minutes" when that limit is reached, else None."""
    t = run.cfg.train
    if t.max_steps and run.progress.step >= t.max_steps:
        return "max_steps"
    return "max_minutes" if run.out_of_time() else None


def _start(run: Run) -> None:
    """Wrap the model for DDP, make the output folder, and say what runs where."""
    info, t = run.info, run.cfg.train
    if info.enabled:
        run.trained = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if info.is_main:
        run.save_dir.mkdir(parents=True, exist_ok=True)
        if not t.resume:  # a new run's log holds only it (restore-train asks for --overwrite first)
            run.log.path.unlink(missing_ok=True)
    run.say(f"device: {describe_device(run.device)}, precision {run.precision}, "
            f"{'channels-last' if t.channels_last else 'contiguous'}"
            + (f", {info.world_size} processes" if info.enabled else ""))
    run.say(f"data: {run.data_desc}")
    run.say(f"model: {count_parameters(run.model) / 1e6:.2f} M parameters, {json.dumps(asdict(run.cfg.model))}")
    run.log.write(type="start", step=run.progress.step, device=str(run.device), precision=run.precision,
                  world_size=info.world_size, config=config_to_dict(run.cfg), parameters=count_parameters(run.model))


def _train_epoch(run: Run) -> EpochResult:
    """One pass over this epoch's batches (from where a resumed run stopped), up to `max_steps`."""
    from tqdm import tqdm

    t, p = run.cfg.train, run.progress
    epoch = p.epoch
    run.sampler.set_epoch(epoch, skip=p.batch_in_epoch)
    run.train_ds.set_epoch(epoch)
    g = torch.Generator().manual_seed(t.seed * 7919 + epoch)  # worker seeds, per epoch
    loader = DataLoader(run.train_ds, batch_sampler=run.sampler, num_workers=run.cfg.data.num_workers,
                        worker_init_fn=seed_worker, generator=g, pin_memory=run.device.type == "cuda")
    run.trained.train()
    sum_lx = sum_lm = 0.0
    steps = 0
    speed = _Throughput()
    t0 = run.tick = _now()
    limit = None
    with tqdm(total=len(run.sampler), desc=f"epoch {epoch + 1}/{t.epochs}", disable=not (run.info.is_main and t.progress),
              unit="step", leave=False, dynamic_ncols=True) as bar:
        for batch in loader:
            loss, lx, lm, n = _train_step(run, batch, epoch)
            sum_lx, sum_lm, steps = sum_lx + lx, sum_lm + lm, steps + 1
            run.samples_per_s = speed.update(n)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{run.samples_per_s:.1f}", refresh=False)
            if p.step % t.log_every == 0:
                run.log.write(type="step", step=p.step, epoch=epoch + 1, loss=loss, lx=lx, lm=lm,
                              lr=run.sched.get_last_lr()[0], samples_per_s=run.samples_per_s)
            if t.checkpoint_every and p.step % t.checkpoint_every == 0:
                run.save_last()
            limit = _limit_reached(run)
            if limit:
                break
    complete = limit is None or p.batch_in_epoch >= run.sampler.steps_per_epoch
    if complete:
        p.epoch += 1
        p.batch_in_epoch = 0
    k = max(steps, 1)
    return EpochResult(number=epoch + 1, train_lx=sum_lx / k, train_lm=sum_lm / k, seconds=_now() - t0,
                       complete=complete, limit=limit)


def _now() -> float:
    """The training clock (`Progress.seconds`, `max_minutes`); one place, so tests can drive it."""
    return time.perf_counter()


def _train_step(run: Run, batch, epoch: int):
    """Forward, L = 2 Lx + Lm, backward, clip, step. Returns (loss, Lx, Lm, samples in the step, all ranks)."""
    t, info = run.cfg.train, run.info
    corrupted, clean, mask = batch
    x = normalize(corrupted.to(run.device, non_blocking=True)).contiguous(memory_format=run.memory_format)
    y = normalize(clean.to(run.device, non_blocking=True))  # (N, 3, H, W) in [-1, 1]
    m = mask.to(run.device, non_blocking=True)  # (N, 1, H, W) bool
    with torch.autocast(run.device.type, dtype=run.amp_dtype) if run.amp_dtype else nullcontext():
        pred, logits = run.trained(x)  # (N, 3, H, W), (N, 1, H, W)
    parts = restoration_loss(pred, logits, y, m, t.lx_reduction)
    # Mean over ranks: every process must agree to stop on a bad value, and logs show the whole
    # step, not one shard. The time since the last step rides along, so that under `max_minutes`
    # every rank sets the same learning rate and stops at the same step.
    now = _now()
    spent = parts.total.new_tensor(now - run.tick, dtype=torch.float32)
    stats = all_mean(torch.stack([parts.total.detach().float(), parts.lx.detach().float(), parts.lm.detach().float(),
                                  spent]), info)
    loss, lx, lm, seconds = (float(v) for v in stats.cpu())
    run.tick = now
    if not math.isfinite(loss):
        raise _non_finite(run, f"loss became {loss}", run.progress.step + 1, epoch + 1)
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(parts.total).backward()
    if t.grad_clip > 0:
        run.scaler.unscale_(run.opt)
        torch.nn.utils.clip_grad_norm_(run.trained.parameters(), t.grad_clip)
    run.scaler.step(run.opt)
    run.scaler.update()
    run.progress.seconds += seconds  # before the next step's learning rate is set
    run.sched.step()
    run.progress.step += 1
    run.progress.batch_in_epoch += 1
    return loss, lx, lm, x.shape[0] * info.world_size


class _Throughput:
    """Samples per second over a sliding window that forgets the start-up."""

    def __init__(self):
        self.start, self.samples, self.rate = time.perf_counter(), 0, float("nan")

    def update(self, n: int) -> float:
        self.samples += n
        now = time.perf_counter()
        if now - self.start > 0:
            self.rate = self.samples / (now - self.start)
        if self.samples >= 20 * n:
            self.start, self.samples = now, 0
        return self.rate


def _validate_and_save(run: Run, epoch: EpochResult) -> Dict[str, float]:
    """Validate rank 0's model, record the best and early-stopping figures, print, log and save."""
    t, p = run.cfg.train, run.progress
    sync_buffers(run.model, run.info)  # every rank validates and saves rank 0's exact model
    try:
        val = evaluate(run.model, run.val_loader, run.device, t.threshold)
    except NonFiniteOutputError:  # diverged weights: the same stop as a non-finite loss
        raise _non_finite(run, "validation outputs became NaN or infinite", p.step, epoch.number) from None
    improved = val["loss"] < p.best_loss
    if improved:
        p.best_loss, p.best_step = val["loss"], p.step
    if epoch.complete:  # early stopping counts whole epochs only, so a stop-and-resume does not change it
        if val["loss"] < p.early_stop_loss - t.min_delta:
            p.early_stop_loss, p.epochs_without_improvement = val["loss"], 0
        else:
            p.epochs_without_improvement += 1
    run.say(f"epoch {epoch.number}/{t.epochs} step {p.step}: train L1 {epoch.train_lx:.4f} BCE {epoch.train_lm:.4f} | "
            f"val L1 {val['l1_corrupted']:.4f} BCE {val['bce']:.4f} IoU {val['mask_iou']:.3f} "
            f"PSNR {val['psnr']:.2f} | {run.samples_per_s:.1f} samples/s, {epoch.seconds:.0f}s"
            + (" | best" if improved else "") + ("" if epoch.complete else " (partial epoch)"))
    run.log.write(type="epoch", epoch=epoch.number, step=p.step, complete=epoch.complete, train_lx=epoch.train_lx,
                  train_lm=epoch.train_lm, train_loss=IMAGE_WEIGHT * epoch.train_lx + epoch.train_lm, val=val,
                  best=improved, seconds=epoch.seconds, samples_per_s=run.samples_per_s)
    run.save_last(val)
    if improved and run.info.is_main:
        save_checkpoint(run.checkpoint(val), run.save_dir / BEST)
        save_release(run.save_dir / RELEASE, run.model, t.threshold)
    barrier(run.info)
    return val


def _should_stop_early(run: Run) -> bool:
    patience = run.cfg.train.patience
    if patience and run.progress.epochs_without_improvement >= patience:
        run.say(f"early stopping: no better validation loss for {patience} epochs")
        return True
    return False


def _summary(run: Run, stop_reason: str, val: Optional[Dict[str, float]]) -> Dict[str, Any]:
    d, p = run.save_dir, run.progress
    best = None
    if (d / BEST).exists():
        best = {"loss": p.best_loss, "step": p.best_step, "checkpoint": str(d / BEST), "release": str(d / RELEASE)}
    return {
        "stopped": stop_reason,
        "steps": p.step,
        "train_seconds": round(p.seconds, 1),
        "epochs_completed": p.epoch,
        "final": val,
        "best": best,
        "paths": {"last": str(d / LAST), "best": str(d / BEST), "release": str(d / RELEASE), "log": str(d / LOG)},
        "device": str(run.device),
        "precision": run.precision,
        "samples_per_s": run.samples_per_s,
        "weights_sha256": weights_sha256(run.model),
        "rank": run.info.rank,
    }


if __name__ == "__main__":
    # The command is restore_core.cli's, which imports this module: running it from here would
    # make the two import each other. torchrun starts the console script itself instead.
    import sys

    sys.exit("error: run restore-train under torchrun as: torchrun --nproc_per_node=N --no-python restore-train ...")
