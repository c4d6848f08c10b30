"""Command lines: `restore-data`, `restore-train`, `restore-validate`.

Each command parses its options and calls one library function. Exit codes: 0 success, 1 a user
error (one line naming the file or key, no traceback), 2 a usage error (click's own), 130 Ctrl-C.
Nothing heavy is imported at module load: `--help` and `--version` return at once.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, NamedTuple, Tuple

import click

from restore_toolkit.console import (
    COMMAND_SETTINGS,
    NamedPath,
    capped_threads,
    device_option,
    finite,
    handle_errors,
    log_to_console,
    quiet_option,
    renamed_option,
    threads_option,
    version_option,
)


def _core_errors():
    """The library's named errors: one line, exit 1."""
    from restore_core.checkpoint import CheckpointError
    from restore_core.config import ConfigError
    from restore_core.dataset_check import DatasetError
    from restore_core.distributed import DeviceError
    from restore_core.metrics import NonFiniteOutputError
    from restore_core.photos import SourceError
    from restore_core.train import NonFiniteLossError

    return ConfigError, CheckpointError, DatasetError, SourceError, DeviceError, NonFiniteLossError, NonFiniteOutputError


SEEDS = click.IntRange(0, 2**63 - 1)  # what torch.manual_seed takes


@contextlib.contextmanager
def _unmade_on_failure(folder):
    """Remove the output folder the checks made, if still empty, when the command then fails."""
    made = not Path(folder).exists()
    try:
        yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                Path(folder).rmdir()
        raise


# ---------------------------------------------------------------------------------------------
# restore-data


@click.group(context_settings=COMMAND_SETTINGS)
@version_option("restore-data")
def data_cli():
    """Make datasets in the reference design's layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png."""


@data_cli.command("synth")
@click.argument("output", metavar="OUTPUT", type=NamedPath(file_okay=False))
@click.option("--count", type=click.IntRange(min=1), required=True, help="Training samples.")
@click.option("--size", type=click.IntRange(min=8), required=True, help="Side of the square samples (px).")
@click.option("--seed", type=SEEDS, default=0, help="Same seed, same bytes.")
@click.option("--source", type=NamedPath(), default=None, show_default="scikit-image's bundled photos",
              help="Folder of clean images.")
@click.option("--val-count", type=click.IntRange(min=1), default=None, show_default="COUNT/10",
              help="Validation samples, from held-out photos.")
