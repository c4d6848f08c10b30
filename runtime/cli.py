"""`restore-run`: restore a folder of images (or one image) with an exported ONNX model.

Exit codes: 0 all restored (or already there, or skipped with a line), 1 a user error (missing
INPUT, OUTPUT that is a file or would overwrite inputs, bad model file, CUDA unusable) with one
line saying why, 2 usage errors, 3 the run finished but some inputs failed (each named in the
summary and the report), 130 Ctrl-C. The arguments and INPUT are checked before the model loads.
Imports neither torch nor restore_core: the base install runs it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Optional

import click

from restore_toolkit.console import (
    COMMAND_SETTINGS,
    NamedPath,
    capped_threads,
    device_option,
    fail,
    finite,
    quiet_option,
    version_option,
)
from restore_toolkit.messages import flat
from runtime.images import DEFAULT_MAX_PIXELS
from runtime.tiling import DEFAULT_TILE_BUDGET, least_tile


@click.command(context_settings=COMMAND_SETTINGS)
@click.option("--model", "model_path", default="default", show_default=True,
              type=NamedPath(dir_okay=False, what="an ONNX file or 'default'"),
              help="An exported ONNX model (restore-export onnx, 'pixels' signature), or 'default' for the "
                   "model shipped with the package.")
@click.argument("input_path", metavar="INPUT", type=NamedPath())
@click.argument("output_path", metavar="OUTPUT", type=NamedPath())
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
              help="Tile size for large images; 0 never tiles. A tile below twice the model's halo "
                   "(288 for the default model) is raised to that: smaller ones compute mostly halo.")
@click.option("--tile-budget", type=click.IntRange(min=1), default=DEFAULT_TILE_BUDGET,
              help="Pixels above which images are tiled automatically.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS,
              help="Refuse images with more pixels (decompression bombs).")
@click.option("--max-memory", type=click.IntRange(min=1), default=None, metavar="MB",
              show_default="half of what the machine has free, at least 1200 (less where it has less)",
              help="Memory a run may add to this process; images that cannot fit are refused from their header.")
@click.option("--allow-lossy", is_flag=True,
              help="Restore files that cannot be written back whole (extra frames or pages, 16-bit colour TIFF, "
                   "16-bit colour PNG written as another format) from "
                   "their first frame / top 8 bits; the summary lists what was dropped (default: refuse them).")
@click.option("--no-fsync", is_flag=True,
              help="Do not fsync each image before its rename (the report is always synced).")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), default=None,
              show_default="OUTPUT/restore-report.json", help="Write the run's JSON report to this file.")
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="CPU threads for inference; 0: all cores this process may use, and more are lowered to those "
                   "(--engine ray: per actor, 1).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto",
              help="Which graph of the shipped model: auto takes its int8 graph on the CPU when it is shipped and "
                   "kept quality at export, else fp32; fp32 forces fp32. A named --model runs as it is.")
@click.option("--no-coarse", is_flag=True,
              help="Run the model on each image at its own size only (default: large images also at 1/2 to 1/16 "
                   "of their size, for marks too large for the network to see whole; docs/restoring.md).")
@click.option("--no-even-fill", is_flag=True,
              help="Keep the network's fill as it is (default: averaged with a smooth fill from around each "
                   "mark, which is closer to the photo; docs/restoring.md).")
@click.option("--no-paint-grow", is_flag=True,
              help="Keep each mark as found (default: a flat mark is grown over the rest of its own colour "
                   "around it, which the mask often misses in a JPEG, and the blends of its colour and the "
                   "photo at its edge are unblended; docs/restoring.md).")
@click.option("--solid-check/--no-solid-check", default=None,
              show_default="on for the shipped model, whose damage is solid paint; off for a --model FILE",
              help="In a lossless file, drop each mark with no solid colour, which is photo, not paint, and grow "
                   "by a pixel each mark whose edge is not solid, which was resized after painting, or, where every "
                   "paint edge is sharp, keep no more than a pixel past it; in a lossy file, "
                   "drop each mark the colour of what lies around it, and each small mark the model does not find "
                   "again in the picture mirrored (docs/restoring.md).")
@click.option("--graphic-check/--no-graphic-check", default=None,
              show_default="on for the shipped model, which knows photos; off for a --model FILE",
              help="Leave as it was a picture drawn rather than photographed (a chart, a screen, a spreadsheet): "
                   "around what was found, a quarter or more of its pixels flat colour or a straight gradient and "
                   "under 40 % in texture (or, gradients read within 3 levels, under 35 % of the unflat pixels), or "
                   "35 % or more in its 4 commonest colours and not nearly all of those in one, or so outside the "
                   "block that holds its texture (a photo inset in it) at 50 % or more (docs/restoring.md).")
@click.option("--jpeg-ringing", is_flag=True,
              help="Also take the ring a JPEG's paint left around each mark into the mask, found by saving the "
                   "mark again with the file's own tables, and take the paint out of it (default: the marks as "
                   "found; docs/restoring.md).")
@click.option("--no-jpeg-grow", is_flag=True,
              help="Keep a JPEG's or lossy WebP's mask as found (default: grown by a pixel where the chroma is "
                   "subsampled, a JPEG at 4:2:0 or 4:2:2 and every lossy WebP, since a mark's colour bleeds over its "
                   "edge there; docs/restoring.md).")
@click.option("--quality", type=click.IntRange(1, 100), default=None,
              show_default="a JPEG keeps its own quantization tables and subsampling; else 95",
              help="Re-encode JPEG / lossy WebP outputs at this quality.")
@quiet_option()
@click.option("--verbose", is_flag=True,
              help="Also show ONNX Runtime's and Ray's own log lines (hidden by default: every problem is "
                   "reported in one line of ours).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              help="local: threads on this machine; ray: Ray Data across a cluster (pip install -e '.[ray]').")
@click.option("--address", default=None, show_default="start a local Ray",
              help="--engine ray: the Ray cluster to join.")
@click.option("--actors", type=click.IntRange(min=1), default=None, show_default="1",
              help="--engine ray: inference actors, one ONNX Runtime session each.")
@click.option("--gpus-per-actor", type=click.FloatRange(min=0), default=None, callback=finite,
              show_default="1 when CUDA is asked for or the cluster has GPUs", help="--engine ray: GPUs each actor reserves.")
@version_option("restore-run")
def main(input_path, output_path, engine, verbose, **opts):
    """Restore the images in INPUT (a folder, recursively, or one image) into OUTPUT.

    Relative paths are mirrored under OUTPUT; each image keeps its format and mode unless
    --format says otherwise. Bad files are reported and skipped; the rest is restored.
    """
    from runtime.batch import PlanError
    from runtime.default_model import DefaultModelMissing
    from runtime.metadata import ModelFileError
    from runtime.ray_engine import RayUnavailable
    from runtime.read_warnings import route
    from runtime.session import DeviceUnavailableError

    route()  # Pillow's warnings while a file is read: that file's note, one line in the summary
    model, options, cluster = _option_groups(engine, input_path, opts)
    user_errors = (ModelFileError, DeviceUnavailableError, DefaultModelMissing, PlanError, RayUnavailable)
    try:
        _library_logs(verbose)
        if engine == "ray":
            result = _run_on_ray(model, input_path, output_path, options, cluster, verbose)
        else:
            result = _run_here(model, input_path, output_path, options)
    except user_errors as e:
        fail(flat(e))
    except ValueError as e:  # contradictory --device / --provider
        raise click.UsageError(flat(e)) from None
    except OSError as e:  # the report or an output folder that cannot be written
        fail(flat(f"{getattr(e, 'filename', '') or ''} {e.strerror or e}".strip()))
    except KeyboardInterrupt:
        click.echo("interrupted: finished outputs are complete; run the same command again to continue", err=True)
        sys.exit(130)
    for line in result.lines:
        click.echo(line)
    if result.report_text:  # the report could not be written (a full disk): it is not lost
        click.echo(result.report_text, err=True, nl=False)
    sys.exit(result.exit_code)


@dataclass
class ModelArgs:
    """Which model runs, where and how: the options that make the session."""

    path: str = "default"
    device: str = "auto"
    provider: Optional[str] = None
    threads: int = 0  # 0: all cores this process may use
    precision: str = "auto"
    tile: Optional[int] = None
    tile_budget: int = DEFAULT_TILE_BUDGET
    batch_size: int = 4
    coarse: bool = True  # also run large images smaller (runtime/pyramid.py)
    even_fill: bool = True  # average the fill with a smooth one (runtime/fill.py)
    grow_subsampled: bool = True  # grow the mask of chroma-subsampled JPEGs and lossy WebPs by a pixel
    paint_grow: bool = True  # grow each flat mark over its own paint (runtime/paint_grow.py)
    jpeg_ringing: bool = False  # also take in the ring a JPEG's paint left (runtime/jpeg_ringing.py)
    solid_check: Optional[bool] = None  # drop marks with no solid colour (lossless) or of their surroundings' (None: shipped model only)
    graphic_check: Optional[bool] = None  # leave graphics (charts, screens) as they are (None: shipped model only)


@dataclass
class ClusterArgs:
    """--engine ray's own options."""

    address: Optional[str] = None
    actors: Optional[int] = None
    gpus_per_actor: Optional[float] = None


