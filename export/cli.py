"""`restore-export`: turn a checkpoint into a deployable file, or look inside one.

The commands parse options and call one library function each (`export_onnx`,
`export_torchscript`, `export_exported_program`, `describe`). Exit codes: 0 success, 1 a user
error (one line naming the file and the problem) or failed parity (the table, then the
reason), 2 a usage error (click).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from export.onnx_export import DEFAULT_OPSET, MIN_OPSET, SIGNATURES, ExportError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _load_pipeline(checkpoint: Path):
    from restore_core.checkpoint import load_model

    loaded = load_model(checkpoint)  # CheckpointError: one line naming the file
    return loaded.pipeline()


def _report(result, verify: bool) -> None:
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB) in {result.seconds:.1f} s "
               f"(export {result.export_seconds:.1f} s, verify {result.verify_seconds:.1f} s)")
    if verify:
        click.echo(result.table)
        click.echo("parity: passed")
    else:
        click.echo("parity: skipped (--no-verify); the file's metadata says so")


def _run(fn) -> None:
    """Call `fn`, turning our errors into one line (or the parity table) and exit 1."""
    from restore_core.checkpoint import CheckpointError
    from runtime.metadata import ModelFileError

    try:
        fn()
    except (ExportError, CheckpointError, ModelFileError) as e:
        _fail(str(e))


_checkpoint = click.option("--checkpoint", "checkpoint", required=True, type=click.Path(path_type=Path),
                           help="Training checkpoint (.ckpt) or released weights (.safetensors).")
_output = click.option("--output", "output", required=True, type=click.Path(path_type=Path),
                       help="File to write (written beside it under a temporary name, then renamed).")
_force = click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
_no_verify = click.option("--no-verify", is_flag=True,
                          help="Skip the parity check against eager PyTorch (recorded as skipped in the metadata).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Export a trained restore model (ONNX, TorchScript, torch.export) or inspect an artifact."""


@main.command("onnx")
@_checkpoint
@_output
@click.option("--signature", type=click.Choice(sorted(SIGNATURES)), default="pixels", show_default=True,
              help="pixels: uint8 [N,H,W,3] in and out; tensor: float32 [N,3,H,W] in [-1,1].")
@click.option("--fp16", is_flag=True, help="Half-precision weights and compute inside; same interface.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True, help=f"ONNX opset ({MIN_OPSET} or newer).")
@_no_verify
@_force
def onnx_cmd(checkpoint: Path, output: Path, signature: str, fp16: bool, opset: int, no_verify: bool, force: bool) -> None:
    """Export to one self-contained ONNX file, verified against eager PyTorch."""
    from export.onnx_export import check_opset, check_output_path, export_onnx

    def work():
        check_opset(opset)  # cheap checks first: no slow export for a bad opset or path
        check_output_path(output, force)
        pipeline = _load_pipeline(checkpoint)
        result = export_onnx(pipeline, output, signature=signature, opset=opset, fp16=fp16,
                             verify=not no_verify, force=force)
        _report(result, not no_verify)

    _run(work)


def _artifact_command(kind: str, help_text: str) -> None:
    """Register `restore-export KIND`: TorchScript and torch.export differ only in what they build."""

    @main.command(kind, help=help_text)
    @_checkpoint
    @_output
    @_no_verify
    @_force
    def command(checkpoint: Path, output: Path, no_verify: bool, force: bool) -> None:
        from export.torchscript import export_artifact

        def work():
            result = export_artifact(kind, _load_pipeline(checkpoint), output, verify=not no_verify, force=force)
            _report(result, not no_verify)

        _run(work)


_artifact_command("torchscript", "Export to TorchScript (.pt, scripted and frozen; deprecated by PyTorch, "
                                 "see exported-program).")
_artifact_command("exported-program", "Export with torch.export to a .pt2 program (load with torch.export.load).")


@main.command("inspect")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def inspect_cmd(file: Path, as_json: bool) -> None:
    """Print the metadata, I/O signature and export parity of one of our artifacts."""
    from export.inspection import describe, format_description

    def work():
        info = describe(file)
        click.echo(json.dumps(info, indent=2, sort_keys=True, default=str) if as_json else format_description(info))

    _run(work)


if __name__ == "__main__":
    main()
