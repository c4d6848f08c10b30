"""`restore-bench`: latency, throughput and parity of every deployment path against eager PyTorch.

Parses, calls `benchmarks.runner.run_benchmark`, writes the reports. Progress goes to stderr,
the table to stdout.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional

import click

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

# benchmarks.backends.BACKEND_NAMES (that module imports torch, so --help cannot ask it);
# tests/test_bench.py checks that the two agree.
BACKEND_NAMES = (
    "eager", "eager-channels-last", "eager-bf16", "compile", "torchscript", "ort-cpu", "ort-cpu-int8",
    "ort-cpu-int8-halves", "openvino",
    "openvino-int8",
    "eager-cuda", "eager-cuda-amp", "compile-cuda", "ort-cuda", "ort-cuda-iobinding", "ort-cuda-fp16",
    "ort-cuda-fp16-iobinding", "ort-cuda-graph", "ort-cuda-fp16-graph", "ort-tensorrt", "ort-tensorrt-fp16",
)


def _int_list(ctx, param, value: str) -> List[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return out


def _name_list(ctx, param, value: str):
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names and param.name == "backends":  # '' would mean every backend (minutes, torch.compile included)
        raise click.BadParameter(f"no backend named in {value!r}; known: {', '.join(BACKEND_NAMES)}")
    unknown = [n for n in names if n not in BACKEND_NAMES]
    if unknown:
        raise click.BadParameter(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKEND_NAMES)}")
    return names


class DeviceChoice(click.Choice):
    """auto|cpu|cuda as in every command; 'all', this option's older spelling of auto, still works."""

    def __init__(self):
        super().__init__(["auto", "cpu", "cuda"])

    def convert(self, value, param, ctx):
        return super().convert("auto" if value == "all" else value, param, ctx)


def _command_line(ctx: click.Context) -> str:
    """The command as the user gave it (options set on the command line, in declaration order)."""
    from click.core import ParameterSource

    parts = ["restore-bench"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or ctx.get_parameter_source(param.name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


def _is_report(path: Path) -> bool:
    """An earlier restore-bench JSON report (its `schema` key), which a rerun may replace."""
    from benchmarks.report import SCHEMA

    try:
        report = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and str(report.get("schema", "")).split("/")[0] == SCHEMA.split("/")[0]


def _is_markdown(path: Path) -> bool:
    """An earlier restore-bench Markdown report: its heading, then its list of backends."""
    try:
        text = path.read_bytes()
    except OSError:
        return False
    return text.startswith(b"## Benchmark\n") and b"\nBackends:\n" in text


def _check_targets(report_path: Optional[str], md_path: Optional[str], overwrite: bool, inputs: List) -> None:
    """--report and --markdown, before any measuring (restore_toolkit.targets): not empty, not a
    folder, not an input nor each other, no user file replaced without --overwrite, writable."""
    from restore_toolkit.targets import check_file

    inputs = [p for p in inputs if p and p != "default"]
    if report_path is not None:
        check_file(report_path, "--report", overwrite, inputs=inputs, outputs=[md_path], ours=_is_report)
    if md_path is not None:
        check_file(md_path, "--markdown", overwrite, inputs=inputs, outputs=[report_path], ours=_is_markdown)


def _bench_errors():
    from benchmarks.report import ReportError
    from restore_core.checkpoint import CheckpointError
    from runtime.metadata import ModelFileError

    return ReportError, CheckpointError, ModelFileError, ValueError, OSError


@click.command(context_settings=COMMAND_SETTINGS)
@renamed_option("--model", "model", type=NamedPath(dir_okay=False, what="a model file or 'default'"), old=["--checkpoint"],
                show_default="default width, seeded random weights",
                help="Model to measure (.ckpt, .safetensors, or 'default' for the shipped model).")
@click.option("--onnx", "onnx_path", type=NamedPath(dir_okay=False), show_default="exported from the model",
              help="Pixels-signature ONNX file for the ONNX Runtime rows (alone: PyTorch rows are skipped).")
@click.option("--backends", callback=_name_list, default=None, show_default="all",
              help=f"Comma-separated backends to run: {', '.join(BACKEND_NAMES)}.")
@click.option("--exclude", callback=_name_list, default=None, show_default="none",
              help="Comma-separated backends to leave out, e.g. compile (about a minute to compile on a CPU).")
@click.option("--device", type=DeviceChoice(), default="auto",
              help="auto: the backends of every device (those that cannot run here are listed as skipped); "
                   "cpu or cuda: that device's only.")
@click.option("--batch-sizes", default="1,8", callback=_int_list, help="Comma-separated batch sizes.")
@click.option("--sizes", default="256", callback=_int_list, help="Comma-separated image sizes (square).")
@click.option("--min-runs", default=8, type=click.IntRange(min=1), help="Timed runs at least.")
@click.option("--min-seconds", default=2.0, type=click.FloatRange(min=0), callback=finite, help="Timed seconds at least.")
@click.option("--warmup", default=1, type=click.IntRange(min=0),
              help="Untimed runs after the (separately reported) first call.")
@click.option("--seed", default=0, help="Seed of the random weights when no model is given.")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), show_default="none",
              help="Write the full report as JSON to this file.")
