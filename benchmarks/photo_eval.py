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
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import click
import numpy as np
from PIL import Image

from restore_core.degrade import DegradeConfig, decode
from restore_core.fileio import atomic_write_text
from restore_core.graphics import graphics
from restore_core.heldout import (
    HELDOUT_CORRUPTION,
    PHOTO_SETS,
    SAVES,
    Case,
    heldout_photos,
    heldout_set,
    iou,
    psnr,
    saved_case,
    telea_fill,
    unpainted,
    whole_set,
)
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng
from runtime.plan import output_format

EVAL_SEED = 20261204
TOLERANCE = DegradeConfig().tolerance
# name -> (how it is saved: a key of heldout.SAVES, what is cut from each photo)
FORMATS = {
    "png": ("png", "crops"),
    "jpeg-75-420": ("jpeg-75-420", "crops"),
    "jpeg-90-420": ("jpeg-90-420", "crops"),
    "jpeg-95-420": ("jpeg-95-420", "crops"),
    "jpeg-95-444": ("jpeg-95-444", "crops"),
    "jpeg-95-422": ("jpeg-95-422", "crops"),
    "png-resized": ("png", "crops-resized"),
    "jpeg-90-resized": ("jpeg-90-420", "crops-resized"),
    "webp-75": ("webp-75", "crops"),
    "webp-90": ("webp-90", "crops"),
    "whole-jpeg-90": ("jpeg-90-420", "whole"),
    "whole-png": ("png", "whole"),  # the same whole photos, saved exactly
    "framed-jpeg-90": ("jpeg-90-420", "framed"),  # the whole photos above, each in a white or black frame
    "framed-crops-jpeg-90": ("jpeg-90-420", "framed-crops"),  # the crops, in frames of 4 colours and 3 widths
    "framed-crops-jpeg-75": ("jpeg-75-420", "framed-crops"),
    "collage-jpeg-90": ("jpeg-90-420", "collage"),  # two crops with a gutter between them, then painted
    "collage3-jpeg-90": ("jpeg-90-420", "collage3"),  # three: one beside two stacked, then painted
    "camera-12mp-jpeg-90": ("jpeg-90-420", "camera"),
    "clean-jpeg-90": ("jpeg-90-420", "clean"),
    "clean-png": ("png", "clean"),
    "clean-webp-90": ("webp-90", "clean"),
    "clean-jpeg-75": ("jpeg-75-420", "clean"),
    "clean-camera-12mp-jpeg-90": ("jpeg-90-420", "clean-camera"),
    "clean-crops-jpeg-90": ("jpeg-90-420", "clean-crops"),
    "clean-framed-crops-jpeg-90": ("jpeg-90-420", "clean-framed-crops"),  # the framed crops, nothing painted
    "clean-framed-crops-jpeg-75": ("jpeg-75-420", "clean-framed-crops"),
    "clean-collage-jpeg-90": ("jpeg-90-420", "clean-collage"),
    "clean-collage-jpeg-75": ("jpeg-75-420", "clean-collage"),
    "clean-collage3-jpeg-90": ("jpeg-90-420", "clean-collage3"),
    "clean-collage3-jpeg-75": ("jpeg-75-420", "clean-collage3"),
    "clean-graphics-png": ("png", "clean-graphics"),  # charts, screens, documents: not photos (restore_core/graphics.py)
    "clean-graphics-jpeg-90": ("jpeg-90-420", "clean-graphics"),
    "clean-graphics-jpeg-75": ("jpeg-75-420", "clean-graphics"),
    "clean-graphics-webp-90": ("webp-90", "clean-graphics"),
}
SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
CAMERA = (3000, 4000)  # (H, W): a 12-megapixel camera photo
RESIZED = 0.75  # the scale of the resized kinds (saved as PNG, or as JPEG 90)
FRAME = 0.04  # of the long side: the width of the framed kind's border, on every side
FRAMES = (0.02, 0.04, 0.08)  # of the long side: the framed crops' widths, in turn
FRAME_COLOURS = ((255, 255, 255), (0, 0, 0), (128, 128, 128), (238, 232, 216))  # white, black, grey, cream
GUTTERS = (0.01, 0.02, 0.03)  # of the long side: the collages' gutters, in turn
CAMERA_PAINT = CorruptionConfig(count=(1, 6), size=(0.02, 0.15), shapes=("square", "circle"), fill="random")


@dataclass
class FileCase:
    """One file to restore: its bytes and the case as the file holds it (`heldout.saved_case`)."""

    case: Case
    data: bytes
    suffix: str
    paint: Optional[np.ndarray] = None  # (H, W) bool: where the shapes were painted, before the save


