"""`restore-run`: restore a folder of images (or one image) with an exported ONNX model.

Exit codes: 0 all restored (or already there), 1 a user error (bad model file, CUDA unusable,
OUTPUT that would overwrite inputs) with one line saying why, 2 usage errors, 3 the run
finished but some inputs failed (each named in the summary and the report).
"""

from __future__ import annotations

import sys
import time

import click

from runtime.images import DEFAULT_MAX_PIXELS
from runtime.tiling import DEFAULT_TILE_BUDGET


def _error(message: str) -> None:
    from runtime.messages import flat

    click.echo(f"restore-run: error: {flat(message)}", err=True)  # one line, even for odd file names
    sys.exit(1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", "model_path", default="default", show_default=True, type=click.Path(dir_okay=False),
              help="An exported ONNX model (restore-export onnx, 'pixels' signature), or 'default' for the "
                   "model shipped with the package.")
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.argument("output_path", metavar="OUTPUT", type=click.Path())
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto picks CUDA only when it really works; cuda fails if it does not.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), default=None,
              help="Execution provider (default: the device's own; tensorrt runs on CUDA).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images of the same size restored together.")
@click.option("--save-mask", is_flag=True, help="Also write OUTPUT/masks/REL as PNG (255 = replaced).")
@click.option("--save-predicted", is_flag=True, help="Also write OUTPUT/predicted/REL as PNG (raw prediction).")
@click.option("--overwrite", is_flag=True, help="Rewrite outputs that exist (default: skip them, so a rerun resumes).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp", "bmp", "tiff"], case_sensitive=False),
              default=None, help="Output format (default: each input's own).")
@click.option("--tile", type=click.IntRange(min=0), default=None,
              help="Tile size for large images; 0 never tiles (default: tile above --tile-budget pixels).")
@click.option("--tile-budget", type=click.IntRange(min=1), default=DEFAULT_TILE_BUDGET, show_default=True,
              help="Pixels above which images are tiled automatically.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse images with more pixels (decompression bombs).")
@click.option("--allow-lossy", is_flag=True,
              help="Restore files that cannot be written back whole (extra frames or pages, 16-bit colour) from "
                   "their first frame / top 8 bits; the summary lists what was dropped (default: refuse them).")
@click.option("--no-fsync", is_flag=True,
              help="Do not fsync each image before its rename (the report is always synced).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="JSON report path (default: OUTPUT/restore-report.json).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for inference (default: all usable).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto", show_default=True,
              help="Which graph of the shipped model: auto takes its int8 graph on the CPU when it is shipped and "
                   "kept quality at export, else fp32; fp32 forces fp32. A named --model runs as it is.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG / lossy WebP quality.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(model_path, input_path, output_path, device, provider, batch_size, save_mask, save_predicted, overwrite,
         fmt, tile, tile_budget, max_pixels, allow_lossy, no_fsync, report_path, threads, precision, quality, quiet):
    """Restore the images in INPUT (a folder, recursively, or one image) into OUTPUT.

    Relative paths are mirrored under OUTPUT; each image keeps its format and mode unless
    --format says otherwise. Bad files are reported and skipped; the rest is restored.
    """

    from runtime.batch import PlanError, RunOptions, run_folder
    from runtime.default_model import DefaultModelMissing, describe_model
    from runtime.metadata import ModelFileError
    from runtime.restorer import Restorer
    from runtime.session import DeviceUnavailableError

    start = time.perf_counter()
    try:
        restorer = Restorer(model_path, device=device, provider=provider, threads=threads, tile=tile,
                            tile_budget=tile_budget, batch_size=batch_size, precision=precision)
    except (ModelFileError, DeviceUnavailableError, DefaultModelMissing) as e:
        _error(str(e))
    except ValueError as e:  # contradictory --device / --provider
        raise click.UsageError(str(e)) from None
    choice = f", {restorer.model_choice}" if restorer.model_choice else ""
    click.echo(f"model {describe_model(model_path, restorer.model_path)}{choice} on {restorer.info.describe()} "
               f"({time.perf_counter() - start:.2f} s to load)", err=True)
    options = RunOptions(
        batch_size=batch_size, save_mask=save_mask, save_predicted=save_predicted, overwrite=overwrite, format=fmt,
        max_pixels=max_pixels, allow_lossy=allow_lossy, sync_images=not no_fsync, report=report_path, quality=quality,
        progress=not quiet,
    )
    try:
        result = run_folder(restorer, input_path, output_path, options)
    except PlanError as e:
        _error(str(e))
    except OSError as e:  # the report or an output folder that cannot be written
        _error(f"{getattr(e, 'filename', '') or ''} {e.strerror or e}".strip())
    except KeyboardInterrupt:
        click.echo("restore-run: interrupted; finished outputs are complete, rerun to continue", err=True)
        sys.exit(130)
    for line in result.lines:
        click.echo(line)
    if result.report_text:  # the report could not be written (a full disk): it is not lost
        click.echo(result.report_text, err=True, nl=False)
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
