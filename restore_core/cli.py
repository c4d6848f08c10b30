"""Command lines: `restore-data`, `restore-train`, `restore-validate`.

Each command parses its options and calls one library function. Exit codes: 0 success, 1 a user
error (one line naming the file or key, no traceback), 2 a usage error (click's own), 130 Ctrl-C.
Nothing heavy is imported at module load: `--help` and `--version` return at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from restore_toolkit.console import (
    COMMAND_SETTINGS,
    device_option,
    handle_errors,
    log_to_console,
    quiet_option,
    threads_option,
    version_option,
)


def _core_errors():
    """The library's named errors: one line, exit 1."""
    from restore_core.checkpoint import CheckpointError
    from restore_core.config import ConfigError
    from restore_core.data import DatasetError
    from restore_core.distributed import DeviceError
    from restore_core.photos import SourceError
    from restore_core.train import NonFiniteLossError

    return ConfigError, CheckpointError, DatasetError, SourceError, DeviceError, NonFiniteLossError


# ---------------------------------------------------------------------------------------------
# restore-data


@click.group(context_settings=COMMAND_SETTINGS)
@version_option("restore-data")
def data_cli():
    """Make datasets in the reference design's layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png."""


@data_cli.command("synth")
@click.argument("output", metavar="OUTPUT", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=1), required=True, help="Training samples.")
@click.option("--size", type=click.IntRange(min=8), required=True, help="Side of the square samples (px).")
@click.option("--seed", type=int, default=0, help="Same seed, same bytes.")
@click.option("--source", type=click.Path(), default=None, show_default="scikit-image's bundled photos",
              help="Folder of clean images.")
@click.option("--val-count", type=click.IntRange(min=1), default=None, show_default="COUNT/10",
              help="Validation samples, from held-out photos.")
@click.option("--config", "config_path", type=click.Path(), default=None, show_default="the built-in [corruption]",
              help="Take the [corruption] section (shapes, sizes, counts, fill) from this TOML file.")
@click.option("--overwrite", is_flag=True, help="Write into a root that already holds images.")
@quiet_option()
@handle_errors(_core_errors, "every file written is complete; run the same command with --overwrite to finish")
def synth(output, count, size, seed, source, val_count, config_path, overwrite, quiet):
    """Draw random shapes onto crops of clean photos and write (clean, corrupted, mask) triples
    under OUTPUT/train and OUTPUT/val.

    Validation samples come from photos held out of training, so validation measures images the
    model has never seen.
    """
    from restore_core.config import load_config
    from restore_core.data import synthesize_dataset

    corruption = load_config(config_path).corruption
    counts = synthesize_dataset(output, count, size, seed, source=source, val_count=val_count, corruption=corruption,
                                overwrite=overwrite, progress=not quiet and sys.stderr.isatty())
    click.echo(f"wrote {counts['train']} train and {counts['val']} val samples of {size}x{size} to {output}")


# ---------------------------------------------------------------------------------------------
# restore-train

# Option name -> (config key, built-in default shown in --help). tests/test_core_cli.py checks
# these defaults against `Config()`, so the help never lies about them.
TRAIN_OPTIONS = {
    "data": ("data.root", "none: synthesize on the fly"),
    "source": ("data.source", "scikit-image's bundled photos"),
    "size": ("data.size", 96),
    "epoch_samples": ("data.epoch_samples", 4096),
    "val_count": ("data.val_count", 64),
    "num_workers": ("data.num_workers", 2),
    "epochs": ("train.epochs", 25),
    "batch_size": ("train.batch_size", 16),
    "lr": ("train.lr", 3e-4),
    "max_steps": ("train.max_steps", 0),
    "patience": ("train.patience", 5),
    "seed": ("train.seed", 0),
    "threshold": ("train.threshold", 0.1),
    "device": ("train.device", "auto"),
    "precision": ("train.precision", "auto"),
    "channels_last": ("train.channels_last", True),
    "threads": ("train.threads", 0),
    "output": ("train.save_dir", "checkpoints"),
    "resume": ("train.resume", "none"),
    "init": ("train.init", "none"),
    "base_channels": ("model.base_channels", 24),
    "depth": ("model.depth", 4),
}


def _cfg_option(*names, key, help, **kw):
    """An option that overrides config key `TRAIN_OPTIONS[key][0]`; its help shows the key and default."""
    config_key, default = TRAIN_OPTIONS[key]
    if isinstance(default, bool):
        default = "on" if default else "off"
    return click.option(*names, key, default=None, show_default=f"{default}, config {config_key}", help=help, **kw)


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("--config", "config_path", type=click.Path(), default=None,
              show_default="built-in values = configs/default.toml",
              help="TOML config; command-line options override its keys.")
