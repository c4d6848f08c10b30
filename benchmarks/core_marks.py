"""Whether a mark's core holds solid colour in lossy files: paint against photo (a rule not kept).

In a lossless file paint is solid, and a mark with no solid colour is dropped (runtime/solid.py).
A lossy file's paint carries the codec's noise and, at 4:2:0, its colour bled across the edge;
and touching shapes of several colours make one mark. So this reads each mark's core (the mark
less `CORE` pixels along its edge) for the share of its pixels within `LEVELS` levels (largest
channel) of one of its `COLOURS` commonest colours: the commonest bin of `BIN` levels a channel,
its pixels' median taken as the colour, then the same among the pixels not yet near a colour,
while a colour adds at least `MIN_ADDED` of the core. It does so for every mark `Restorer.restore`
leaves as shipped in benchmarks/photo_eval.py's lossy kinds of one group (`--per-photo`) and in
its clean crops and collages drawn more often (`--clean-per-photo`, where the marks of photo
are), and tabulates, per threshold, the marks a rule dropping those under it would drop.

    python -m benchmarks.core_marks --photos selection -o benchmarks/results/core-marks-selection
"""

from __future__ import annotations

from typing import Dict, List, Optional

import click
import numpy as np

from benchmarks import marks_common
from runtime.fill import dilated

CORE = 2  # pixels along a mark's edge left out: the codec's ringing and bled colour
LEVELS = 16  # a core pixel this near one of the mark's colours counts as solid
COLOURS = 3  # colours a mark is read for: touching shapes of several colours make one mark
BIN = 16  # levels a channel: the bins whose commonest gives each colour
MIN_ADDED = 0.1  # of the core: a colour that adds fewer of its pixels ends the reading
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
CLEAN_KINDS = ("clean-crops-jpeg-90", "clean-framed-crops-jpeg-90", "clean-framed-crops-jpeg-75",
               "clean-collage-jpeg-90", "clean-collage-jpeg-75", "clean-collage3-jpeg-90", "clean-collage3-jpeg-75")


def solid_share(pixels: np.ndarray) -> float:
    """Of `pixels` (n, 3), the share within LEVELS of one of up to COLOURS colours (module docstring)."""
    pixels = pixels.astype(np.int16)
    left, near_any = np.ones(len(pixels), bool), np.zeros(len(pixels), bool)
    for _ in range(COLOURS):
        rest = pixels[left]
        if len(rest) == 0:
            break
        bins = rest // BIN
        keys = (bins[:, 0] * 64 + bins[:, 1]) * 64 + bins[:, 2]
        values, counts = np.unique(keys, return_counts=True)
        colour = np.median(rest[keys == values[np.argmax(counts)]], axis=0)
        near = np.abs(pixels - colour).max(axis=1) <= LEVELS
        if (near & left).sum() < MIN_ADDED * len(pixels):
            break
        near_any |= near
        left &= ~near
    return float(near_any.mean())


def core_share(rgb: np.ndarray, mark: np.ndarray) -> Optional[float]:
    """`solid_share` of the core of `mark` ((h, w) bool in the window `rgb` (h, w, 3)); None where
    no core is left (a mark under 2 CORE + 1 pixels across)."""
    core = mark & ~dilated(~mark, CORE)
    return solid_share(rgb[core]) if core.any() else None


def marks(restorer, data: bytes, damage: Optional[np.ndarray]) -> List[Dict]:
    """Each mark the restorer leaves in the file `data`: its pixels, its damage share, its core's share."""
    return marks_common.read_marks(restorer, data, damage, 0,
                                   lambda box, mark, rgb, _mask: {"core": core_share(rgb[box], mark)})


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per threshold, the marks whose core's share lies under it (a rule keeps a mark whose share
    reaches it), tallied (`marks_common.tally`)."""
    return marks_common.tallies_under(rows, "core", THRESHOLDS)


def markdown(report: Dict) -> str:
    s = report["summary"]
    return marks_common.tally_table(
        f"Marks `Restorer.restore` leaves, as shipped, in the lossy files of the {report['photos']} photos "
        f"(benchmarks/photo_eval.py's lossy kinds at `--per-photo {report['per_photo']}`, its clean crops and "
        f"collages at {report['clean_per_photo']}; {marks_common.tally_words(s['all'])}): those whose core "
        f"({CORE} pixels in from the edge) holds under each share within {LEVELS} levels of its {COLOURS} "
        "commonest colours, which a rule dropping them would drop.",
        "share under", "---:", ((t, s[str(t)]) for t in THRESHOLDS))


@click.command()
@marks_common.study_options(per_photo=4)
@click.option("--clean-per-photo", default=24, show_default=True, help="Crops drawn of each photo for the clean kinds.")
def main(output, photos, per_photo, clean_per_photo):
    """Measure whether the marks' cores in lossy files hold solid colour, paint against photo."""
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu")
    kinds = ([(k, per_photo) for k in marks_common.KINDS if k not in CLEAN_KINDS]
             + [(k, clean_per_photo) for k in CLEAN_KINDS])
    marks_common.write_marks_study(output, "benchmarks.core_marks",
                                   {"photos": photos, "per_photo": per_photo, "clean_per_photo": clean_per_photo}, kinds,
                                   lambda data, damage: marks(restorer, data, damage), summarize, markdown)


if __name__ == "__main__":
    main()