@click.option("--config", "config_path", type=NamedPath(), default=None, show_default="the built-in [corruption]",
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
    from restore_core.footprint import check_synth
    from restore_toolkit.targets import check_folder

    corruption = load_config(config_path).corruption
    check_synth(size)  # a mistyped --size is said now, not found out by swapping
    with _unmade_on_failure(output):
        check_folder(output, "OUTPUT", overwrite)  # empty text, a file, an unwritable place: said before any work
        counts = synthesize_dataset(output, count, size, seed, source=source, val_count=val_count,
                                    corruption=corruption, overwrite=overwrite, progress=not quiet and sys.stderr.isatty())
    click.echo(f"wrote {counts['train']} train and {counts['val']} val samples of {size}x{size} to {output}")


# ---------------------------------------------------------------------------------------------
# restore-train

class Shortcut(NamedTuple):
    """A flag for a setting changed often: the same as `--set KEY=VALUE`."""

    key: str  # the config key it sets
    flags: Tuple[str, ...]
    type: Any  # the click type (checked again against the config's annotation)
    shown: Any  # the built-in default shown in --help; tests/test_cli_conventions.py checks it against Config()
    help: str


# Any config key can be set with --set; these few settings also have flags of their own.
SHORTCUTS = {
    "data": Shortcut("data.root", ("--data",), NamedPath(), "none: synthesize on the fly",
                     "Dataset root (ROOT/train, ROOT/val)."),
    "source": Shortcut("data.source", ("--source",), NamedPath(), "scikit-image's bundled photos",
                       "Clean images for on-the-fly synthesis."),
    "epochs": Shortcut("train.epochs", ("--epochs",), click.IntRange(min=1), 25, "Epochs (the schedule spans them all)."),
    "batch_size": Shortcut("train.batch_size", ("--batch-size",), click.IntRange(min=1), 16,
                           "Samples per step (per process)."),
    "lr": Shortcut("train.lr", ("--lr",), click.FloatRange(min=0, min_open=True), 3e-4, "Peak AdamW learning rate."),
    "max_steps": Shortcut("train.max_steps", ("--max-steps",), click.IntRange(min=0), 0,
                          "Stop after this many steps (the schedule is unchanged); 0: no limit."),
    "max_minutes": Shortcut("train.max_minutes", ("--max-minutes",), click.FloatRange(min=0), 0,
                            "Stop after this many minutes of training, the schedule decayed by then; 0: no limit."),
    "seed": Shortcut("train.seed", ("--seed",), SEEDS, 0, "Seeds weights, data order, augmentation and corruption."),
    "device": Shortcut("train.device", ("--device",), click.Choice(["auto", "cpu", "cuda"]), "auto",
                       "auto: CUDA when it really works; cuda: fail if it does not (never a silent CPU run)."),
    "precision": Shortcut("train.precision", ("--precision",), click.Choice(["auto", "fp32", "bf16", "fp16"]), "auto",
                          "auto: bf16/fp16 AMP on CUDA, fp32 on CPU; bf16 is about 2x faster on CPUs with native bf16."),
    "threads": Shortcut("train.threads", ("--threads",), click.IntRange(min=0), 0,
                        "CPU threads for torch; 0: all cores this process may use."),
    "output": Shortcut("train.save_dir", ("-o", "--output"), NamedPath(file_okay=False), "checkpoints",
                       "Folder for last.ckpt, best.ckpt, best.safetensors and train_log.jsonl; one that holds "
                       "a run is refused unless --overwrite (or --resume from its last.ckpt)."),
    "resume": Shortcut("train.resume", ("--resume",), NamedPath(), "none",
                       "Continue exactly from a last.ckpt (its config is used unless --config is given)."),
    "init": Shortcut("train.init", ("--init",), NamedPath(what="a model file or 'default'"), "none",
                     "Fine-tune: start from these weights (.ckpt, .safetensors or 'default', the shipped model) "
                     "with a new schedule."),
}

# Flags of earlier releases whose keys are now set with --set: hidden, kept for one release.
LEGACY_SHORTCUTS = {
    "--size": "data.size", "--epoch-samples": "data.epoch_samples", "--val-count": "data.val_count",
    "--num-workers": "data.num_workers", "--patience": "train.patience", "--threshold": "train.threshold",
    "--base-channels": "model.base_channels", "--depth": "model.depth",
}
# Other older spellings, hidden: --save-dir (-o), --summary-json (--report), --bf16 (--precision bf16),
# --no-progress (-q), --channels-last/--no-channels-last (--set train.channels_last=...).


def _shortcut_options(fn):
    """Add SHORTCUTS (visible) and LEGACY_SHORTCUTS (hidden, read as --set text) to a command."""
    for name, s in reversed(SHORTCUTS.items()):
        shown = ("on" if s.shown else "off") if isinstance(s.shown, bool) else s.shown
        fn = click.option(*s.flags, name, type=s.type, default=None, show_default=f"{shown}",
                          help=f"{s.help} Same as --set {s.key}=VALUE.")(fn)
    for flag, key in LEGACY_SHORTCUTS.items():
        fn = click.option(flag, "legacy_" + key.replace(".", "_"), type=str, default=None, hidden=True)(fn)
    return click.option("--channels-last/--no-channels-last", "legacy_train_channels_last", default=None,
                        hidden=True)(fn)


def _starting_config(config_path, resume):
    """The config file's values; without one, a resumed checkpoint's own config; else the defaults."""
    from restore_core.checkpoint import CheckpointError, load_checkpoint
    from restore_core.config import ConfigError, config_from_dict, load_config

    if config_path is not None or resume is None:
        return load_config(config_path)
    try:
        return config_from_dict(load_checkpoint(resume)["config"])
    except KeyError:
        raise CheckpointError(f"{resume}: holds no training config; pass --config") from None
    except ConfigError as e:
        raise ConfigError(f"{resume}: {e}") from None


def _command_line_settings(shortcuts: dict, legacy: dict, settings: Tuple[str, ...]) -> Dict[str, Any]:
    """Config key -> value from the shortcut flags, the hidden older flags and every --set.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or one key set twice.
    """
    from restore_core.config import ConfigError
    from restore_core.config_text import parse_setting, parse_value

    given = {SHORTCUTS[name].key: v for name, v in shortcuts.items() if v is not None}
    for name, value in legacy.items():
        if value is not None:
            key = name[len("legacy_"):].replace("_", ".", 1)
            given[key] = parse_value(key, value) if isinstance(value, str) else value
    for text in settings:
        key, value = parse_setting(text)
        if key in given and given[key] != value:
            raise ConfigError(f"config key '{key}' is given twice on the command line (--set {text} "
                              f"and {given[key]!r})")
        given[key] = value
    return given


def _warn_if_bf16_is_emulated(precision, device) -> None:
    if precision != "bf16" or device == "cuda":
        return
    import torch

    from restore_core.cpu import bf16_emulated_reason

    slow = bf16_emulated_reason() if device == "cpu" or not torch.cuda.is_available() else None
    if slow:
        click.echo(f"warning: {slow}; on the CPU train in fp32 (--precision fp32)", err=True)


def _check_targets(cfg, config_path, report, overwrite: bool):
    """Before any work: refuse an output folder holding another run (unless --overwrite, or --resume from its
    last.ckpt), a --report replacing a user's file or the run's own, unwritable places. The report's Path or None."""
    from restore_core.run_state import is_run_summary
    from restore_core.train import RUN_FILES
    from restore_toolkit.targets import check_file, check_folder

    t = cfg.train
    continues = t.resume is not None and Path(t.resume).resolve().parent == Path(t.save_dir).resolve()
    check_folder(t.save_dir, "--output", overwrite or continues, writes=RUN_FILES)
    if report is None:
        return None
    inputs = [config_path, t.resume, None if t.init == "default" else t.init]
    return check_file(report, "--report", overwrite, inputs=inputs, outputs=[Path(t.save_dir) / n for n in RUN_FILES],
                      ours=is_run_summary)  # an earlier run's report is replaced


def _train_saying_what_was_kept(cfg, report) -> None:
    """Train and print the summary; on Ctrl-C one line says which checkpoint, if any, continues the run (exit 130)."""
    from restore_core.run_state import file_stamp
    from restore_core.train import LAST, train

    last = Path(cfg.train.save_dir) / LAST
    before = file_stamp(last)
    try:
        summary = train(cfg)
        if summary["rank"] == 0:
            _print_summary(summary, report)
    except KeyboardInterrupt:
        if file_stamp(last) not in (None, before):
            kept = f"the last checkpoint written is complete and loadable; restore-train --resume {last} continues"
        elif cfg.train.resume:
            kept = f"no new checkpoint was written; restore-train --resume {cfg.train.resume} continues"
        else:
            kept = f"no checkpoint was written yet in {last.parent}; nothing to resume"
        click.echo(f"interrupted: {kept}", err=True)
        sys.exit(130)


def _print_summary(summary: dict, report) -> None:
    from restore_core.fileio import atomic_write_text

    if summary["best"]:
        b = summary["best"]
        click.echo(f"best: {b['checkpoint']} (val loss {b['loss']:.4f} at step {b['step']}), release {b['release']}")
    click.echo(f"stopped ({summary['stopped']}) after {summary['steps']} steps; last: {summary['paths']['last']}")
    if report:
        atomic_write_text(report, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("--config", "config_path", type=NamedPath(), default=None,
              show_default="built-in values = configs/default.toml",
              help="TOML config; --set and the flags below override its keys.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", default=(), show_default="none",
              help="Set any config key, e.g. --set data.jpeg=0.5 --set corruption.count=[1,6] "
                   "(repeatable; typed as in the config: numbers, true/false, lists, strings; 'none' unsets).")
@click.option("--synthetic", is_flag=True, help="Synthesize data on the fly even if the config names a root.")
@_shortcut_options
@click.option("--save-dir", "save_dir_alias", type=NamedPath(file_okay=False), default=None, hidden=True)
@click.option("--bf16", is_flag=True, hidden=True)
@quiet_option("No progress bar (epoch lines and the JSON log remain).", hidden_alias="--no-progress")
@click.option("--report", type=NamedPath(dir_okay=False), default=None, show_default="none",
              help="Also write the run's summary as JSON to this file.")
@click.option("--summary-json", "report_alias", type=NamedPath(dir_okay=False), default=None, hidden=True)
@click.option("--overwrite", is_flag=True,
              help="Start a new run in an --output folder that holds an earlier run (its checkpoints and log "
                   "are replaced) and replace an existing --report file.")
@version_option("restore-train")
@handle_errors(_core_errors, "no checkpoint was written yet")
def train_cli(config_path, settings, synthetic, save_dir_alias, bf16, quiet, quiet_alias, report, report_alias,
              overwrite, **flags):
    """Train the dual-decoder U-Net: config file, then command-line overrides.

    Without --data, samples are synthesized on the fly from scikit-image's photos (or --source).
    Writes OUTPUT/last.ckpt, best.ckpt, best.safetensors and train_log.jsonl. Multi-GPU:
    torchrun --nproc_per_node=N --no-python restore-train [options].
    """
    from restore_core.config import apply_overrides
    from restore_core.footprint import check_training

    if bf16 and flags["precision"] not in (None, "bf16"):
        raise click.UsageError("--bf16 (the older spelling of --precision bf16) contradicts --precision")
    flags["precision"] = "bf16" if bf16 else flags["precision"]
    flags["output"] = save_dir_alias if flags["output"] is None else flags["output"]  # '' is refused, not the default
    legacy = {k: flags.pop(k) for k in list(flags) if k.startswith("legacy_")}
    overrides = _command_line_settings(flags, legacy, settings)
    cfg = _starting_config(config_path, overrides.get("train.resume"))
    _warn_if_bf16_is_emulated(overrides.get("train.precision"), overrides.get("train.device"))
    if quiet or quiet_alias:
        overrides["train.progress"] = False
    cfg = apply_overrides(cfg, overrides)
    if synthetic:
        cfg.data.root = None
    cfg.train.threads = capped_threads(cfg.train.threads)
    check_training(cfg)  # a step that could never fit is said before the model, the data or the folder
    with _unmade_on_failure(cfg.train.save_dir):
        report = _check_targets(cfg, config_path, report_alias if report is None else report, overwrite)
        log_to_console("restore_core")
        _train_saying_what_was_kept(cfg, report)


# ---------------------------------------------------------------------------------------------
# restore-validate

HELDOUT_FILES = ("heldout.json", "heldout.md", "worst.png", "typical.png")


@click.command(context_settings=COMMAND_SETTINGS)
@renamed_option("--model", "model", type=NamedPath(what="a model file or 'default'"), required=True, old=["--checkpoint"],
                help="best.ckpt, last.ckpt, a .safetensors release, or 'default' for the shipped model.")
@click.option("--data", type=NamedPath(), default=None, show_default="required unless --heldout",
              help="Dataset root; ROOT/val is used.")
@click.option("--heldout", is_flag=True,
              help="Score on the seeded held-out photo set against the identity and Telea references instead "
                   "of a dataset root (writes heldout.json, heldout.md, worst.png, typical.png).")
@renamed_option("--heldout-per-photo", "heldout_per_photo", type=click.IntRange(min=1), default=12,
                show_default=True, old=["--per-photo"], help="With --heldout: corrupted crops per held-out photo.")
@renamed_option("-o", "--output", "output", type=NamedPath(file_okay=False), required=True, old=["--out-dir"],
                help="Folder for predicted_images/, reconstructed_images/, binary_masks/ and metrics.json "
                     "(with --heldout: the held-out report).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              callback=finite, show_default="the model's, 0.1",
              help="Mask threshold.")
@click.option("--overwrite", is_flag=True, help="Replace the results an earlier run left in the --output folder.")
@device_option()
@threads_option("torch")
@quiet_option()
@version_option("restore-validate")
@handle_errors(_core_errors, "images written so far are complete; metrics.json was not written")
def validate_cli(model, data, heldout, heldout_per_photo, output, threshold, overwrite, device, threads, quiet):
    """Save predicted_images/, reconstructed_images/, binary_masks/ and metrics.json for ROOT/val,
    or with --heldout score the model on photos training never saw."""
    import torch

    from restore_core.validate import OUTPUT_DIRS, validate, validate_heldout
    from restore_toolkit.targets import check_folder

    if heldout == (data is not None):
        raise click.UsageError("give either --data ROOT or --heldout")
    if heldout and threshold is not None:
        raise click.UsageError("--threshold applies to --data; --heldout scores the model as shipped")
    threads = capped_threads(threads)
    if threads:
        torch.set_num_threads(threads)
    with _unmade_on_failure(output):
        check_folder(output, "--output", overwrite, writes=HELDOUT_FILES if heldout else (*OUTPUT_DIRS, "metrics.json"))
        if heldout:
            validate_heldout(model, output, per_photo=heldout_per_photo, device=device)
        else:
            report = validate(model, data, output, threshold=threshold, device=device,
                              progress=not quiet and sys.stderr.isatty())
    if heldout:
        click.echo((Path(output) / "heldout.md").read_text(encoding="utf-8"), nl=False)
        click.echo(f"wrote {output}/{{heldout.json,heldout.md,worst.png,typical.png}}")
        return
    m = report["metrics"]
    click.echo(f"{report['samples']} samples, threshold {report['threshold']}: mask IoU {m['mask_iou']:.4f} "
               f"F1 {m['mask_f1']:.4f} BCE {m['bce']:.4f} | L1 on corrupted {m['l1_corrupted']:.4f} | "
               f"PSNR {m['psnr']:.2f} dB (in mask {m['psnr_in_mask'] if m['psnr_in_mask'] is None else round(m['psnr_in_mask'], 2)}"
               f" dB), {100 * m['share_psnr_at_least']:.0f}% >= {m['psnr_good_db']:.0f} dB")
    click.echo(f"wrote {output}/{{predicted_images,reconstructed_images,binary_masks}} and {output}/metrics.json")
