"""`restore-export`: turn a checkpoint into a deployable file, or look inside one.

The commands parse options and call one library function each (`export_onnx`,
`export_torchscript`, `export_exported_program`, `describe`). Exit codes: 0 success, 1 a user
error (one line naming the file and the problem) or failed parity (the table, then the
reason), 2 a usage error (click).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Optional

import click

from export.int8 import DEFAULT_HELDOUT_PER_PHOTO, DEFAULT_MAX_EXCLUDED, Bounds
from export.quantize import CALIBRATION_METHODS, CALIBRATION_PERCENTILE, DEFAULT_CALIBRATION, DEFAULT_CALIBRATION_METHOD
from restore_toolkit.console import (
    COMMAND_SETTINGS,
    NamedPath,
    finite,
    handle_errors,
    quiet_option,
    renamed_option,
    require,
    version_option,
)

# The exporter's own values (export.onnx_export imports torch, so --help cannot ask it);
# tests/test_export_cli.py checks that these match.
DEFAULT_OPSET, MIN_OPSET, SIGNATURE_NAMES = 20, 18, ("pixels", "tensor")

INTERRUPTED = "nothing was written: a file is renamed into place only after it is complete and verified"


def _export_errors():
    """Our named errors (one line, exit 1); those of the torch side only where torch is installed."""
    from runtime.metadata import ModelFileError

    errors = (ModelFileError,)
    if importlib.util.find_spec("torch") is not None:
        from export.onnx_export import ExportError
        from restore_core.checkpoint import CheckpointError

        errors += (ExportError, CheckpointError)
    return errors


def _check_output(output: Path, overwrite: bool, models, kind: str) -> Path:
    """OUTPUT checked before anything is loaded: the suffix `kind` writes, never a --model file
    (not even with --overwrite), not an existing file without --overwrite, a writable folder."""
    from export.onnx_export import check_output_path
    from restore_core.checkpoint import DEFAULT_MODEL, SHIPPED_WEIGHTS

    inputs = [SHIPPED_WEIGHTS if str(m) == DEFAULT_MODEL else m for m in models]
    return check_output_path(output, overwrite, inputs=inputs, kind=kind)


def _load_pipeline(model: Path, flip_ensemble=None):
    from restore_core.checkpoint import load_model

    return load_model(model, flip_ensemble=flip_ensemble).pipeline()  # CheckpointError: one line naming the file


def _report(result, verify: bool) -> None:
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB) in {result.seconds:.1f} s "
               f"(export {result.export_seconds:.1f} s, verify {result.verify_seconds:.1f} s)")
    if verify:
        click.echo(result.table)
        click.echo("parity: passed")
    else:
        click.echo("parity: skipped (--no-verify); the file's metadata says so")


# --model names the model to read in every command (restore-run, restore-validate, restore-bench too);
# --checkpoint, its older spelling here, still works.
_model = renamed_option("--model", "model", required=True, type=NamedPath(path_type=Path, what="a model file or 'default'"),
                        old=["--checkpoint"],
                        help="Training checkpoint (.ckpt), released weights (.safetensors) or 'default' "
                             "(the shipped model).")
_output = click.option("-o", "--output", "output", required=True, type=NamedPath(path_type=Path),
                       help="File to write (written beside it under a temporary name, then renamed).")


def _overwrite(fn):
    """`--overwrite`, as in restore-data and restore-run; `--force`, the older spelling, still works."""
    return renamed_option("--overwrite", is_flag=True, old=["--force"], help="Replace OUTPUT if it exists.")(fn)


def _flip_ensemble(what: str, default: str):
    """`--flip-ensemble/--no-flip-ensemble`: unset (None) keeps the checkpoint's own setting."""
    return click.option("--flip-ensemble/--no-flip-ensemble", "flip_ensemble", default=None, show_default=default,
                        help=f"Run {what} on the image and its mirror image and average them: better masks "
                             f"and fills at twice the compute (see RestorationPipeline).")


_no_verify = click.option("--no-verify", is_flag=True,
                          help="Skip the parity check against eager PyTorch (recorded as skipped in the metadata).")


@click.group(context_settings=COMMAND_SETTINGS)
@version_option("restore-export")
def main() -> None:
    """Export a trained restore model (ONNX, TorchScript, torch.export) or inspect an artifact."""