def _camera_photo(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`photo` scaled up to 12 MP with a little sensor noise: a camera-size file's pixel count."""
    h, w = CAMERA if photo.shape[0] <= photo.shape[1] else CAMERA[::-1]
    big = np.asarray(Image.fromarray(photo).resize((w, h), Image.LANCZOS), dtype=np.float32)
    big += rng.standard_normal(big.shape).astype(np.float32) * 2.0
    return np.clip(big, 0, 255).round().astype(np.uint8)


def _resized(case: Case, scale: float = RESIZED) -> Case:
    """`case` scaled after it was painted, as a picture shared or exported smaller is (LANCZOS);
    its mask: the shapes where they land (`saved_case` adds the ring the resampling left)."""
    h, w = case.clean.shape[:2]
    size = (round(w * scale), round(h * scale))
    clean, painted = (np.asarray(Image.fromarray(a).resize(size, Image.LANCZOS)) for a in (case.clean, case.corrupted))
    shapes = np.asarray(Image.fromarray(case.mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR)) >= 128
    return Case(case.name + "_small", case.source, clean, painted, shapes)


def _framed(case: Case, index: int, width: float = FRAME, colour: Optional[Tuple[int, int, int]] = None) -> Case:
    """`case` in a frame of one colour, `width` of its long side wide on every side: a print's
    border, a shared photo's matte; `colour` None: white, black for every second case. The frame
    is not damage."""
    b = max(4, round(width * max(case.clean.shape[:2])))
    colour = colour or ((255, 255, 255) if index % 2 == 0 else (0, 0, 0))

    def pad(a: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0] + 2 * b, a.shape[1] + 2 * b) + a.shape[2:], a.dtype)
        if a.ndim == 3:
            out[:] = np.asarray(colour, a.dtype)
        out[b:-b, b:-b] = a
        return out

    return Case(case.name + "_framed", case.source, pad(case.clean), pad(case.corrupted), pad(case.mask))


def _scaled(img: np.ndarray, across: int, side: int) -> np.ndarray:
    """`img` scaled (LANCZOS) to `side` pixels high (`across` 0) or wide (1), its shape kept."""
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((side, round(h * side / w)) if across else (round(w * side / h), side),
                                                  Image.LANCZOS))


def _joined(photos: List[np.ndarray], across: int, g: int, colour: Tuple[int, int, int]) -> np.ndarray:
    """`photos` (each scaled to `side`, the first's side) side by side (`across` 0) or one above
    the other (1), a gutter `g` pixels wide of `colour` between each two."""
    side = photos[0].shape[across]
    gutter = np.empty((side, g, 3) if not across else (g, side, 3), np.uint8)
    gutter[:] = colour
    parts = [photos[0]]
    for p in photos[1:]:
        parts += [gutter, p if p.shape[across] == side else _scaled(p, across, side)]
    return np.concatenate(parts, axis=1 - across)


def _as_collage(name: str, source: str, clean: np.ndarray, index: int, g: int, seed: int, painted: bool) -> Case:
    """A collage's case: every third `index` also framed in its gutters' colour, painted over as a
    whole where `painted`."""
    case = Case(name, source, clean, clean, np.zeros(clean.shape[:2], bool))
    if index % 3 == 2:
        case = _framed(case, 0, g / max(clean.shape[:2]), FRAME_COLOURS[index % len(FRAME_COLOURS)])
    if not painted:
        return Case(name + "_clean", case.source, case.clean, case.clean, case.mask)
    return Case(name, case.source, case.clean, *corrupt(case.clean, sample_rng(seed, 2000 + index), HELDOUT_CORRUPTION))


def _collage(a: Case, b: Case, index: int, seed: int, painted: bool) -> Case:
    """The clean crops of `a` and `b` side by side (one above the other for every second `index`),
    scaled to one height (width), with a gutter between them of `GUTTERS` and `FRAME_COLOURS` in
    turn (every third also framed in it), then painted over as a whole where `painted`."""
    across = index % 2  # 0: side by side, 1: one above the other
    side = min(x.clean.shape[across] for x in (a, b))
    photos = [_scaled(x.clean, across, side) for x in (a, b)]
    g = max(3, round(GUTTERS[index % len(GUTTERS)] * max(sum(p.shape[1 - across] for p in photos), side)))
    clean = _joined(photos, across, g, FRAME_COLOURS[index % len(FRAME_COLOURS)])
    return _as_collage(f"{a.name}_{b.name}_collage", a.source, clean, index, g, seed, painted)