def _option_groups(engine: str, input_path: str, opts: dict):
    """The command's options as (ModelArgs, RunOptions, ClusterArgs), each option used once."""
    from runtime.batch import RunOptions

    cluster = ClusterArgs(opts.pop("address"), opts.pop("actors"), opts.pop("gpus_per_actor"))
    if engine == "local" and cluster != ClusterArgs():
        raise click.UsageError("--address, --actors and --gpus-per-actor need --engine ray")
    if engine == "local" and "://" in input_path:
        raise click.UsageError("an INPUT URI (s3://, gs://, file://...) needs --engine ray")
    model = ModelArgs(path=opts.pop("model_path"), device=opts.pop("device"), provider=opts.pop("provider"),
                      threads=_threads(engine, opts.pop("threads")), precision=opts.pop("precision"), tile=opts.pop("tile"),
                      tile_budget=opts.pop("tile_budget"), batch_size=opts["batch_size"], coarse=not opts.pop("no_coarse"),
                      even_fill=not opts.pop("no_even_fill"), grow_subsampled=not opts.pop("no_jpeg_grow"),
                      paint_grow=not opts.pop("no_paint_grow"), jpeg_ringing=opts.pop("jpeg_ringing"),
                      solid_check=opts.pop("solid_check"), graphic_check=opts.pop("graphic_check"))
    max_memory = opts.pop("max_memory")
    options = RunOptions(format=opts.pop("fmt"), sync_images=not opts.pop("no_fsync"), report=opts.pop("report_path"),
                         progress=not opts.pop("quiet"), max_memory=max_memory * 1_000_000 if max_memory else None, **opts)
    return model, options, cluster