PRECISIONS = ("fp32", "fp16", "int8")


def _precision_options(fn):
    """`--precision fp32|fp16|int8`; --fp16 and --int8, the older flags, still work (hidden)."""
    fn = click.option("--int8", "int8_flag", is_flag=True, hidden=True)(fn)
    fn = click.option("--fp16", "fp16_flag", is_flag=True, hidden=True)(fn)
    return click.option(
        "--precision", type=click.Choice(PRECISIONS), default=None, show_default="fp32",
        help="fp32; fp16: half-precision weights and compute inside, same interface; int8: static int8 (QDQ) "
             "for CPUs, same uint8 interface, refused unless it keeps quality on the held-out set "
             "(see --max-iou-drop, --max-psnr-drop).")(fn)


def _chosen_precision(precision, fp16_flag: bool, int8_flag: bool) -> str:
    flagged = [p for p, given in (("fp16", fp16_flag), ("int8", int8_flag)) if given]
    if len(set(flagged + ([precision] if precision else []))) > 1:
        raise click.UsageError(f"contradictory precisions: {', '.join(sorted(set(flagged + [precision or '']) - {''}))}")
    return precision or (flagged[0] if flagged else "fp32")


@main.command("onnx")
@_model
@_output
@click.option("--signature", type=click.Choice(SIGNATURE_NAMES), default="pixels",
              help="pixels: uint8 [N,H,W,3] in and out; tensor: float32 [N,3,H,W] in [-1,1].")
@_precision_options
@click.option("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset ({MIN_OPSET} or newer).")
@click.option("--calibration-images", type=click.IntRange(min=1), default=DEFAULT_CALIBRATION,
              help="--precision int8: seeded corrupted crops of the bundled training photos to calibrate on.")
@click.option("--calibration-method", type=click.Choice(CALIBRATION_METHODS), default=DEFAULT_CALIBRATION_METHOD,
              show_default=True, help="--precision int8: how activation ranges are set from the calibration "
                                      f"values (percentile: {CALIBRATION_PERCENTILE} % of them).")
@click.option("--heldout-per-photo", type=click.IntRange(min=1), default=DEFAULT_HELDOUT_PER_PHOTO,
              help="--precision int8: verification crops per held-out photo.")
@click.option("--max-iou-drop", type=float, callback=finite, default=Bounds.max_iou_drop,
              help="--precision int8: most mask IoU the int8 graph may lose against the fp32 graph.")
@click.option("--max-psnr-drop", type=float, callback=finite, default=Bounds.max_psnr_drop,
              help="--precision int8: most PSNR inside the mask (dB) it may lose.")
@click.option("--max-whole-iou-drop", type=float, callback=finite, default=None, show_default="none: measured and recorded",
              help="--precision int8: most mask IoU it may lose on whole photos saved as JPEG.")
@click.option("--max-whole-psnr-drop", type=float, callback=finite, default=None, show_default="none: measured and recorded",
              help="--precision int8: most PSNR inside the mask (dB) it may lose on whole photos saved as JPEG.")
@click.option("--max-excluded", type=click.IntRange(min=0), default=DEFAULT_MAX_EXCLUDED,
              help="--precision int8: most parts kept in float before refusing (the first stage, then activations "
                   "worst by qdq_loss_debug).")
