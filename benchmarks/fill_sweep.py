"""Which even fill (runtime/fill.py): the network's share `blend` and the rim `clear`, and how far
a mark grows over its paint (runtime/paint_grow.py, `tolerance`), chosen on the selection photos.

The network runs once per file (`Restorer(even_fill=False, paint_grow=False)`: the same graph,
mask, smaller copies and JPEG grow as `restore-run`); then each (clear, blend) pair evens out its
fill, and the restored pixels are scored against the clean file (as `benchmarks/photo_eval.py`
scores them, but before they are encoded: a JPEG's re-encoding is the same for every pair). Only the masked pixels differ between pairs, so one network pass serves the whole
grid. Then, at the chosen pair, each tolerance grows the marks over their paint first (0: not
grown), chosen by the same rule among the tolerances that lower no kind's mean mask IoU (growing
changes the mask; one that repaints photo beside the marks can still score well).

For reference, each kind also gets the smooth fill alone and OpenCV's Telea inpainting, both
*given the true mask* (no network: how good the smooth fill is as an inpainting; Telea where
OpenCV is installed).

The rule: among the pairs that make no file worse than its input, the one with the highest mean,
over the kinds of file, of each kind's mean PSNR gain over the network's fill alone (each kind
weighs the same, however many files it has).

    python -m benchmarks.fill_sweep -o benchmarks/results/fill-sweep

Only the selection photos are read: this makes a choice.
"""

from __future__ import annotations

import io
import shlex
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import click
import numpy as np
from PIL import Image

from benchmarks.photo_cases import FORMATS, FileCase, make_cases
from restore_core.fileio import atomic_write_text
from restore_core.heldout import iou, psnr, telea_fill
from runtime.fill import BLEND, CLEAR, even_fill
from runtime.paint_grow import TOLERANCE, grow_over_paint

PAINTED = [f for f, (_save, kind) in FORMATS.items() if kind != "clean"]  # clean files have no fill to choose
Pair = Tuple[int, float]  # (clear, blend)


def network_pass(restorer, cases: Sequence[FileCase]) -> List[Tuple[FileCase, np.ndarray, np.ndarray]]:
    """Each file restored with the network's fill as it is: (case, restored (H, W, 3), mask (H, W) bool)."""
    out = []
    for c in cases:
        r = restorer.restore(Image.open(io.BytesIO(c.data)))
        out.append((c, np.asarray(r.image.convert("RGB")), np.asarray(r.mask) > 0))
    return out


def score_pairs(passes, pairs: Sequence[Pair]) -> Dict[Pair, List[float]]:
    """PSNR against the clean file of every file, for each pair (and for the network alone: blend 1)."""
    scores = {(0, 1.0): [psnr(out, c.case.clean) for c, out, _mask in passes]}
    for clear, blend in pairs:
        scores[(clear, blend)] = [psnr(even_fill(c.case.corrupted, out.copy(), mask, blend, clear), c.case.clean)
                                  for c, out, mask in passes]
    return scores


def score_tolerances(passes, pair: Pair, tolerances: Sequence[int]) -> Tuple[Dict[int, List[float]], Dict[int, float]]:
    """Each mark grown over its paint by each tolerance, then evened out by `pair`: the PSNR of
    every file, and the mean mask IoU over the painted files."""
    clear, blend = pair
    scores, ious = {}, {}
    for tol in tolerances:
        rows, overlaps = [], []
        for c, out, mask in passes:
            grown = grow_over_paint(c.case.corrupted, mask, tol)
            filled = even_fill(c.case.corrupted, out.copy(), mask | grown, blend, clear, smooth_only=grown)
            rows.append(psnr(filled, c.case.clean))
            if c.case.mask.any():
                overlaps.append(iou(mask | grown, c.case.mask))
        scores[tol], ious[tol] = rows, float(np.mean(overlaps)) if overlaps else 1.0
    return scores, ious


