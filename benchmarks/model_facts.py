"""The figures of the networks themselves: parameters, FLOPs, the shipped files' sizes.

- the shipped model (`restore_core/assets/default.safetensors`, width 16) and the toolkit's
  default configuration (`ModelConfig()`, width 24): parameters (`count_parameters`) and FLOPs
  of one forward pass on a 256x256 image (`count_flops`, torch's FLOP counter);
- the shipped pipeline with the flip ensemble: FLOPs of `RestorationPipeline.forward_tensor`
  on one 256x256 image (both views);
- the shipped files: size in bytes and SHA-256.

    python -m benchmarks.model_facts -o benchmarks/results/model-facts
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from pathlib import Path

import click

from restore_core.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
FILES = ("restore_core/assets/default.safetensors", "runtime/assets/default.onnx", "runtime/assets/default.int8.onnx")


def _pipeline_flops(pipe, size: int) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        pipe.forward_tensor(torch.zeros(1, 3, size, size))
    return int(counter.get_total_flops())


def measure(size: int = 256) -> dict:
    from restore_core.checkpoint import load_model
    from restore_core.model import DualDecoderUNet, ModelConfig, count_flops, count_parameters

    shipped = load_model("default")
    default = DualDecoderUNet(ModelConfig()).eval()
    models = {
        "shipped": {"base_channels": shipped.config.base_channels, "depth": shipped.config.depth,
                    "parameters": count_parameters(shipped.model), "flops_one_view": count_flops(shipped.model, size),
                    "flops_flip_ensemble": _pipeline_flops(shipped.pipeline(), size)},
        "default_config": {"base_channels": default.cfg.base_channels, "depth": default.cfg.depth,
                           "parameters": count_parameters(default),
                           "flops_one_view": count_flops(default, size)},
    }
    files = {f: {"bytes": (ROOT / f).stat().st_size, "sha256": hashlib.sha256((ROOT / f).read_bytes()).hexdigest()}
             for f in FILES if (ROOT / f).is_file()}  # a release may ship no int8 graph
    return {"size": size, "models": models, "files": files}


def markdown(report: dict) -> str:
    size = report["size"]
    lines = [f"| model | width | depth | parameters | GFLOP per {size}² image, one view | with the flip ensemble |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, m in report["models"].items():
        flip = f"{m['flops_flip_ensemble'] / 1e9:.1f}" if "flops_flip_ensemble" in m else "–"
        lines.append(f"| {name} | {m['base_channels']} | {m['depth']} | {m['parameters'] / 1e6:.2f} M | "
                     f"{m['flops_one_view'] / 1e9:.1f} | {flip} |")
    lines += ["", "| file | size | SHA-256 |", "| --- | ---: | --- |"]
    for f, d in report["files"].items():
        lines.append(f"| `{f}` | {d['bytes'] / 1e6:.1f} MB | `{d['sha256']}` |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes .json and .md.")
@click.option("--size", default=256, show_default=True, help="Image side the FLOPs are counted at.")
def main(output: str, size: int) -> None:
    """Count the shipped and the default network's parameters and FLOPs, and the shipped files' sizes."""
    from benchmarks.report import environment, write_json

    report = {"command": shlex.join(["python", "-m", "benchmarks.model_facts", *sys.argv[1:]]),
              "machine": environment()["machine"], **measure(size)}
    write_json(report, output + ".json")
    atomic_write_text(output + ".md", markdown(report))
    click.echo(markdown(report))


if __name__ == "__main__":
    main()