def _threads(engine: str, threads: int) -> int:
    """--threads, lowered to the CPUs this process may use on the local engine (`capped_threads`);
    a Ray actor's CPUs are its node's."""
    return capped_threads(threads) if engine == "local" else threads


def _library_logs(verbose: bool) -> None:
    """ONNX Runtime's own log lines only with --verbose (Ray's: runtime/ray_engine.py)."""
    import onnxruntime as ort

    from runtime import session

    session.LOG_SEVERITY = 2 if verbose else 4
    ort.set_default_logger_severity(2 if verbose else 4)


def _run_here(model: ModelArgs, input_path, output_path, options):
    """The local engine: one ONNX Runtime session, threads for reading and writing."""
    from runtime.batch import plan_run, run_folder
    from runtime.default_model import describe_model
    from runtime.restorer import Restorer

    plan = plan_run(input_path, output_path, options)  # a wrong argument is answered before the model loads
    start = time.perf_counter()
    restorer = Restorer(model.path, device=model.device, provider=model.provider, threads=model.threads or None,
                        tile=model.tile, tile_budget=model.tile_budget, batch_size=model.batch_size,
                        precision=model.precision, coarse=model.coarse, even_fill=model.even_fill,
                        grow_subsampled=model.grow_subsampled, paint_grow=model.paint_grow,
                        jpeg_ringing=model.jpeg_ringing, solid_check=model.solid_check,
                        graphic_check=model.graphic_check)
    choice = f", {restorer.model_choice}" if restorer.model_choice else ""
    click.echo(f"model {describe_model(model.path, restorer.model_path)}{choice} on {restorer.info.describe()} "
               f"({time.perf_counter() - start:.2f} s to load)", err=True)
    if model.tile and model.tile < (least := least_tile(restorer.halo, restorer.stride)):
        click.echo(f"note: --tile {model.tile} raised to {least}, twice this model's halo of {restorer.halo} "
                   "(a smaller tile computes mostly halo; --max-memory bounds memory)", err=True)
    return run_folder(restorer, input_path, output_path, options, plan=plan)


def _run_on_ray(model: ModelArgs, input_path, output_path, options, cluster: ClusterArgs, verbose: bool):
    """The Ray engine: the same plan, codecs, writes and report, scheduled by Ray Data."""
    from runtime.default_model import choose_model, describe_model
    from runtime.ray_engine import RayOptions, native_lines_hidden, run_folder_ray
    from runtime.ray_inputs import plan_input

    plan = plan_input(input_path, output_path, options)  # before the model is read or Ray started
    # The graph is chosen here, once, as the local engine chooses it; every actor loads that one.
    chosen, why = choose_model(model.path, model.precision, cpu=model.device != "cuda" and not cluster.gpus_per_actor)
    ray_options = RayOptions(address=cluster.address, actors=cluster.actors or 1, gpus_per_actor=cluster.gpus_per_actor,
                             device=model.device, provider=model.provider, threads=model.threads or None,
                             tile=model.tile, tile_budget=model.tile_budget, coarse=model.coarse,
                             even_fill=model.even_fill, grow_subsampled=model.grow_subsampled,
                             paint_grow=model.paint_grow, jpeg_ringing=model.jpeg_ringing,
                             solid_check=model.solid_check, graphic_check=model.graphic_check, verbose=verbose)
    click.echo(f"model {describe_model(model.path, chosen)}{', ' + why if why else ''} on Ray "
               f"({cluster.address or 'a local Ray'}, {ray_options.actors} actor(s))", err=True)
    with native_lines_hidden(not verbose):
        return run_folder_ray(chosen, input_path, output_path, options, ray_options, plan=plan)


if __name__ == "__main__":
    main()