@_flip_ensemble("the graph", "the checkpoint's: on for default, off for training checkpoints")
@_no_verify
@_overwrite
@handle_errors(_export_errors, INTERRUPTED)
def onnx_cmd(model: Path, output: Path, signature: str, precision, fp16_flag: bool, int8_flag: bool, opset: int,
             calibration_images: int, calibration_method: str, heldout_per_photo: int, max_iou_drop: float, max_psnr_drop: float,
             max_whole_iou_drop: Optional[float], max_whole_psnr_drop: Optional[float], max_excluded: int,
             flip_ensemble, no_verify: bool, overwrite: bool) -> None:
    """Export to one self-contained ONNX file, verified against eager PyTorch (int8: and on the held-out set)."""
    precision = _chosen_precision(precision, fp16_flag, int8_flag)
    if precision == "int8" and signature != "pixels":
        raise click.UsageError("--precision int8 makes a pixels graph; it does not combine with --signature tensor")
    require(["torch", "onnxscript", "skimage"], "export", "restore-export onnx")
    from export.onnx_export import check_opset, export_onnx

    check_opset(opset)  # cheap checks first: no slow export for a bad opset or path
    _check_output(output, overwrite, [model], "onnx")
    pipeline = _load_pipeline(model, flip_ensemble)
    if precision == "int8":
        bounds = Bounds(max_iou_drop, max_psnr_drop, max_whole_iou_drop, max_whole_psnr_drop)
        _export_int8(pipeline, output, calibration_images, heldout_per_photo, bounds, max_excluded, opset,
                     not no_verify, overwrite, calibration_method)
        return
    result = export_onnx(pipeline, output, signature=signature, opset=opset, fp16=precision == "fp16",
                         verify=not no_verify, force=overwrite)
    _report(result, not no_verify)


def _export_int8(pipeline, output: Path, calibration: int, heldout_per_photo: int, bounds: Bounds, max_excluded: int,
                 opset: int, verify: bool, overwrite: bool, calibration_method: str) -> None:
    from export.int8 import export_int8
    from export.int8_report import format_int8, int8_summary

    result = export_int8(pipeline, output, calibration=calibration, heldout_per_photo=heldout_per_photo,
                         bounds=bounds, max_excluded=max_excluded, calibration_method=calibration_method, opset=opset, verify=verify, force=overwrite,
                         log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB) in {result.seconds:.1f} s "
               f"(fp32 export {result.export_seconds:.1f} s, quantize and verify {result.verify_seconds:.1f} s)")
    click.echo(format_int8(int8_summary(result.metadata.extra)))
    click.echo("int8 quality: passed")


def _artifact_command(kind: str, help_text: str) -> None:
    """Register `restore-export KIND`: TorchScript and torch.export differ only in what they build."""

    @main.command(kind, help=help_text)
    @_model
    @_output
    @_flip_ensemble("the module", "the checkpoint's: on for default, off for training checkpoints")
    @_no_verify
    @_overwrite
    @handle_errors(_export_errors, INTERRUPTED)
    def command(model: Path, output: Path, flip_ensemble, no_verify: bool, overwrite: bool) -> None:
        require(["torch", "skimage"], "export", f"restore-export {kind}")
        from export.torchscript import export_artifact

        _check_output(output, overwrite, [model], kind)  # before loading: no slow work for a bad OUTPUT
        result = export_artifact(kind, _load_pipeline(model, flip_ensemble), output, verify=not no_verify,
                                 force=overwrite)
        _report(result, not no_verify)


_artifact_command("torchscript", "Export to TorchScript (.pt, scripted and frozen; deprecated by PyTorch, "
                                 "see exported-program).")
_artifact_command("exported-program", "Export with torch.export to a .pt2 program (load with torch.export.load).")


def _stderr_is_a_terminal() -> bool:
    """Whether a progress bar can be drawn: a bar in a log file is a pile of carriage returns."""
    return sys.stderr.isatty()


def _calibrate(loaded, sources, quiet: bool) -> tuple:
    """Choose and apply the mask offset and opening (restore_core/calibrate.py); returns the
    release's metadata entries and the words for the "wrote" line.

    Progress goes to stderr: one line as the sweep starts and one with the choice, and between
    them a bar over the crops when stderr is a terminal and not --quiet. The sweep's table goes
    to stdout, as before."""
    from restore_core import calibrate as cal
    from restore_core.checkpoint import release_mask_offset

    # A calibrated release is calibrated again from its trained head: the offset chosen is
    # the whole offset (a soup's head carries the mean of its sources' offsets).
    cal.apply_mask_offset(loaded.model, -sum(release_mask_offset(m) for m in sources) / len(sources))
    start = time.perf_counter()
    cases = cal.calibration_cases()
    click.echo(f"calibrating the mask head on {len(cases)} selection crops "
               f"({len(cal.OFFSETS)} offsets x {len(cal.OPENINGS)} openings each)", err=True)
    scores = cal.sweep_mask_offset(loaded.pipeline(), cases, progress=not quiet and _stderr_is_a_terminal())
    chosen = cal.choose_offset(scores)
    click.echo(f"chose mask offset {chosen.offset:g}, mask opening {chosen.opening} in "
               f"{time.perf_counter() - start:.0f} s: mask IoU {chosen.mask_iou:.4f}, PSNR {chosen.psnr:.2f} dB, "
               f"{chosen.blamed} of {len(cases)} made worse by false positives", err=True)
    click.echo(f"mask offset sweep on {cal.CALIBRATION_PER_PHOTO} crops of each validation photo "
               f"x seeds {list(cal.CALIBRATION_SEEDS)}:\n{cal.format_sweep(scores, chosen)}")
    cal.apply_mask_offset(loaded.model, chosen.offset)
    loaded.mask_opening = chosen.opening
    extra = {"restore.mask_offset": repr(chosen.offset),
             "restore.calibration": json.dumps({"seeds": list(cal.CALIBRATION_SEEDS), "sweep": cal.sweep_record(scores)})}
    return extra, f"mask offset {chosen.offset:g}, mask opening {chosen.opening}, "