def given_true_mask(passes) -> Dict[str, Optional[float]]:
    """Mean PSNR of the smooth fill alone (blend 0) and of Telea, each given the true mask."""
    import importlib.util

    cases = [c.case for c, _o, _m in passes if c.case.mask.any()]
    smooth = [psnr(even_fill(c.corrupted, c.corrupted.copy(), c.mask, 0.0, 0), c.clean) for c in cases]
    telea = [psnr(telea_fill(c), c.clean) for c in cases] if importlib.util.find_spec("cv2") else None
    return {"smooth_fill": float(np.mean(smooth)), "telea": None if telea is None else float(np.mean(telea))}


def choose(table: Dict[str, Dict], inputs: Dict[str, List[float]], baseline=(0, 1.0)):
    """The rule of the module docstring: `table[kind][choice]` PSNR per file, `inputs[kind]` the
    input's; the gain is against `baseline` (the network alone, `(0, 1.0)`, for the pairs). None
    when every choice makes a file worse."""
    best, best_gain = None, -np.inf
    for pair in next(iter(table.values())):
        if pair == baseline:
            continue
        if any(a < i - 0.01 for kind in table for a, i in zip(table[kind][pair], inputs[kind])):
            continue  # made a file worse than its input
        gain = float(np.mean([np.mean(table[kind][pair]) - np.mean(table[kind][baseline]) for kind in table]))
        if gain > best_gain:
            best, best_gain = pair, gain
    return best


def _rows(table, inputs, kinds, baseline, name) -> List[dict]:
    rows = []
    for choice in table[kinds[0]]:
        gains = {k: float(np.mean(table[k][choice]) - np.mean(table[k][baseline])) for k in kinds}
        worse = sum(a < i - 0.01 for k in kinds for a, i in zip(table[k][choice], inputs[k]))
        rows.append({**dict(zip(name, choice if isinstance(choice, tuple) else (choice,))), "gain_db": gains,
                     "mean_gain_db": float(np.mean(list(gains.values()))), "worse": int(worse),
                     "psnr": {k: float(np.mean(table[k][choice])) for k in kinds}})
    return rows


def sweep(restorer, kinds: Sequence[str], per_photo: int, pairs: Sequence[Pair], tolerances: Sequence[int],
          log=print) -> dict:
    table, inputs, oracle, passes = {}, {}, {}, {}
    for kind in kinds:
        passes[kind] = network_pass(restorer, make_cases(kind, "selection", per_photo))
        table[kind] = score_pairs(passes[kind], pairs)
        oracle[kind] = given_true_mask(passes[kind])
        inputs[kind] = [psnr(c.case.corrupted, c.case.clean) for c, _o, _m in passes[kind]]
        log(f"{kind}: {len(passes[kind])} files")
    chosen = choose(table, inputs)
    report = {"photos": "selection", "per_photo": per_photo, "kinds": list(kinds),
              "rows": _rows(table, inputs, kinds, (0, 1.0), ("clear", "blend")), "given_true_mask": oracle,
              "chosen": None if chosen is None else {"clear": chosen[0], "blend": chosen[1]},
              "shipped": {"clear": CLEAR, "blend": BLEND, "tolerance": TOLERANCE}}
    if chosen is not None and tolerances:
        scored = {k: score_tolerances(passes[k], chosen, [0, *tolerances]) for k in kinds}
        grown = {k: psnr_rows for k, (psnr_rows, _iou) in scored.items()}
        rows = _rows(grown, inputs, kinds, 0, ("tolerance",))
        for r in rows:
            r["mask_iou"] = {k: scored[k][1][r["tolerance"]] for k in kinds}
        report["tolerance_rows"] = rows
        # Growing changes the mask: a tolerance that lowers the mean mask IoU of any kind repaints
        # photo beside the marks, however it scores, and is not chosen.
        kept = {k: {t: v for t, v in grown[k].items() if all(scored[j][1][t] >= scored[j][1][0] for j in kinds)}
                for k in kinds}
        report["chosen"]["tolerance"] = choose(kept, inputs, baseline=0) or 0
    return report


