"""How `restore-run` does on users' files: painted photos saved as PNG, JPEG and WebP, and clean ones.

Each case is a photo of one held-out group (`heldout.PHOTO_SETS`; reports use "evaluation",
whose sources no choice ever read) with shapes painted on it and *then* saved in a format, as a
user's file is: the paint is compressed together with the photo. The files go through the real
`restore-run` command (the shipped model's default path unless `--model` / `--precision` say
otherwise), and its written outputs are decoded and scored against the file the user would have
had without the paint (the clean photo saved the same way):

- mask IoU against the damage (`degrade.damage_mask`: the shapes and every pixel the paint moved
  by more than `DegradeConfig.tolerance` levels after the save);
- PSNR of the written output, over the whole image and inside the damage, against the input's
  and against OpenCV's Telea inpainting *given the true damage mask* on the same decoded file;
- images made worse than their input; PSNR outside the damage against the decoded input (what
  the write-back costs where nothing was restored);
- whole photos as JPEG 90 and as PNG (`whole-png`), and each in a frame of one colour
  (`framed-jpeg-90`: a print's white border, a black matte), which must restore as the unframed
  photo does, and the crops too, each in a frame
  2, 4 or 8 % of its long side wide, white, black, grey or cream in turn (`framed-crops-jpeg-90`,
  `framed-crops-jpeg-75`: a frame thinner than the codec's blocks);
- collages: two of the group's crops side by side or one above the other, a gutter of one colour
  between them (1 to 3 % of the long side, white, black, grey or cream in turn; every third with
  a frame of it too), painted after they were put together (`collage-jpeg-90`: shapes may cross
  the gutter) and clean (`clean-collage-jpeg-90`, `clean-collage-jpeg-75`);
- for clean files (nothing painted): how many came back byte-identical, and how many were touched;
  clean graphics too (charts, screens, documents: `restore_core/graphics.py`, the group's own
  generators), which a folder of photos often holds.

The files are made by `benchmarks/photo_cases.py`; this module runs `restore-run` on them and
scores what it writes.

`--worst N` also draws the N painted files it improved least, over all formats, as a contact
sheet (PATH-worst.png: the file as decoded, the mask restore-run wrote, the written file, the
clean file).

    python -m benchmarks.photo_eval -o benchmarks/results/photo-eval-default
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import click
import numpy as np
from PIL import Image

from benchmarks.photo_cases import EVAL_SEED, FORMATS, TOLERANCE, FileCase, make_cases
from restore_core.degrade import decode
from restore_core.fileio import atomic_write_text
from restore_core.heldout import PHOTO_SETS, heldout_photos, iou, psnr, telea_fill
from runtime.plan import output_format


def restore_run(cases: List[FileCase], work: Path, args: List[str]) -> Tuple[List[Optional[bytes]], List[np.ndarray], dict]:
    """Run the real `restore-run` on the cases' files: (output bytes, mask, report) per case."""
    src, dst, report = work / "in", work / "out", work / "report.json"
    src.mkdir(parents=True)
    for c in cases:
        (src / (c.case.name + c.suffix)).write_bytes(c.data)
    cmd = [sys.executable, "-c", "from runtime.cli import main; main()", str(src), str(dst), "--save-mask", "-q",
           "--report", str(report), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise click.ClickException(f"restore-run failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    fmt = args[args.index("--format") + 1] if "--format" in args else None
    outs, masks = [], []
    for c in cases:
        suffix = output_format(c.suffix, fmt)[1]  # --format png: a.jpg -> a.png
        out = dst / (c.case.name + suffix)
        outs.append(out.read_bytes() if out.is_file() else None)
        m = dst / "masks" / (c.case.name + suffix + ("" if suffix == ".png" else ".png"))
        masks.append(np.asarray(Image.open(m)) > 0 if m.is_file() else np.zeros(c.case.mask.shape, bool))
    return outs, masks, json.loads(report.read_text())


def score(f: FileCase, out: Optional[bytes], mask: np.ndarray) -> Dict[str, float]:
    """The figures of one written output against its case (the file's pixels, the target, the damage)."""
    c = f.case
    if out is None:
        return {"name": c.name, "failed": 1.0}
    restored = decode(out)
    before, after = psnr(c.corrupted, c.clean), psnr(restored, c.clean)
    row = {"name": c.name, "failed": 0.0, "identical": float(out == f.data), "psnr_input": before, "psnr": after,
           "worse": float(after < before - 0.01), "psnr_outside_vs_input": psnr(restored, c.corrupted, ~c.mask)}
    if c.mask.any():
        t = telea_fill(c)
        row.update(mask_iou=iou(mask, c.mask), psnr_inside=psnr(restored, c.clean, c.mask),
                   # Against the painted shapes alone, and how well the shapes alone match the damage:
                   # a mask that found exactly the paint scores `paint_iou` as its mask IoU.
                   mask_iou_paint=iou(mask, c.mask if f.paint is None else f.paint),
                   paint_iou=1.0 if f.paint is None else iou(f.paint, c.mask),
                   telea_psnr=psnr(t, c.clean), telea_psnr_inside=psnr(t, c.clean, c.mask))
    else:
        row.update(false_positive_pixels=float(mask.mean()))
    return row


def summarize(rows: List[Dict[str, float]]) -> Dict[str, float]:
    ok = [r for r in rows if not r["failed"]]
    mean = lambda k: float(np.mean([r[k] for r in ok])) if ok and k in ok[0] else None  # noqa: E731
    out = {"images": len(rows), "failed": len(rows) - len(ok), "worse": int(sum(r["worse"] for r in ok)),
           "identical": int(sum(r["identical"] for r in ok)), "touched": int(sum(1 - r["identical"] for r in ok))}
    for k in ("mask_iou", "mask_iou_paint", "paint_iou", "psnr", "psnr_inside", "psnr_input", "telea_psnr",
              "telea_psnr_inside", "psnr_outside_vs_input", "false_positive_pixels"):
        out[k] = mean(k)
    if ok:
        out["min_psnr_outside_vs_input"] = float(min(r["psnr_outside_vs_input"] for r in ok))
    return out


def markdown(report: dict) -> str:
    f = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = [f"`restore-run {' '.join(report['restore_run_args'])}` on the {report['photos']} photos "
             f"({', '.join(report['sources'])}); damage tolerance {report['tolerance']} levels.", "",
             "| input | images | mask IoU | IoU vs the paint (the paint vs the damage) | PSNR out / in dB | in mask dB "
             "| Telea (true mask) whole / in mask dB | made worse | outside vs input dB (min) | byte-identical |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for fmt, s in report["formats"].items():
        paint = f"{f(s.get('mask_iou_paint'), 3)} ({f(s.get('paint_iou'), 3)})"
        lines.append(f"| {fmt} | {s['images']} | {f(s['mask_iou'], 3)} | {paint} | {f(s['psnr'])} / {f(s['psnr_input'])} | "
                     f"{f(s['psnr_inside'])} | {f(s['telea_psnr'])} / {f(s['telea_psnr_inside'])} | {s['worse']} | "
                     f"{f(s.get('min_psnr_outside_vs_input'), 1)} | {s['identical']} of {s['images'] - s['failed']} |")
    return "\n".join(lines) + "\n"


def evaluate(which: str, per_photo: int, formats: List[str], args: List[str], log=print,
             worst: Optional[List] = None, keep: int = 0) -> dict:
    """Cases, the real restore-run and the scores for each format: the report as a dict.

    `worst`: a list that is left holding the `keep` painted files improved least, as
    (gain dB, format, FileCase, written bytes, mask) tuples, least first."""
    report = {"photos": which, "sources": sorted(heldout_photos(which)), "seed": EVAL_SEED, "per_photo": per_photo,
              "tolerance": TOLERANCE, "restore_run_args": args, "formats": {}, "per_image": {}}
    for fmt in formats:
        cases = make_cases(fmt, which, per_photo)
        with tempfile.TemporaryDirectory() as tmp:
            outs, masks, run_report = restore_run(cases, Path(tmp), args)
        rows = [score(c, o, m) for c, o, m in zip(cases, outs, masks)]
        report["formats"][fmt] = summarize(rows)
        report["per_image"][fmt] = rows
        report.setdefault("model", run_report.get("summary", {}).get("model"))
        log(f"{fmt}: {json.dumps(report['formats'][fmt])}")
        if worst is not None and keep:
            worst.extend((r["psnr"] - r["psnr_input"], fmt, c, o, m)
                          for c, o, m, r in zip(cases, outs, masks, rows) if not r["failed"] and c.case.mask.any())
            worst.sort(key=lambda w: w[0])
            del worst[keep:]  # only the least improved stay in memory
    return report


def worst_sheet(worst: List, path: str) -> None:
    """The least improved files as a contact sheet: file as decoded, mask written, output, clean."""
    from restore_toolkit.sheet import save_sheet

    rows = [(f"{fmt} {f.case.name}: {gain:+.2f} dB, IoU {iou(mask, f.case.mask):.2f}",
             [f.case.corrupted, mask, decode(out), f.case.clean]) for gain, fmt, f, out, mask in worst]
    save_sheet(rows, path, columns=("file", "mask", "written", "clean"), cell=200)


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes PATH.json and PATH.md.")
@click.option("--photos", type=click.Choice(PHOTO_SETS), default="evaluation", show_default=True,
              help="Held-out group: evaluation for reports, selection for choices.")
@click.option("--per-photo", default=12, show_default=True, help="Crops per photo (whole photos: a third as many).")
@click.option("--formats", default=",".join(FORMATS), show_default=True, help="Comma-separated formats to run.")
@click.option("--model", default=None, help="restore-run --model (default: the shipped model).")
@click.option("--precision", default=None, help="restore-run --precision.")
@click.option("--no-coarse", is_flag=True, help="restore-run --no-coarse: the full-size pass only.")
@click.option("--no-even-fill", is_flag=True, help="restore-run --no-even-fill: the network's fill as it is.")
@click.option("--no-jpeg-grow", is_flag=True, help="restore-run --no-jpeg-grow: a JPEG's mask as found.")
@click.option("--no-paint-grow", is_flag=True, help="restore-run --no-paint-grow: each mark as found.")
@click.option("--jpeg-ringing", is_flag=True, help="restore-run --jpeg-ringing: a JPEG's marks with their ring.")
@click.option("--no-solid-check", is_flag=True, help="restore-run --no-solid-check: every mark of a lossless file kept as found.")
@click.option("--no-graphic-check", is_flag=True, help="restore-run --no-graphic-check: graphics restored as photos are.")
@click.option("--format", "fmt", type=click.Choice(["png"]), default=None,
              help="restore-run --format png: every file written as PNG (default: each in its own format).")
@click.option("--worst", default=0, show_default=True, help="Also draw the N files improved least (PATH-worst.png).")
def main(output, photos, per_photo, formats, model, precision, no_coarse, no_even_fill, no_jpeg_grow, no_paint_grow, jpeg_ringing, fmt,
         worst, no_solid_check, no_graphic_check):
    """Score restore-run on painted-then-saved photos of one held-out group, per format."""
    names = [f for f in formats.split(",") if f]
    unknown = [f for f in names if f not in FORMATS]
    if unknown:
        raise click.UsageError(f"unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    args = (["--model", model] if model else []) + (["--precision", precision] if precision else [])
    flags = {"--no-coarse": no_coarse, "--no-even-fill": no_even_fill, "--no-jpeg-grow": no_jpeg_grow,
             "--no-paint-grow": no_paint_grow, "--jpeg-ringing": jpeg_ringing, "--no-solid-check": no_solid_check,
             "--no-graphic-check": no_graphic_check}
    args += [flag for flag, on in flags.items() if on] + (["--format", fmt] if fmt else [])
    from benchmarks.report import environment, write_json

    least: List = []
    report = evaluate(photos, per_photo, names, args, log=click.echo, worst=least, keep=worst)
    report = {"command": shlex.join(["python", "-m", "benchmarks.photo_eval", *sys.argv[1:]]),
              "machine": environment()["machine"], **report}
    write_json(report, output + ".json", default=str)
    atomic_write_text(output + ".md", markdown(report))
    if least:
        worst_sheet(least, output + "-worst.png")
    click.echo(markdown(report))


if __name__ == "__main__":
    main()