@main.command("weights")
@renamed_option("--model", "models", required=True, multiple=True,
                type=NamedPath(path_type=Path, what="a model file or 'default'"), old=["--checkpoint"],
                help="Training checkpoint (.ckpt), released weights (.safetensors) or 'default'. Given more than "
                     "once: the weights are averaged (runs fine-tuned from one start, same model config).")
@click.option("--calibrate", is_flag=True,
              help="Lower the mask head's bias by the offset that restores the calibration crops best "
                   "(restore_core/calibrate.py); the sweep is printed and recorded in the metadata.")
@_flip_ensemble("the release's pipelines", "the source's: off for training checkpoints")
@_output
@_overwrite
@quiet_option("--calibrate: no progress bar (its two lines on stderr remain).")
@handle_errors(_export_errors, INTERRUPTED)
def weights_cmd(models: tuple, calibrate: bool, flip_ensemble, output: Path, overwrite: bool, quiet: bool) -> None:
    """Write a checkpoint's model weights alone as a .safetensors release (no optimizer state, no pickle)."""
    require(["torch", "safetensors"] + (["skimage"] if calibrate else []), "export", "restore-export weights")
    from restore_core.checkpoint import average_models, load_model, save_release, weights_sha256

    _check_output(output, overwrite, models, "weights")
    # The setting is chosen before calibrating: the offset is chosen for the pipeline that ships.
    sources = models
    models = [load_model(m, flip_ensemble=flip_ensemble) for m in sources]
    loaded, extra, what = models[0], None, ""
    if len(models) > 1:
        loaded = average_models(models)
        # Which weights went in, so the release says what it is the mean of.
        extra = {"restore.averaged_from": json.dumps([{"file": m.source.name, "weights_sha256": weights_sha256(m.model)}
                                                      for m in models])}
        what = f"the mean of {len(models)} models' weights, "
    if loaded.flip_ensemble:
        what += "flip ensemble, "
    if calibrate:
        calibrated, words = _calibrate(loaded, sources, quiet)
        extra, what = {**(extra or {}), **calibrated}, what + words
    save_release(output, loaded.model, loaded.threshold, extra, flip_ensemble=loaded.flip_ensemble,
                 mask_opening=loaded.mask_opening)
    click.echo(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, {what}weights sha256 "
               f"{weights_sha256(loaded.model)[:16]}...)")


@main.command("inspect")
@click.argument("file", type=NamedPath(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON on stdout instead of text.")
@handle_errors(_export_errors, "nothing was written", extra="export")
def inspect_cmd(file: Path, as_json: bool) -> None:
    """Print the metadata, I/O signature and export parity of one of our artifacts.

    ONNX files need only the base install (no torch); .pt, .pt2, .ckpt and .safetensors files
    need the export extra.
    """
    from export.inspection import KINDS, describe, format_description

    if KINDS.get(file.suffix.lower(), "onnx") != "onnx":
        require(["torch"], "export", f"restore-export inspect {file.suffix}")
    info = describe(file)
    click.echo(json.dumps(info, indent=2, sort_keys=True, default=str) if as_json else format_description(info))


if __name__ == "__main__":
    main()
