"""`restore-demo`: the shipped default model on photos it never saw, in seconds, no PyTorch.

    restore-demo            # ./restore-demo/contact_sheet.png from the default model
    restore-demo --train    # the whole toolkit: train a small model of your own, export, restore

The restoring stages (samples, restore, sheet) are `runtime.demo`'s. With --train, two stages
come between: `restore-train` briefly on on-the-fly synthetic data (an unfinished training is
resumed, a finished one reused) and `restore-export onnx`. Every command is printed before it
runs, so the demo doubles as a tutorial. Only --train imports PyTorch (in the commands it runs);
the default path needs onnxruntime, numpy and Pillow, so nothing here imports the trainer or
the exporter at module level.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Optional

import click

from restore_toolkit.console import COMMAND_SETTINGS, NamedPath, device_option, fail, renamed_option, version_option
from restore_toolkit.fileio import atomic_path
from restore_toolkit.targets import TargetError, check_folder
from runtime.default_model import DEFAULT_MODEL
from runtime.demo import DemoError, Stages, contact_sheet, make_samples, restore_samples, run_command

SUMMARY = "summary.json"  # written by restore-train only when a training finishes
MARKER = ".restore-demo"  # written first into OUTPUT: a folder holding it may be run again
TIMES = "demo_times.json"
WRITES = ("samples", "truth", "restored", "train", "model.onnx", "contact_sheet.png", TIMES)  # what OUTPUT gets
MODEL_SUFFIXES = (".onnx", ".ckpt", ".safetensors")
# The --train options behind each config key restore-train checks (restore_core.config.validate).
OPTION_OF = {"data.size": "--size", "model.depth": "--depth", "model.base_channels": "--base-channels",
             "train.lr": "--lr", "train.batch_size": "--batch-size", "train.max_steps": "--max-steps"}


# ---------------------------------------------------------------------------------------------
# The --train stages.


def _train_settings(steps: int, size: int, batch_size: int, base_channels: int, depth: int) -> dict:
    """The config keys the demo sets on restore-train (`--set KEY=VALUE`)."""
    per_epoch = max(1, min(steps, 100))  # an epoch line (with validation) every ~100 steps
    return {"data.epoch_samples": per_epoch * batch_size, "data.size": size,
            "data.val_count": max(4, min(32, 2 * batch_size)), "data.num_workers": 1,
            "model.base_channels": base_channels, "model.depth": depth, "train.patience": 0}


def check_training(steps: int, size: int, batch_size: int, base_channels: int, depth: int, lr: float) -> None:
    """The training options, by restore-train's own config checks, before anything is written."""
    from restore_core.config import ConfigError, apply_overrides, load_config, validate

    settings = {**_train_settings(steps, size, batch_size, base_channels, depth), "train.lr": lr,
                "train.batch_size": batch_size, "train.max_steps": steps}
    try:
        validate(apply_overrides(load_config(None), settings))
    except ConfigError as e:
        named = [f"{option} {settings[key]}" for key, option in OPTION_OF.items() if f"'{key}'" in str(e)]
        if "stride" in str(e):  # the stride is 2**depth
            named.append(f"--depth {depth}")
        raise DemoError(f"{', '.join(named) or '--train options'}: {e}") from None


def check_model(model_path: str, train: bool) -> None:
    """--model: a readable file of a kind this demo can use, checked by the loader that will read it."""
    path = Path(model_path)
    if not path.is_file():
        raise DemoError(f"--model {path}: {'is a folder' if path.is_dir() else 'no such file'}")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise DemoError(f"--model {path}: cannot read it ({e.strerror})") from None
    if path.suffix != ".onnx" and not train:
        raise DemoError(f"{path}: restoring needs an ONNX model; use --train to export a checkpoint first")
    if path.suffix not in MODEL_SUFFIXES:
        raise DemoError(f"--model {path}: not a model file ({', '.join(MODEL_SUFFIXES)})")
    if path.suffix == ".onnx":
        from runtime.metadata import ModelFileError, read_metadata

        try:
            read_metadata(path)
        except ModelFileError as e:
            raise DemoError(f"--model {e}") from None
        return
    from restore_core.checkpoint import CheckpointError, load_model

    try:
        load_model(path)
    except CheckpointError as e:
        raise DemoError(f"--model {e}") from None