@click.option("--markdown", "md_path", type=NamedPath(dir_okay=False), show_default="none",
              help="Write the README tables as Markdown to this file.")
@click.option("--overwrite", is_flag=True,
              help="Replace a --report or --markdown file that is not an earlier restore-bench report "
                   "(an earlier report is replaced without it).")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON on stdout instead of the table.")
@renamed_option("--heldout-per-photo", "heldout_per_photo", default=6, type=click.IntRange(min=0),
                old=["--quality-per-photo"],
                help="Held-out crops per photo for each backend's mask IoU / PSNR-in-mask columns (0: none).")
@click.option("--int8-onnx", type=NamedPath(dir_okay=False), show_default="quantized in the run",
              help="An int8 graph (restore-export onnx --int8) for the int8 rows.")
@click.option("--force-bf16", is_flag=True, help="Run bf16 rows even where the CPU emulates bf16 (very slow).")
@click.option("--flip-ensemble/--no-flip-ensemble", default=None, show_default="the checkpoint's",
              help="Run the checkpoint's pipeline (and the graphs exported from it in the run) on the image and "
                   "its mirror image, averaged, or on one view; --onnx and --int8-onnx files run as written.")
@click.option("--compare", "compare_path", type=NamedPath(dir_okay=False), show_default="none",
              help="An earlier JSON report: print the change per row.")
@quiet_option("No progress lines on stderr.")
@version_option("restore-bench")
@handle_errors(_bench_errors, "no report was written", extra="bench")
def main(model, onnx_path, backends, exclude, device, batch_sizes, sizes, min_runs, min_seconds, warmup, seed,
         report_path, md_path, overwrite, as_json, heldout_per_photo, int8_onnx, force_bf16, flip_ensemble, compare_path, quiet):
    """Time every deployment path of the restoration model on the same photos and weights, and
    compare each one's outputs with eager PyTorch fp32.

    With neither --model nor --onnx, a default-width model with seeded random weights is
    measured (speed does not depend on training).
    """
    require(["torch", "onnxscript", "skimage"], "bench", "restore-bench")
    from benchmarks.report import compare, load_report, table, write_json, write_markdown
    from benchmarks.runner import BenchSettings, run_benchmark
    from benchmarks.timing import TimingConfig

    _check_targets(report_path, md_path, overwrite, [model, onnx_path, int8_onnx])
    old = load_report(compare_path) if compare_path else None  # a bad file fails before minutes of measuring
    settings = BenchSettings(
        checkpoint=model, onnx=onnx_path, backends=backends, exclude=exclude or [], device=device,
        batch_sizes=batch_sizes, sizes=sizes, seed=seed, quality_per_photo=heldout_per_photo,
        int8_onnx=int8_onnx, force_bf16=force_bf16, flip_ensemble=flip_ensemble,
        timing=TimingConfig(warmup_runs=warmup, min_runs=min_runs, min_seconds=min_seconds),
    )
    report = run_benchmark(settings, log=(lambda line: None) if quiet else (lambda line: click.echo(line, err=True)))
    report["command"] = _command_line(click.get_current_context())
    if report_path is not None:
        write_json(report, report_path)
    if md_path is not None:
        write_markdown(report, md_path)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
        return
    click.echo(table(report))
    if old is not None:
        click.echo("")
        click.echo(compare(old, report))


if __name__ == "__main__":
    main()
