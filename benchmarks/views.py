"""The shipped model's graphs on the evaluation photos: one view, the flip ensemble, int8.

On several seeded draws of the held-out set (`restore_core.heldout.heldout_set`, evaluation
photos only; the first draw is the set `restore-validate --heldout` scores), the shipped weights
restore each crop four ways, each image at its own size:

- `flip`: eager PyTorch fp32 with the flip ensemble (the release's setting, the fp32 graph);
- `one view`: the same weights and pipeline without the flip ensemble;
- `int8`: the shipped int8 graph (`runtime/assets/default.int8.onnx`, one view) through ONNX
  Runtime's CPU provider, the graph alone (`Restorer.infer`): the steps `restore-run` takes after
  it (the membrane fill, the paint grow, the frame...) are not taken by the fp32 columns either,
  so the columns compare graphs;
- `telea`: OpenCV's Telea inpainting *given the true mask* (the reference a model must beat).

Each is scored with `heldout.summarize` (mask IoU, PSNR over the whole image and inside the true
mask, images made worse) and the report also gives the per-photo figures of the flip ensemble.
One torch thread and one ONNX Runtime thread.

    python -m benchmarks.views -o benchmarks/results/views-default
"""

from __future__ import annotations

import shlex
import sys
from typing import Dict, List

import click

from restore_core.fileio import atomic_write_text
from restore_core.heldout import HELDOUT_SEED, heldout_set, score_case, summarize, telea_fill
from runtime.default_model import SHIPPED_INT8

METHODS = ("one view", "flip", "int8", "telea")


def measure(seeds: List[int], per_photo: int) -> Dict:
    import torch

    from restore_core.checkpoint import load_model
    from restore_core.validate import pixel_restorer
    from runtime import Restorer

    torch.set_num_threads(1)
    restorers = {
        "one view": pixel_restorer(load_model("default", flip_ensemble=False).pipeline()),
        "flip": pixel_restorer(load_model("default").pipeline()),
    }
    if SHIPPED_INT8.is_file():  # optional: a release may ship no int8 graph
        int8 = Restorer("default", device="cpu", threads=1, precision="int8", tile=0)
        restorers["int8"] = lambda rgb: (lambda r: (r[0][0], r[1][0, ..., 0] > 0))(int8.infer(rgb[None]))
    draws = {}
    for seed in seeds:
        cases = heldout_set(per_photo, seed=seed)
        rows: Dict[str, List[Dict]] = {}
        for name, restore in restorers.items():
            rows[name] = []
            for case in cases:
                restored, mask = restore(case.corrupted)
                rows[name].append({**score_case(case, restored, mask), "name": case.name})
        rows["telea"] = [{**score_case(c, telea_fill(c), None), "name": c.name} for c in cases]
        summaries = {m: summarize(rows[m]) for m in METHODS if m in rows}
        summaries["telea"]["mask_iou"] = None  # given, not found
        sources = sorted({c.source for c in cases})
        per_source = {s: summarize([r for c, r in zip(cases, rows["flip"]) if c.source == s]) for s in sources}
        draws[str(seed)] = {"images": len(cases), "summary": summaries, "flip_per_photo": per_source,
                            "per_image": rows}
    return draws


def _cell(s: Dict | None, iou: bool = True) -> str:
    if s is None:
        return "–"
    head = f"{s['mask_iou']:.3f}, " if iou and s.get("mask_iou") is not None else ""
    return f"{head}{s['psnr']:.2f} / {s['psnr_inside']:.2f}, {s['worse']} worse"


def _delta(a: Dict | None, b: Dict) -> str:
    if a is None:
        return "–"
    return (f"{a['mask_iou'] - b['mask_iou']:+.4f}, {a['psnr'] - b['psnr']:+.2f} / "
            f"{a['psnr_inside'] - b['psnr_inside']:+.2f}")


def markdown(report: Dict) -> str:
    lines = [f"The shipped model on the evaluation photos ({', '.join(report['sources'])}), "
             f"{report['per_photo']} crops per photo per draw; {report['machine']['cpu']}, one thread. "
             "Mask IoU, PSNR whole image / inside the true mask (dB), images made worse:", "",
             "| draw (seed) | one view, fp32 | flip ensemble, fp32 (shipped) | int8 graph, one view | Telea, true mask |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for seed, d in report["draws"].items():
        s = d["summary"]
        lines.append(f"| {seed} | {_cell(s['one view'])} | {_cell(s['flip'])} | {_cell(s.get('int8'))} | "
                     f"{_cell(s['telea'], iou=False)} |")
    lines += ["", "Flip ensemble minus one view, and int8 minus one view fp32 (mask IoU, dB whole / in the mask):", "",
              "| draw (seed) | flip − one view | int8 − one view |", "| --- | ---: | ---: |"]
    for seed, d in report["draws"].items():
        s = d["summary"]
        lines.append(f"| {seed} | {_delta(s['flip'], s['one view'])} | {_delta(s.get('int8'), s['one view'])} |")
    lines += ["", "Flip ensemble per photo (mask IoU, PSNR whole / in the mask dB, made worse):", "",
              "| draw (seed) | " + " | ".join(report["sources"]) + " |", "|" + " --- |" * (len(report["sources"]) + 1)]
    for seed, d in report["draws"].items():
        lines.append(f"| {seed} | " + " | ".join(_cell(d["flip_per_photo"][p]) for p in report["sources"]) + " |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes .json and .md.")
@click.option("--draws", default=4, show_default=True, help="Draws of the held-out set: seeds HELDOUT_SEED, +1, ...")
@click.option("--per-photo", default=12, show_default=True, help="Crops per evaluation photo per draw.")
def main(output: str, draws: int, per_photo: int) -> None:
    """Score one view, the flip ensemble and the int8 graph of the shipped model on the evaluation photos."""
    from benchmarks.report import environment, write_json
    from restore_core.heldout import EVALUATION_PHOTOS

    seeds = [HELDOUT_SEED + i for i in range(draws)]
    report = {"command": shlex.join(["python", "-m", "benchmarks.views", *sys.argv[1:]]),
              "machine": environment()["machine"], "model": "default", "sources": sorted(EVALUATION_PHOTOS),
              "per_photo": per_photo, "seeds": seeds, "draws": measure(seeds, per_photo)}
    write_json(report, output + ".json", default=float)
    atomic_write_text(output + ".md", markdown(report))
    click.echo(markdown(report))


if __name__ == "__main__":
    main()
