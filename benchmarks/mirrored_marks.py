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

from typing import Dict, List

import click
import numpy as np

from benchmarks import marks_common
from runtime import mirrored

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

    def found_again(box, mark, rgb, _mask) -> Dict:
        if not mirrored.within(mark, max_side):
            return {"lr": None, "tb": None}
        found = mirrored.flipped_back(restorer.masks(np.ascontiguousarray(mirrored.views(rgb[box]))))
        lr, tb = (int((m & mark).sum()) for m in found)
        return {"lr": lr, "tb": tb}

    return marks_common.read_marks(restorer, data, damage, mirrored.PAD, found_again)  # the caller has the rule off


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per way of reading the views, the marks it drops, tallied (`marks_common.tally`); and
    the marks read and all of them."""
    read = [r for r in rows if r["lr"] is not None]
    out = {name: marks_common.tally([r for r in read if rule(r["lr"], r["tb"])]) for name, rule in RULES.items()}
    out["read"], out["all"] = marks_common.tally(read), marks_common.tally(rows)
    return out


def markdown(report: Dict) -> str:
    s = report["summary"]
    r = s["read"]
    return marks_common.tally_table(
        f"Marks `Restorer.restore` leaves in the lossy files of the {report['photos']} photos with the mirrored rule "
        f"off (benchmarks/photo_eval.py, `--per-photo {report['per_photo']}`; {marks_common.tally_words(s['all'])}; "
        f"{r['marks']} of them, {r['paint_marks']} mostly paint, at most {report['max_side']} pixels a side and read): "
        "those each way of reading the two mirrored views would drop (runtime/mirrored.py drops a mark neither view "
        "finds again).",
        "dropped when", "---", ((name, s[name]) for name in RULES))


@click.command()
@marks_common.study_options(per_photo=4)
def main(output, photos, per_photo):
    """Measure which marks of lossy files a mirrored view finds again, paint against photo."""
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu")
    max_side = mirrored.MAX_SIDE
    mirrored.MAX_SIDE = 0  # the rule off: every mark the other steps leave
    try:
        marks_common.write_marks_study(output, "benchmarks.mirrored_marks",
                                       {"photos": photos, "per_photo": per_photo, "max_side": max_side},
                                       [(k, per_photo) for k in marks_common.KINDS],
                                       lambda data, damage: marks(restorer, data, damage, max_side), summarize, markdown)
    finally:
        mirrored.MAX_SIDE = max_side


if __name__ == "__main__":
    main()
