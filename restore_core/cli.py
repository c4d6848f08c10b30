"""Command lines: `restore-data`, `restore-train`, `restore-validate`.

Each command parses its options and calls one library function. Exit codes: 0 success, 1 a user
error (one line naming the file or key, no traceback), 2 a usage error (click's own).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from restore_core.checkpoint import CheckpointError
from restore_core.config import ConfigError


def _user_errors(fn):
    """Turn the library's named errors into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from restore_core.data import DatasetError
        from restore_core.distributed import DeviceError
        from restore_core.photos import SourceError
        from restore_core.train import NonFiniteLossError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, CheckpointError, DatasetError, SourceError, DeviceError, NonFiniteLossError) as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: the last checkpoint written is complete and loadable", err=True)
            sys.exit(130)

    return wrapper


# ---------------------------------------------------------------------------------------------
# restore-data


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def data_cli():
    """Make datasets in the reference design's layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png."""


@data_cli.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=1), required=True, help="Training samples.")
@click.option("--size", type=click.IntRange(min=8), required=True, help="Side of the square samples (px).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--source", type=click.Path(), default=None,
              help="Folder of clean images (default: scikit-image's bundled photos).")
@click.option("--val-count", type=click.IntRange(min=1), default=None,
              help="Validation samples, from held-out photos [default: count/10].")
@click.option("--config", "config_path", type=click.Path(), default=None,
              help="Take the [corruption] section (shapes, sizes, counts, fill) from this TOML file.")
@click.option("--overwrite", is_flag=True, help="Write into a root that already holds images.")
@_user_errors
def synth(out, count, size, seed, source, val_count, config_path, overwrite):
    """Draw random shapes onto crops of clean photos and write (clean, corrupted, mask) triples.

    Validation samples come from photos held out of training, so validation measures images the
    model has never seen.
    """
    from restore_core.config import load_config
    from restore_core.data import synthesize_dataset

    corruption = load_config(config_path).corruption
    counts = synthesize_dataset(out, count, size, seed, source=source, val_count=val_count,
                                corruption=corruption, overwrite=overwrite, progress=sys.stderr.isatty())
    click.echo(f"wrote {counts['train']} train and {counts['val']} val samples of {size}x{size} to {out}")


# ---------------------------------------------------------------------------------------------
# restore-train


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(), default=None,
              help="TOML config (see configs/default.toml; its values are the defaults).")
@click.option("--data", type=click.Path(), default=None, help="Dataset root (ROOT/train, ROOT/val).")
@click.option("--synthetic", is_flag=True, help="Synthesize data on the fly even if the config names a root.")
@click.option("--source", type=click.Path(), default=None, help="Clean images for on-the-fly synthesis.")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--num-workers", type=int, default=None)
@click.option("--save-dir", type=click.Path(file_okay=False), default=None)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
@click.option("--resume", type=click.Path(), default=None,
              help="Continue exactly from a last.ckpt (its config is used unless --config is given).")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps (the schedule is unchanged).")
@click.option("--size", type=int, default=None, help="Training crop side (multiple of the model's stride).")
@click.option("--epoch-samples", type=int, default=None, help="On-the-fly samples per epoch.")
@click.option("--val-count", type=int, default=None, help="On-the-fly validation samples.")
@click.option("--base-channels", type=int, default=None, help="Model width.")
@click.option("--depth", type=int, default=None, help="Model depth (stride = 2**depth).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=None,
              help="auto: bf16/fp16 AMP on CUDA, fp32 on CPU.")