@_cfg_option("--data", key="data", type=click.Path(), help="Dataset root (ROOT/train, ROOT/val).")
@click.option("--synthetic", is_flag=True, help="Synthesize data on the fly even if the config names a root.")
@_cfg_option("--source", key="source", type=click.Path(), help="Clean images for on-the-fly synthesis.")
@_cfg_option("--epochs", key="epochs", type=click.IntRange(min=1), help="Epochs (the schedule spans them all).")
@_cfg_option("--batch-size", key="batch_size", type=click.IntRange(min=1), help="Samples per step (per process).")
@_cfg_option("--lr", key="lr", type=click.FloatRange(min=0, min_open=True), help="Peak AdamW learning rate.")
@_cfg_option("--num-workers", key="num_workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@_cfg_option("-o", "--output", key="output", type=click.Path(file_okay=False),
             help="Folder for last.ckpt, best.ckpt, best.safetensors and train_log.jsonl.")
@click.option("--save-dir", "save_dir_alias", type=click.Path(file_okay=False), default=None, hidden=True)
@_cfg_option("--device", key="device", type=click.Choice(["auto", "cpu", "cuda"]),
             help="auto: CUDA when it really works; cuda: fail if it does not (never a silent CPU run).")
@_cfg_option("--resume", key="resume", type=click.Path(),
             help="Continue exactly from a last.ckpt (its config is used unless --config is given).")
@_cfg_option("--init", key="init", type=str,
             help="Fine-tune: start from these weights (.ckpt, .safetensors or 'default', the shipped model) "
                  "with a new schedule.")
@_cfg_option("--max-steps", key="max_steps", type=click.IntRange(min=0),
             help="Stop after this many steps (the schedule is unchanged); 0: no limit.")
@_cfg_option("--size", key="size", type=click.IntRange(min=1), help="Training crop side (multiple of the model's stride).")
@_cfg_option("--epoch-samples", key="epoch_samples", type=click.IntRange(min=1), help="On-the-fly samples per epoch.")
@_cfg_option("--val-count", key="val_count", type=click.IntRange(min=1), help="On-the-fly validation samples.")
@_cfg_option("--base-channels", key="base_channels", type=click.IntRange(min=1), help="Model width.")
@_cfg_option("--depth", key="depth", type=click.IntRange(min=1), help="Model depth (stride = 2**depth).")
@_cfg_option("--precision", key="precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
             help="auto: bf16/fp16 AMP on CUDA, fp32 on CPU.")
@click.option("--bf16", is_flag=True, help="Shorthand for --precision bf16 (about 2x faster on CPUs with bf16).")
@_cfg_option("--channels-last/--no-channels-last", key="channels_last", help="NHWC memory format for the model.")
@_cfg_option("--seed", key="seed", type=int, help="Seeds weights, data order, augmentation and corruption.")
@_cfg_option("--patience", key="patience", type=click.IntRange(min=0),
             help="Early stopping after this many epochs without a better validation loss; 0: off.")
@_cfg_option("--threshold", key="threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
             help="Mask threshold saved with the model.")
@_cfg_option("--threads", key="threads", type=click.IntRange(min=0),
             help="CPU threads for torch; 0: all cores this process may use.")
@quiet_option("No progress bar (epoch lines and the JSON log remain).", hidden_alias="--no-progress")
@click.option("--report", type=click.Path(dir_okay=False), default=None, show_default="none",
              help="Also write the run's summary as JSON to this file.")
@click.option("--summary-json", "report_alias", type=click.Path(dir_okay=False), default=None, hidden=True)
@version_option("restore-train")
@handle_errors(_core_errors, "the last checkpoint written is complete and loadable; "
                             "restore-train --resume OUTPUT/last.ckpt continues")