def _collage3(a: Case, b: Case, c: Case, index: int, seed: int, painted: bool) -> Case:
    """Three clean crops: `b` above `c`, `a` beside them (for every second `index`, `b` beside
    `c`, `a` under them), the pair about as long as `a`, with gutters of `GUTTERS` and
    `FRAME_COLOURS` in turn: the gutter between `b` and `c` runs only part of the way across.
    Every third also framed in it, then painted over as a whole where `painted`."""
    across = index % 2  # 0: `a` beside the pair, 1: under it
    colour = FRAME_COLOURS[index % len(FRAME_COLOURS)]
    g = max(3, round(GUTTERS[index % len(GUTTERS)] * 2 * max(a.clean.shape[:2])))
    # `b` and `c` scaled to one width (height) at which, stacked, they are about as long as `a`
    length = a.clean.shape[across]  # the side of `a` that the pair runs along
    side = max(8, round((length - g) / sum(x.clean.shape[across] / x.clean.shape[1 - across] for x in (b, c))))
    pair = _joined([_scaled(x.clean, 1 - across, side) for x in (b, c)], 1 - across, g, colour)
    clean = _joined([pair, a.clean], across, g, colour)
    return _as_collage(f"{a.name}_{b.name}_{c.name}_collage3", a.source, clean, index, g, seed, painted)


def _laid_out(which: str, kind: str, per_photo: int, seed: int) -> Optional[List[Case]]:
    """The cases of a kind drawn or laid out from others (graphics, frames, collages), or None."""
    if kind == "clean-graphics":  # drawn, not photographed: the group's own generators
        return [Case(name, "graphics", img, img, np.zeros(img.shape[:2], bool))
                for name, img in graphics(which, per_photo).items()]
    if kind == "framed":  # the whole photos, the same paintings, each in a frame
        return [_framed(c, i) for i, c in enumerate(_painted(which, "whole", per_photo, seed))]
    if kind in ("framed-crops", "clean-framed-crops"):  # the crops, each in a frame: widths and colours in turn
        crops = _painted(which, "crops" if kind == "framed-crops" else "clean-crops", per_photo, seed)
        return [_framed(c, i, FRAMES[i % len(FRAMES)], FRAME_COLOURS[i % len(FRAME_COLOURS)]) for i, c in enumerate(crops)]
    if kind in ("collage", "clean-collage"):  # pairs of the crops, a gutter between them
        crops = heldout_set(per_photo, seed=seed, photos=which)
        return [_collage(crops[i], crops[i + 1], i // 2, seed, kind == "collage") for i in range(0, len(crops) - 1, 2)]
    if kind in ("collage3", "clean-collage3"):  # threes of the crops: a gutter that runs part of the way
        crops = heldout_set(per_photo, seed=seed, photos=which)
        return [_collage3(crops[i], crops[i + 1], crops[i + 2], i // 3, seed, kind == "collage3")
                for i in range(0, len(crops) - 2, 3)]
    return None


def _painted(which: str, kind: str, per_photo: int, seed: int) -> List[Case]:
    """The cases of one kind before the save: crops (as painted, resized after painting, or clean),
    whole photos, 12 MP photos, clean photos whole or at 12 MP, or those `_laid_out` makes."""
    laid_out = _laid_out(which, kind, per_photo, seed)
    if laid_out is not None:
        return laid_out
    if kind in ("crops", "clean-crops", "crops-resized"):
        crops = heldout_set(per_photo, seed=seed, photos=which)
        if kind == "crops-resized":  # painted, then the whole picture scaled to 3/4 (its mask: where the shapes land)
            return [_resized(c) for c in crops]
        return crops if kind == "crops" else [unpainted(c) for c in crops]  # clean: nothing painted
    if kind == "whole":  # whole photos, a few paintings each
        return whole_set(max(1, per_photo // 3), seed=seed, photos=which)
    out = []
    for p, (name, photo) in enumerate(heldout_photos(which).items()):  # the group's order: stable draws
        rng = sample_rng(seed, 1000 + p)
        if kind == "clean":
            out.append(Case(f"{name}_clean", name, photo, photo, np.zeros(photo.shape[:2], bool)))
        elif kind == "camera":
            clean = _camera_photo(photo, rng)
            out.append(Case(f"{name}_12mp", name, clean, *corrupt(clean, rng, CAMERA_PAINT)))
        elif kind == "clean-camera":  # the camera kind's photo (the same noise), nothing painted
            clean = _camera_photo(photo, rng)
            out.append(Case(f"{name}_12mp_clean", name, clean, clean, np.zeros(clean.shape[:2], bool)))
    return out


def make_cases(fmt: str, which: str, per_photo: int, seed: int = EVAL_SEED) -> List[FileCase]:
    """The files of one format: painted (or clean) photos of the group `which`, then saved."""
    save, kind = FORMATS[fmt]
    suffix = SUFFIX[SAVES[save][0]]
    return [FileCase(*saved_case(c, save, TOLERANCE), suffix, c.mask) for c in _painted(which, kind, per_photo, seed)]


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