def _earlier_demo(out: Path) -> bool:
    """OUTPUT holds an earlier demo's results (its marker; a demo_times.json from before the marker)."""
    if (out / MARKER).is_file():
        return True
    try:
        times = json.loads((out / TIMES).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(times, dict) and {"total_seconds", "stages"} <= set(times)


def prepare_output(out_dir: str, overwrite: bool) -> Path:
    """OUTPUT, checked (restore_toolkit.targets.check_folder) and marked as the demo's."""
    out = check_folder(out_dir, "--output", overwrite or (bool(out_dir) and _earlier_demo(Path(out_dir))), WRITES)
    with atomic_path(out / MARKER) as tmp:
        tmp.write_text(json.dumps({"written_by": "restore-demo"}) + "\n")
    return out


def train_model(out: Path, steps: int, size: int, batch_size: int, base_channels: int, depth: int,
                seed: int, device: str, lr: float) -> Path:
    """Train briefly with `restore-train` on on-the-fly data; returns the best checkpoint.

    A finished training leaves OUT/train/summary.json. A run interrupted before that left only
    checkpoints: the next demo resumes it from last.ckpt instead of taking its half-trained
    best.ckpt for a finished model.
    """
    from restore_core.cpu import native_bf16

    save_dir = out / "train"
    epochs = math.ceil(steps / max(1, min(steps, 100)))
    settings = _train_settings(steps, size, batch_size, base_channels, depth)
    args = [
        "--synthetic", "--max-steps", steps, "--epochs", epochs, "--batch-size", batch_size, "--lr", lr,
        *(a for key, value in settings.items() for a in ("--set", f"{key}={value}")),
        "--seed", seed, "--device", device, "-o", save_dir, "--quiet", "--report", save_dir / SUMMARY,
    ]
    if device != "cuda" and native_bf16():
        args += ["--precision", "bf16"]  # about 2x faster on CPUs with native bf16
    last = save_dir / "last.ckpt"
    if last.exists() and not (save_dir / SUMMARY).exists():
        click.echo(f"  {save_dir} holds an unfinished training (no {SUMMARY}): resuming it from {last}")
        args += ["--resume", last]
    else:  # OUT/train is the demo's own (OUTPUT was checked): --retrain starts it again
        args += ["--overwrite"]
    run_command("restore-train", "restore_core.cli", "train_cli", args)
    best = save_dir / "best.ckpt"
    if not best.exists():
        raise DemoError(f"training wrote no {best}")
    return best


def export_model(checkpoint: Path, output: Path, verify: bool = True) -> Path:
    """`restore-export onnx` when that command is installed, else the same library calls."""
    import importlib.util

    if output.exists() and output.stat().st_mtime >= checkpoint.stat().st_mtime:
        click.echo(f"  {output} is newer than {checkpoint}: kept")
        return output
    if importlib.util.find_spec("export.cli") is not None:
        args = ["onnx", "--model", checkpoint, "--output", output, "--overwrite"]
        run_command("restore-export", "export.cli", "main", args + ([] if verify else ["--no-verify"]))
    else:
        from export.onnx_export import build_metadata, save_onnx, to_onnx_proto
        from restore_core.checkpoint import load_model

        click.echo(f"  (export.onnx_export) {checkpoint} -> {output}")
        pipeline = load_model(checkpoint).pipeline()
        save_onnx(to_onnx_proto(pipeline, "pixels"), output, build_metadata(pipeline, "pixels", "fp32", parity=None))
    if not output.exists():
        raise DemoError(f"export wrote no {output}")
    return output


# ---------------------------------------------------------------------------------------------


def _find_model(out: Path) -> Optional[Path]:
    """A model a previous `--train` demo finished training, so running it again is quick."""
    train = out / "train"
    if (train / SUMMARY).exists() and (train / "best.ckpt").exists():
        return train / "best.ckpt"
    return None


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("-o", "--output", "out_dir", type=NamedPath(file_okay=False), default="restore-demo",
              help="Where samples, restored images and the contact sheet go.")
@click.option("--out", "out_alias", type=NamedPath(file_okay=False), hidden=True)
@click.option("--model", "model_path", type=NamedPath(dir_okay=False, what="a model file or 'default'"), default=None,
              show_default="the shipped default model",
              help="Restore with this model (.onnx; with --train also .ckpt or .safetensors).")
@click.option("--train", "train", is_flag=True,
              help="Train a small model of your own first (minutes on a CPU; a toy, far weaker than the "
                   "default model), export it and restore with it.")
@click.option("--retrain", is_flag=True, help="With --train: train again even if OUTPUT holds a finished model.")
@renamed_option("--max-steps", "steps", old=["--steps"], type=click.IntRange(min=1), default=600,
                help="--train: training steps.")
@click.option("--lr", type=float, default=2e-3,
              help="--train: learning rate; higher than the reference design's 3e-4, which needs far more steps.")
@click.option("--size", type=click.IntRange(min=8), default=64, help="--train: crop side.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, help="--train: batch size.")
@click.option("--base-channels", type=click.IntRange(min=1), default=12, help="--train: model width.")
@click.option("--depth", type=click.IntRange(min=1), default=4, help="--train: model depth (stride 2**depth).")
@click.option("--samples", type=click.IntRange(min=1), default=6, help="How many samples.")
@click.option("--sample-size", type=click.IntRange(min=16), default=192, help="Sample side (px).")
@device_option()
@click.option("--seed", type=int, default=0, help="Picks the crops and their corruptions.")
@click.option("--verify/--no-verify", default=True,
              help="--train: check the exported graph against eager PyTorch (prints the parity table).")
@click.option("--overwrite", is_flag=True,
              help="Write into an OUTPUT that holds files the demo writes (samples/, contact_sheet.png, ...) but "
                   "is not an earlier demo's folder (one is rerun without it).")
@version_option("restore-demo")
def main(out_dir, out_alias, model_path, train, retrain, steps, lr, size, batch_size, base_channels, depth, samples,
         sample_size, device, seed, verify, overwrite):
    """Corrupt photos the default model never saw, restore them with restore-run, and write
    OUTPUT/contact_sheet.png (before / mask / after / original).

    With --train, first train a small model of your own, export it and restore with that instead:
    the whole toolkit end to end.
    """
    out_dir = out_alias if out_alias is not None else out_dir
    try:  # every input first, then OUTPUT: one error line and nothing written
        if model_path is not None:
            check_model(model_path, train)
        if train and model_path is None:
            check_training(steps, size, batch_size, base_channels, depth, lr)
        out = prepare_output(out_dir, overwrite)
    except (DemoError, TargetError) as e:
        fail(str(e))
    stages = Stages(5 if train else 3)
    try:
        with stages.run("samples", "corrupting photos"):
            made = make_samples(out, samples, sample_size, seed)
        onnx_path = model_path or DEFAULT_MODEL
        if train:
            click.echo("\nnote: --train makes a toy: a few minutes of training cannot match the shipped default "
                       "model (MODEL_CARD.md), so expect missed and spurious masks.")
            onnx_path = _train_and_export(out, model_path, retrain, steps, size, batch_size, base_channels, depth,
                                          seed, device, lr, verify, stages)
        with stages.run("restore", f"restore-run with {'the default model' if onnx_path == DEFAULT_MODEL else onnx_path}"
                                   " (ONNX Runtime, no PyTorch)"):
            report = restore_samples(onnx_path, out, "cpu" if device == "cpu" else "auto")
        with stages.run("sheet", "contact sheet"):
            sheet = contact_sheet(made, out, report)
    except DemoError as e:
        fail(str(e))
    except KeyboardInterrupt:
        click.echo("interrupted: finished samples and outputs are complete; run the same command again to continue "
                   "(an unfinished training is resumed)", err=True)
        sys.exit(130)
    total = time.perf_counter() - stages.start
    times = ", ".join(f"{k} {v:.1f} s" for k, v in stages.times.items())
    click.echo(f"\ncontact sheet: {sheet}\ntotal {total:.1f} s ({times})")
    with atomic_path(out / TIMES) as tmp:
        tmp.write_text(json.dumps({"total_seconds": total, "stages": stages.times}, indent=2) + "\n")


def _train_and_export(out, model_path, retrain, steps, size, batch_size, base_channels, depth, seed, device, lr,
                      verify, stages) -> str:
    """The --train stages: train (or reuse a finished model), then export to ONNX."""
    checkpoint = Path(model_path) if model_path else (None if retrain else _find_model(out))
    with stages.run("train", "training a small model" if checkpoint is None else "using an existing model"):
        if checkpoint is not None and checkpoint.suffix == ".onnx":
            click.echo(f"  using {checkpoint}")
            return str(checkpoint)
        if checkpoint is not None:
            click.echo(f"  using {checkpoint} (pass --retrain to train again)")
        else:
            checkpoint = train_model(out, steps, size, batch_size, base_channels, depth, seed, device, lr)
    with stages.run("export", "ONNX, pixels signature"):
        return str(export_model(checkpoint, out / "model.onnx", verify))


if __name__ == "__main__":
    main()