def train_cli(config_path, data, synthetic, source, epochs, batch_size, lr, num_workers, output, save_dir_alias, device,
              resume, init, max_steps, size, epoch_samples, val_count, base_channels, depth, precision, bf16, channels_last,
              seed, patience, threshold, threads, quiet, quiet_alias, report, report_alias):
    """Train the dual-decoder U-Net: config file, then command-line overrides.

    Without --data, samples are synthesized on the fly from scikit-image's photos (or --source).
    Writes OUTPUT/last.ckpt, best.ckpt, best.safetensors and train_log.jsonl. Multi-GPU:
    torchrun --nproc_per_node=N --no-python restore-train [options].
    """
    from restore_core.checkpoint import CheckpointError, load_checkpoint
    from restore_core.config import ConfigError, apply_overrides, config_from_dict, load_config
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
    given = dict(data=data, source=source, size=size, epoch_samples=epoch_samples, val_count=val_count,
                 num_workers=num_workers, epochs=epochs, batch_size=batch_size, lr=lr, max_steps=max_steps,
                 patience=patience, seed=seed, threshold=threshold, device=device,
                 precision="bf16" if bf16 else precision, channels_last=channels_last, threads=threads,
                 output=output or save_dir_alias, resume=resume, init=init, base_channels=base_channels, depth=depth)
    overrides = {TRAIN_OPTIONS[name][0]: value for name, value in given.items()}
    overrides["train.progress"] = False if (quiet or quiet_alias) else None
    cfg = apply_overrides(cfg, overrides)
    if synthetic:
        cfg.data.root = None
    log_to_console("restore_core")
    summary = train(cfg)
    if summary["rank"] != 0:
        return
    if summary["best"]:
        b = summary["best"]
        click.echo(f"best: {b['checkpoint']} (val loss {b['loss']:.4f} at step {b['step']}), release {b['release']}")
    click.echo(f"stopped ({summary['stopped']}) after {summary['steps']} steps; last: {summary['paths']['last']}")
    if report or report_alias:
        atomic_write_text(report or report_alias, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# restore-validate


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("--checkpoint", type=click.Path(), required=True,
              help="best.ckpt, last.ckpt, a .safetensors release, or 'default' for the shipped model.")
@click.option("--data", type=click.Path(), default=None, show_default="required unless --heldout",
              help="Dataset root; ROOT/val is used.")
@click.option("--heldout", is_flag=True,
              help="Score on the seeded held-out photo set against the identity and Telea references instead "
                   "of a dataset root (writes heldout.json, heldout.md, worst.png, typical.png).")
@click.option("--per-photo", type=click.IntRange(min=1), default=12, show_default=True,
              help="With --heldout: corrupted crops per held-out photo.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None, show_default="required",
              help="Folder for predicted_images/, reconstructed_images/, binary_masks/ and metrics.json "
                   "(with --heldout: the held-out report).")
@click.option("--out-dir", "output_alias", type=click.Path(file_okay=False), hidden=True)
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              show_default="the model's, 0.1", help="Mask threshold.")
@device_option()
@threads_option("torch")
@quiet_option()
@version_option("restore-validate")
@handle_errors(_core_errors, "images written so far are complete; metrics.json was not written")
def validate_cli(checkpoint, data, heldout, per_photo, output, output_alias, threshold, device, threads, quiet):
    """Save predicted_images/, reconstructed_images/, binary_masks/ and metrics.json for ROOT/val,
    or with --heldout score the model on photos training never saw."""
    import torch

    output = output or output_alias
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    if heldout == (data is not None):
        raise click.UsageError("give either --data ROOT or --heldout")
    if threads:
        torch.set_num_threads(threads)
    if heldout:
        from restore_core.validate import validate_heldout

        if threshold is not None:
            raise click.UsageError("--threshold applies to --data; --heldout scores the model as shipped")
        validate_heldout(checkpoint, output, per_photo=per_photo, device=device)
        click.echo((Path(output) / "heldout.md").read_text(encoding="utf-8"), nl=False)
        click.echo(f"wrote {output}/{{heldout.json,heldout.md,worst.png,typical.png}}")
        return
    from restore_core.validate import validate

    report = validate(checkpoint, data, output, threshold=threshold, device=device,
                      progress=not quiet and sys.stderr.isatty())
    m = report["metrics"]
    click.echo(f"{report['samples']} samples, threshold {report['threshold']}: mask IoU {m['mask_iou']:.4f} "
               f"F1 {m['mask_f1']:.4f} BCE {m['bce']:.4f} | L1 on corrupted {m['l1_corrupted']:.4f} | "
               f"PSNR {m['psnr']:.2f} dB (in mask {m['psnr_in_mask'] if m['psnr_in_mask'] is None else round(m['psnr_in_mask'], 2)}"
               f" dB), {100 * m['share_psnr_at_least']:.0f}% >= {m['psnr_good_db']:.0f} dB")
    click.echo(f"wrote {output}/{{predicted_images,reconstructed_images,binary_masks}} and {output}/metrics.json")