def markdown(report: dict) -> str:
    kinds = report["kinds"]
    lines = [f"`{report['command']}` ({report['machine']['cpu']}): mean PSNR gain over the network's fill "
             f"alone, dB, on the selection photos ({report['per_photo']} crops per photo).", "",
             "| clear | blend | " + " | ".join(kinds) + " | mean | files made worse |",
             "| --- | --- | " + " | ".join("---" for _ in kinds) + " | --- | --- |"]
    for r in report["rows"]:
        lines.append(f"| {r['clear']} | {r['blend']:.2f} | " + " | ".join(f"{r['gain_db'][k]:+.2f}" for k in kinds)
                     + f" | {r['mean_gain_db']:+.3f} | {r['worse']} |")
    f = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    lines += ["", "Given the true mask, no network (mean PSNR, dB):", "",
              "| fill | " + " | ".join(kinds) + " |", "| --- | " + " | ".join("---" for _ in kinds) + " |"]
    for name, key in (("smooth fill alone", "smooth_fill"), ("OpenCV Telea", "telea")):
        lines.append(f"| {name} | " + " | ".join(f(report["given_true_mask"][k][key]) for k in kinds) + " |")
    c, shipped = report["chosen"], report["shipped"]
    if report.get("tolerance_rows"):
        lines += ["", "Each mark grown over its paint first, at the chosen pair (tolerance in levels; the PSNR gain "
                  "against not growing, dB, and in brackets the change of the mean mask IoU; a tolerance that "
                  "lowers any kind's IoU is not chosen):", "",
                  "| tolerance | " + " | ".join(kinds) + " | mean | files made worse |",
                  "| --- | " + " | ".join("---" for _ in kinds) + " | --- | --- |"]
        base = report["tolerance_rows"][0]["mask_iou"]
        for r in report["tolerance_rows"]:
            lines.append(f"| {r['tolerance']} | " + " | ".join(
                f"{r['gain_db'][k]:+.2f} ({r['mask_iou'][k] - base[k]:+.3f})" for k in kinds)
                + f" | {r['mean_gain_db']:+.3f} | {r['worse']} |")
    lines += ["", "Chosen: " + ("none (every pair made a file worse)" if c is None else
                                f"clear {c['clear']}, blend {c['blend']:.2f}, tolerance {c.get('tolerance', '–')}")
              + f"; shipped: clear {shipped['clear']}, blend {shipped['blend']:.2f}, tolerance {shipped['tolerance']}."]
    return "\n".join(lines) + "\n"


def _floats(text: str, cast):
    return [cast(v) for v in text.split(",") if v]


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes PATH.json and PATH.md.")
@click.option("--per-photo", default=4, show_default=True, help="Crops per selection photo (whole photos: a third as many).")
@click.option("--formats", default=",".join(PAINTED), show_default=True, help="Comma-separated painted formats.")
@click.option("--clear", "clears", default="0,1,2", show_default=True, help="Rims to try (pixels).")
@click.option("--blend", "blends", default="0.55,0.45,0.35,0.25,0.15,0.05", show_default=True, help="Network shares to try.")
@click.option("--tolerance", "tolerances", default="4,8,12,16,20,24,32", show_default=True,
              help="Paint-grow tolerances to try at the chosen pair (levels; 0, not grown, is always tried).")
@click.option("--model", default=None, help="An ONNX model (default: the shipped one).")
@click.option("--precision", default="auto", show_default=True, help="As restore-run --precision.")
def main(output, per_photo, formats, clears, blends, tolerances, model, precision):
    """Try each (clear, blend) of the even fill, then each paint-grow tolerance, on the selection photos."""
    kinds = [f for f in formats.split(",") if f]
    unknown = [k for k in kinds if k not in PAINTED]
    if unknown:
        raise click.UsageError(f"unknown painted format {unknown[0]!r} (known: {', '.join(PAINTED)})")
    from benchmarks.report import environment, write_json
    from runtime import Restorer

    restorer = Restorer(model, precision=precision, even_fill=False, paint_grow=False)
    pairs = [(c, b) for c in _floats(clears, int) for b in _floats(blends, float)]
    report = sweep(restorer, kinds, per_photo, pairs, _floats(tolerances, int), log=click.echo)
    report = {"command": shlex.join(["python", "-m", "benchmarks.fill_sweep", *sys.argv[1:]]),
              "machine": environment()["machine"], **report}
    write_json(report, output + ".json")
    atomic_write_text(output + ".md", markdown(report))
    click.echo(markdown(report))


if __name__ == "__main__":
    main()
