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

from typing import Dict, List

import click
import numpy as np

from benchmarks import marks_common
from runtime.surround import FAR, SAME, ring_contrast

THRESHOLDS = (4, 8, 12, 16, 20, 24, 32)  # levels


def marks(restorer, data: bytes, damage: np.ndarray) -> List[Dict]:
    """Each mark the restorer leaves in the file `data`: its pixels, its damage share, its ring's distance."""

    def ring(box, mark, rgb, mask) -> Dict:
        distance = ring_contrast(rgb[box], mask[box], mark)
        return {"ring": None if np.isinf(distance) else distance}  # None: too few ring pixels to judge

    return marks_common.read_marks(restorer, data, damage, FAR, ring)


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per threshold, the marks at or under it (runtime/surround.py drops a mark whose ring lies
    within `SAME` levels, at it included), tallied (`marks_common.tally`)."""
    return marks_common.tallies_under(rows, "ring", THRESHOLDS, at_or_under=True)


def markdown(report: Dict) -> str:
    s = report["summary"]
    return marks_common.tally_table(
        f"Marks `Restorer.restore` leaves in the lossy files of the {report['photos']} photos "
        f"(benchmarks/photo_eval.py, `--per-photo {report['per_photo']}`; {marks_common.tally_words(s['all'])}): "
        f"those whose ring lies within each threshold of their colour (runtime/surround.py drops them at "
        f"{report['same']} levels).",
        "levels", "---:", ((t, s[str(t)]) for t in THRESHOLDS))


@click.command()
@marks_common.study_options(per_photo=12)
def main(output, photos, per_photo):
    """Measure how far the marks' surroundings lie from their colour in lossy files, paint against photo."""
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu", solid_check=False)
    marks_common.write_marks_study(output, "benchmarks.surround_marks",
                                   {"photos": photos, "per_photo": per_photo, "same": SAME},
                                   [(k, per_photo) for k in marks_common.KINDS],
                                   lambda data, damage: marks(restorer, data, damage), summarize, markdown)


if __name__ == "__main__":
    main()
