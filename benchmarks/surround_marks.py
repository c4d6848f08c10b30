"""How far each mark's surroundings lie from its colour, in lossy files: paint against photo.

runtime/surround.py drops a mark of a lossy file whose ring (`surround.NEAR` to `surround.FAR`
pixels outside it, off the other marks) lies, at its median pixel, within `surround.SAME` levels
of the mark's median colour. This measures that distance for every mark `Restorer.restore`
leaves with the rule off (`solid_check=False`, which changes nothing else in a lossy file: the
solid check reads lossless files alone), in benchmarks/photo_eval.py's lossy kinds of one group:
crops, resized, framed, whole, collages, painted and clean, as JPEG and WebP. The table gives,
for each threshold, the marks the rule would drop, how many of them are mostly damage, and the
pixels of damage (paint left unrestored) and of photo (left as it was) they hold.

    python -m benchmarks.surround_marks --photos selection --per-photo 12 -o benchmarks/results/surround-marks-selection
"""

from __future__ import annotations

import io
import shlex
import sys
from typing import Callable, Dict, Iterable, List, Tuple

import click
import numpy as np
from PIL import Image

from benchmarks.photo_cases import FORMATS, make_cases
from restore_core.fileio import atomic_write_text
from restore_core.heldout import PHOTO_SETS
from runtime.pyramid import label_with_boxes
from runtime.surround import FAR, SAME, ring_contrast

THRESHOLDS = (4, 8, 12, 16, 20, 24, 32)  # levels
# photo_eval's kinds saved lossy, but the camera-size ones (a minute each) and the graphics (the
# graphic check leaves most as they are)
KINDS = tuple(k for k in FORMATS if FORMATS[k][0] != "png" and "camera" not in k and "graphics" not in k)


def marks(restorer, data: bytes, damage: np.ndarray) -> List[Dict]:
    """Each mark the restorer leaves in the file `data`: its pixels, its damage share, its ring's distance."""
    pil = Image.open(io.BytesIO(data))
    pil.load()
    mask = np.asarray(restorer.restore(pil, predicted=False).mask) > 0
    rgb = np.asarray(pil.convert("RGB"))
    labels, _count, boxes = label_with_boxes(mask)
    h, w = mask.shape
    rows = []
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:], start=1):
        y0, y1, x0, x1 = max(0, r0 - FAR), min(h, r1 + FAR), max(0, c0 - FAR), min(w, c1 + FAR)
        mark = labels[y0:y1, x0:x1] == i
        ring = ring_contrast(rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1], mark)
        rows.append({"pixels": int(mark.sum()), "damage": float(damage[y0:y1, x0:x1][mark].mean()),
                     "ring": None if np.isinf(ring) else ring})  # None: too few ring pixels to judge
    return rows


def tally(group: List[Dict]) -> Dict:
    """Marks (each with its pixels and damage share): how many, how many mostly paint, and their
    pixels of damage and of photo (a mark can be part of each: paint grown into the photo beside it)."""
    damage = sum(round(r["damage"] * r["pixels"]) for r in group)
    return {"marks": len(group), "paint_marks": sum(r["damage"] >= 0.5 for r in group),
            "damage_pixels": damage, "photo_pixels": sum(r["pixels"] for r in group) - damage}


def tally_table(first: str, align: str, rows: Iterable[Tuple[object, Dict]]) -> List[str]:
    """A Markdown table of tallies (`tally`): a column `first` (aligned by `align`), then a row per
    (label, tally)."""
    return [f"| {first} | marks | mostly paint | their pixels of damage | of photo |",
            f"| {align} | ---: | ---: | ---: | ---: |",
            *(f"| {label} | {x['marks']} | {x['paint_marks']} | {x['damage_pixels']:,} | {x['photo_pixels']:,} |"
              for label, x in rows)]


def kind_marks(kinds: Iterable[Tuple[str, int]], photos: str, read: Callable[..., List[Dict]]) -> Dict[str, List[Dict]]:
    """{kind: every mark `read(data, damage)` gives in each file of the kind (drawn `per_photo` a
    photo of the group `photos`), each with its file's name}; a line per kind as it is read."""
    out = {}
    for kind, per_photo in kinds:
        out[kind] = [{"name": f.case.name, **m} for f in make_cases(kind, photos, per_photo) for m in read(f.data, f.case.mask)]
        click.echo(f"{kind}: {len(out[kind])} marks")
    return out


def save(output: str, report: Dict, markdown: Callable[[Dict], str]) -> None:
    """Write the report as OUTPUT.json and its table as OUTPUT.md (each atomically), and print the table."""
    from benchmarks.report import write_json

    write_json(report, output + ".json")
    atomic_write_text(output + ".md", markdown(report))
    click.echo(markdown(report))


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per threshold, the marks at or under it, tallied (`tally`)."""
    out = {str(t): tally([r for r in rows if r["ring"] is not None and r["ring"] <= t]) for t in THRESHOLDS}
    out["all"] = tally(rows)
    return out


def markdown(report: Dict) -> str:
    s = report["summary"]
    a = s["all"]
    lines = [f"Marks `Restorer.restore` leaves in the lossy files of the {report['photos']} photos (benchmarks/photo_eval.py, "
             f"`--per-photo {report['per_photo']}`; {a['marks']} marks, {a['paint_marks']} of them mostly paint, "
             f"{a['damage_pixels']:,} pixels of damage and {a['photo_pixels']:,} of photo in all): those whose ring lies "
             f"within each threshold of their colour (runtime/surround.py drops them at {report['same']} levels).", "",
             *tally_table("levels", "---:", ((t, s[str(t)]) for t in THRESHOLDS))]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes PATH.json and PATH.md.")
@click.option("--photos", type=click.Choice(PHOTO_SETS), default="selection", show_default=True)
@click.option("--per-photo", default=12, show_default=True, help="Crops drawn of each photo (benchmarks.photo_eval's).")
def main(output, photos, per_photo):
    """Measure how far the marks' surroundings lie from their colour in lossy files, paint against photo."""
    from benchmarks.report import environment
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu", solid_check=False)
    report = {"command": shlex.join(["python", "-m", "benchmarks.surround_marks", *sys.argv[1:]]),
              "machine": environment()["machine"], "photos": photos, "per_photo": per_photo, "same": SAME}
    report["marks"] = kind_marks([(k, per_photo) for k in KINDS], photos, lambda data, damage: marks(restorer, data, damage))
    report["summary"] = summarize([m for rows in report["marks"].values() for m in rows])
    save(output, report, markdown)


if __name__ == "__main__":
    main()
