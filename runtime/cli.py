"""`restore-run`: restore a folder of images (or one image) with an exported ONNX model.

Exit codes: 0 all restored (or already there), 1 a user error (bad model file, CUDA unusable,
OUTPUT that would overwrite inputs) with one line saying why, 2 usage errors, 3 the run
finished but some inputs failed (each named in the summary and the report), 130 Ctrl-C.
Imports neither torch nor restore_core: the base install runs it.
"""

from __future__ import annotations

import sys
import time

import click

from restore_toolkit.console import COMMAND_SETTINGS, device_option, fail, quiet_option, version_option
from runtime.images import DEFAULT_MAX_PIXELS
from runtime.tiling import DEFAULT_TILE_BUDGET


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("--model", "model_path", default="default", show_default=True, type=click.Path(dir_okay=False),
              help="An exported ONNX model (restore-export onnx, 'pixels' signature), or 'default' for the "
                   "model shipped with the package.")
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.argument("output_path", metavar="OUTPUT", type=click.Path())
@device_option()
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt"]), default=None,
              show_default="the device's own", help="ONNX Runtime execution provider (tensorrt runs on CUDA).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4,
              help="Images of the same size restored together.")
@click.option("--save-mask", is_flag=True, help="Also write OUTPUT/masks/REL as PNG (255 = replaced).")
@click.option("--save-predicted", is_flag=True, help="Also write OUTPUT/predicted/REL as PNG (raw prediction).")
@click.option("--overwrite", is_flag=True, help="Rewrite outputs that exist (default: skip them, so a rerun resumes).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp", "bmp", "tiff"], case_sensitive=False),
              default=None, show_default="each input's own", help="Output format.")
@click.option("--tile", type=click.IntRange(min=0), default=None, show_default="tile above --tile-budget pixels",
              help="Tile size for large images; 0 never tiles.")
@click.option("--tile-budget", type=click.IntRange(min=1), default=DEFAULT_TILE_BUDGET,
              help="Pixels above which images are tiled automatically.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS,
              help="Refuse images with more pixels (decompression bombs).")
@click.option("--max-memory", type=click.IntRange(min=1), default=None, metavar="MB",
              show_default="1200, or less when the machine has less free",
              help="Memory a run may add to this process; images that cannot fit are refused from their header.")
@click.option("--allow-lossy", is_flag=True,
              help="Restore files that cannot be written back whole (extra frames or pages, 16-bit colour TIFF, "
                   "16-bit colour PNG written as another format) from "
                   "their first frame / top 8 bits; the summary lists what was dropped (default: refuse them).")
@click.option("--no-fsync", is_flag=True,
              help="Do not fsync each image before its rename (the report is always synced).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              show_default="OUTPUT/restore-report.json", help="Write the run's JSON report to this file.")
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="CPU threads for inference; 0: all cores this process may use (--engine ray: per actor, 1).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto",
              help="Which graph of the shipped model: auto takes its int8 graph on the CPU when it is shipped and "
                   "kept quality at export, else fp32; fp32 forces fp32. A named --model runs as it is.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, help="JPEG / lossy WebP quality.")
@quiet_option()
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              help="local: threads on this machine; ray: Ray Data across a cluster (pip install -e '.[ray]').")
@click.option("--address", default=None, show_default="start a local Ray",
              help="--engine ray: the Ray cluster to join.")
@click.option("--actors", type=click.IntRange(min=1), default=None, show_default="1",
              help="--engine ray: inference actors, one ONNX Runtime session each.")
@click.option("--gpus-per-actor", type=click.FloatRange(min=0), default=None,
              show_default="1 when CUDA is asked for or the cluster has GPUs", help="--engine ray: GPUs each actor reserves.")