@click.option("--bf16", is_flag=True, help="Shorthand for --precision bf16 (about 2x faster on CPUs with bf16).")
@click.option("--channels-last/--no-channels-last", default=None)
@click.option("--seed", type=int, default=None)
@click.option("--patience", type=int, default=None, help="Early stopping patience in epochs (0: off).")
@click.option("--threshold", type=float, default=None, help="Mask threshold saved with the model.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (0: one per core).")
@click.option("--no-progress", is_flag=True, help="No progress bar (epoch lines and the JSON log remain).")
@click.option("--summary-json", type=click.Path(dir_okay=False), default=None, help="Also write the summary here.")
@_user_errors
def train_cli(config_path, data, synthetic, source, epochs, batch_size, lr, num_workers, save_dir, device, resume,
              max_steps, size, epoch_samples, val_count, base_channels, depth, precision, bf16, channels_last, seed,
              patience, threshold, threads, no_progress, summary_json):
    """Train the dual-decoder U-Net: config file, then command-line overrides.

    Without --data, samples are synthesized on the fly from scikit-image's photos (or --source).
    Writes SAVE_DIR/last.ckpt, best.ckpt, best.safetensors and train_log.jsonl. Multi-GPU:
    torchrun --nproc_per_node=N -m restore_core.train [options].
    """
    from restore_core.checkpoint import load_checkpoint
    from restore_core.config import apply_overrides, config_from_dict, load_config
    from restore_core.fileio import atomic_write_text
    from restore_core.train import train

    if config_path is not None or resume is None:
        cfg = load_config(config_path)
    else:
        try:
            cfg = config_from_dict(load_checkpoint(resume)["config"])
        except KeyError:
            raise CheckpointError(f"{resume}: holds no training config; pass --config") from None
        except ConfigError as e:
            raise ConfigError(f"{resume}: {e}") from None
    if bf16 and precision not in (None, "bf16"):
        raise click.UsageError("--bf16 contradicts --precision")
    if (bf16 or precision == "bf16") and device != "cuda":
        import torch

        from restore_core.cpu import bf16_emulated_reason

        slow = bf16_emulated_reason() if device == "cpu" or not torch.cuda.is_available() else None
        if slow:
            click.echo(f"warning: {slow}; on the CPU train in fp32 (drop --bf16)", err=True)
    overrides = {
        "data.root": data, "data.source": source, "data.num_workers": num_workers, "data.size": size,
        "data.epoch_samples": epoch_samples, "data.val_count": val_count,
        "train.epochs": epochs, "train.batch_size": batch_size, "train.lr": lr, "train.save_dir": save_dir,
        "train.device": device, "train.resume": resume, "train.max_steps": max_steps,
        "train.precision": "bf16" if bf16 else precision, "train.channels_last": channels_last,
        "train.seed": seed, "train.patience": patience, "train.threshold": threshold,
        "model.base_channels": base_channels, "model.depth": depth,
        "train.progress": False if no_progress else None, "train.threads": threads,
    }
    cfg = apply_overrides(cfg, overrides)
    if synthetic:
        cfg.data.root = None
    summary = train(cfg)
    if summary["rank"] != 0:
        return
    if summary["best"]:
        b = summary["best"]
        click.echo(f"best: {b['checkpoint']} (val loss {b['loss']:.4f} at step {b['step']}), release {b['release']}")
    click.echo(f"stopped ({summary['stopped']}) after {summary['steps']} steps; last: {summary['paths']['last']}")
    if summary_json:
        atomic_write_text(summary_json, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# restore-validate


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", type=click.Path(), required=True,
              help="best.ckpt, last.ckpt, a .safetensors release, or 'default' for the shipped model.")
@click.option("--data", type=click.Path(), default=None, help="Dataset root; ROOT/val is used (or give --heldout).")
@click.option("--heldout", is_flag=True,
              help="Score on the seeded held-out photo set against the identity and Telea references instead "
                   "of a dataset root (writes heldout.json, heldout.md, worst.png, typical.png).")
@click.option("--per-photo", type=click.IntRange(min=1), default=12, show_default=True,
              help="With --heldout: corrupted crops per held-out photo.")
@click.option("--out-dir", type=click.Path(file_okay=False), required=True, help="Where images and metrics go.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="Mask threshold [default: the model's, 0.1].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_user_errors
def validate_cli(checkpoint, data, heldout, per_photo, out_dir, threshold, device):
    """Save predicted_images/, reconstructed_images/, binary_masks/ and metrics.json for ROOT/val,
    or with --heldout score the model on photos training never saw."""
    if heldout == (data is not None):
        raise click.UsageError("give either --data ROOT or --heldout")
    if heldout:
        from restore_core.validate import validate_heldout

        if threshold is not None:
            raise click.UsageError("--threshold applies to --data; --heldout scores the model as shipped")
        validate_heldout(checkpoint, out_dir, per_photo=per_photo, device=device)
        click.echo((Path(out_dir) / "heldout.md").read_text(encoding="utf-8"), nl=False)
        click.echo(f"wrote {out_dir}/{{heldout.json,heldout.md,worst.png,typical.png}}")
        return
    from restore_core.validate import validate

    report = validate(checkpoint, data, out_dir, threshold=threshold, device=device, progress=sys.stderr.isatty())
    m = report["metrics"]
    click.echo(f"{report['samples']} samples, threshold {report['threshold']}: mask IoU {m['mask_iou']:.4f} "
               f"F1 {m['mask_f1']:.4f} BCE {m['bce']:.4f} | L1 on corrupted {m['l1_corrupted']:.4f} | "
               f"PSNR {m['psnr']:.2f} dB (in mask {m['psnr_in_mask'] if m['psnr_in_mask'] is None else round(m['psnr_in_mask'], 2)}"
               f" dB), {100 * m['share_psnr_at_least']:.0f}% >= {m['psnr_good_db']:.0f} dB")
    click.echo(f"wrote {out_dir}/{{predicted_images,reconstructed_images,binary_masks}} and {out_dir}/metrics.json")
