"""Which marks a mirrored view finds again, in lossy files: paint against photo.

runtime/mirrored.py drops a small mark of a lossy file when neither mirrored view of the patch
around it (flipped left to right, flipped top to bottom) marks a pixel of it. This reads, for
every mark `Restorer.restore` leaves with that rule off (`mirrored.MAX_SIDE = 0`; the other
rules as shipped), in benchmarks/photo_eval.py's lossy kinds of one group (crops, resized,
framed, whole, collages, painted and clean, as JPEG and WebP), how many of its pixels each view
marks, and tabulates the marks each way of reading the views would drop: how many, how many of
them mostly damage, and the pixels of damage (paint left unrestored) and of photo (left as it
was) they hold.

    python -m benchmarks.mirrored_marks --photos selection --per-photo 4 -o benchmarks/results/mirrored-marks-selection
"""

from __future__ import annotations

import io
import shlex
import sys
from typing import Dict, List

import click
import numpy as np
from PIL import Image

from benchmarks.surround_marks import KINDS, kind_marks, save, tally, tally_table
from restore_core.heldout import PHOTO_SETS
from runtime import mirrored
from runtime.pyramid import marks_in_boxes

# Ways of reading the two views: a mark is dropped when this is True of (left-right, top-bottom)
# pixels found again. "neither" is runtime/mirrored.py's rule.
RULES = {
    "neither view": lambda lr, tb: lr == 0 and tb == 0,
    "not left-right": lambda lr, tb: lr == 0,
    "not top-bottom": lambda lr, tb: tb == 0,
    "not both": lambda lr, tb: lr == 0 or tb == 0,
}


def marks(restorer, data: bytes, damage: np.ndarray, max_side: int) -> List[Dict]:
    """Each mark the restorer leaves in the file `data` with the mirrored rule off: its pixels,
    its damage share, and the pixels of it each mirrored view finds again (None: a mark over
    `max_side` pixels a side, which the rule does not read)."""
    pil = Image.open(io.BytesIO(data))
    pil.load()
    mask = np.asarray(restorer.restore(pil, predicted=False).mask) > 0  # the caller has the rule off
    rgb = np.asarray(pil.convert("RGB"))
    rows = []
    for box, mark in marks_in_boxes(mask, mirrored.PAD):
        row = {"pixels": int(mark.sum()), "damage": float(damage[box][mark].mean()), "lr": None, "tb": None}
        if mirrored.within(mark, max_side):
            found = mirrored.flipped_back(restorer.masks(np.ascontiguousarray(mirrored.views(rgb[box]))))
            row["lr"], row["tb"] = (int((m & mark).sum()) for m in found)
        rows.append(row)
    return rows


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per way of reading the views, the marks it drops, tallied (`surround_marks.tally`); and
    the marks read and all of them."""
    read = [r for r in rows if r["lr"] is not None]
    out = {name: tally([r for r in read if rule(r["lr"], r["tb"])]) for name, rule in RULES.items()}
    out["read"], out["all"] = tally(read), tally(rows)
    return out


def markdown(report: Dict) -> str:
    s = report["summary"]
    a, r = s["all"], s["read"]
    lines = [f"Marks `Restorer.restore` leaves in the lossy files of the {report['photos']} photos with the mirrored "
             f"rule off (benchmarks/photo_eval.py, `--per-photo {report['per_photo']}`; {a['marks']} marks, "
             f"{a['paint_marks']} of them mostly paint, {a['damage_pixels']:,} pixels of damage and "
             f"{a['photo_pixels']:,} of photo in all; {r['marks']} of them, {r['paint_marks']} mostly paint, at most "
             f"{report['max_side']} pixels a side and read): those each way of reading the two mirrored views would "
             "drop (runtime/mirrored.py drops a mark neither view finds again).", "",
             *tally_table("dropped when", "---", ((name, s[name]) for name in RULES))]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes PATH.json and PATH.md.")
@click.option("--photos", type=click.Choice(PHOTO_SETS), default="selection", show_default=True)
@click.option("--per-photo", default=4, show_default=True, help="Crops drawn of each photo (benchmarks.photo_eval's).")
def main(output, photos, per_photo):
    """Measure which marks of lossy files a mirrored view finds again, paint against photo."""
    from benchmarks.report import environment
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu")
    max_side = mirrored.MAX_SIDE
    report = {"command": shlex.join(["python", "-m", "benchmarks.mirrored_marks", *sys.argv[1:]]),
              "machine": environment()["machine"], "photos": photos, "per_photo": per_photo, "max_side": max_side}
    mirrored.MAX_SIDE = 0  # the rule off: every mark the other steps leave
    try:
        report["marks"] = kind_marks([(k, per_photo) for k in KINDS], photos,
                                     lambda data, damage: marks(restorer, data, damage, max_side))
    finally:
        mirrored.MAX_SIDE = max_side
    report["summary"] = summarize([m for rows in report["marks"].values() for m in rows])
    save(output, report, markdown)


if __name__ == "__main__":
    main()