@version_option("restore-run")
def main(model_path, input_path, output_path, device, provider, batch_size, save_mask, save_predicted, overwrite,
         fmt, tile, tile_budget, max_pixels, max_memory, allow_lossy, no_fsync, report_path, threads, precision, quality, quiet,
         engine, address, actors, gpus_per_actor):
    """Restore the images in INPUT (a folder, recursively, or one image) into OUTPUT.

    Relative paths are mirrored under OUTPUT; each image keeps its format and mode unless
    --format says otherwise. Bad files are reported and skipped; the rest is restored.
    """
    from runtime.batch import PlanError, RunOptions
    from runtime.default_model import DefaultModelMissing
    from runtime.metadata import ModelFileError
    from runtime.session import DeviceUnavailableError

    if engine == "local" and (address is not None or actors is not None or gpus_per_actor is not None):
        raise click.UsageError("--address, --actors and --gpus-per-actor need --engine ray")
    if engine == "local" and "://" in input_path:
        raise click.UsageError("an INPUT URI (s3://, gs://, file://...) needs --engine ray")
    options = RunOptions(
        batch_size=batch_size, save_mask=save_mask, save_predicted=save_predicted, overwrite=overwrite, format=fmt,
        max_pixels=max_pixels, max_memory=max_memory * 1_000_000 if max_memory else None, allow_lossy=allow_lossy, sync_images=not no_fsync, report=report_path, quality=quality,
        progress=not quiet,
    )
    user_errors = (ModelFileError, DeviceUnavailableError, DefaultModelMissing, PlanError)
    try:
        if engine == "ray":
            result = _run_on_ray(model_path, input_path, output_path, options, address, actors, gpus_per_actor,
                                 device, provider, threads, tile, tile_budget, precision)
        else:
            result = _run_here(model_path, input_path, output_path, options, device, provider, threads, tile,
                               tile_budget, batch_size, precision)
    except user_errors as e:
        fail(str(e))
    except ValueError as e:  # contradictory --device / --provider
        raise click.UsageError(str(e)) from None
    except OSError as e:  # the report or an output folder that cannot be written
        fail(f"{getattr(e, 'filename', '') or ''} {e.strerror or e}".strip())
    except KeyboardInterrupt:
        click.echo("interrupted: finished outputs are complete; run the same command again to continue", err=True)
        sys.exit(130)
    for line in result.lines:
        click.echo(line)
    if result.report_text:  # the report could not be written (a full disk): it is not lost
        click.echo(result.report_text, err=True, nl=False)
    sys.exit(result.exit_code)


def _run_here(model_path, input_path, output_path, options, device, provider, threads, tile, tile_budget,
              batch_size, precision):
    """The local engine: one ONNX Runtime session, threads for reading and writing."""
    from runtime.batch import run_folder
    from runtime.default_model import describe_model
    from runtime.restorer import Restorer

    start = time.perf_counter()
    restorer = Restorer(model_path, device=device, provider=provider, threads=threads or None, tile=tile,
                        tile_budget=tile_budget, batch_size=batch_size, precision=precision)
    choice = f", {restorer.model_choice}" if restorer.model_choice else ""
    click.echo(f"model {describe_model(model_path, restorer.model_path)}{choice} on {restorer.info.describe()} "
               f"({time.perf_counter() - start:.2f} s to load)", err=True)
    return run_folder(restorer, input_path, output_path, options)


def _run_on_ray(model_path, input_path, output_path, options, address, actors, gpus_per_actor, device, provider,
                threads, tile, tile_budget, precision):
    """The Ray engine: the same plan, codecs, writes and report, scheduled by Ray Data."""
    from runtime.default_model import choose_model, describe_model
    from runtime.ray_engine import RayOptions, RayUnavailable, run_folder_ray

    # The graph is chosen here, once, as the local engine chooses it; every actor loads that one.
    chosen, why = choose_model(model_path, precision, cpu=device != "cuda" and not gpus_per_actor)

    ray_options = RayOptions(address=address, actors=actors or 1, gpus_per_actor=gpus_per_actor, device=device,
                             provider=provider, threads=threads or None, tile=tile, tile_budget=tile_budget)
    click.echo(f"model {describe_model(model_path, chosen)}{', ' + why if why else ''} on Ray ({address or 'a local Ray'}, "
               f"{ray_options.actors} actor(s))", err=True)
    try:
        return run_folder_ray(chosen, input_path, output_path, options, ray_options)
    except RayUnavailable as e:
        fail(str(e))


if __name__ == "__main__":
    main()
