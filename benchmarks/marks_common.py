"""What the studies of the marks `Restorer.restore` leaves in lossy files share (benchmarks/core_marks.py,
mirrored_marks.py, surround_marks.py): the files they read, each mark read with its damage, the
tally of the marks a rule would drop, and the study written; and the options of every file-by-file
study's command (`study_options`: those and solid_marks.py, graphic_shares.py, gutter_shares.py).

Each reads benchmarks/photo_eval.py's lossy kinds of one group (`KINDS`), file by file
(`kind_marks`); in each file, every mark the restorer leaves, in its box grown by a margin
(`read_marks`), with its pixels, the share of them that is damage, and what the study measures
of it. A set of marks is tallied (`tally`): how many, how many mostly paint, and their pixels of
damage (paint a rule dropping them leaves unrestored) and of photo (left as it was).
"""

from __future__ import annotations

import io
import operator
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import click
import numpy as np
from PIL import Image

from benchmarks.photo_cases import FORMATS, make_cases
from restore_core.heldout import PHOTO_SETS
from runtime.pyramid import marks_in_boxes

# photo_eval's kinds saved lossy, but the camera-size ones (a minute each) and the graphics (the
# graphic check leaves most as they are)
KINDS = tuple(k for k in FORMATS if FORMATS[k][0] != "png" and "camera" not in k and "graphics" not in k)


def study_options(per_photo: Optional[int] = None) -> Callable[[Callable], Callable]:
    """The options of a file-by-file study's command (`report.write_study`): -o/--output, --photos
    and, where `per_photo` is given (its default), --per-photo, the crops benchmarks.photo_eval draws."""

    def add(command: Callable) -> Callable:
        if per_photo is not None:
            command = click.option("--per-photo", default=per_photo, show_default=True,
                                   help="Crops drawn of each photo (benchmarks.photo_eval's).")(command)
        command = click.option("--photos", type=click.Choice(PHOTO_SETS), default="selection", show_default=True)(command)
        return click.option("-o", "--output", required=True, help="Path without suffix: writes PATH.json and PATH.md.")(command)

    return add


def read_marks(restorer, data: bytes, damage: Optional[np.ndarray], margin: int,
               measure: Callable[[Tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray], Dict]) -> List[Dict]:
    """Each mark the restorer leaves in the file `data`: its pixels, its damage share (of
    `damage`, (H, W) bool; None: none), and `measure(box, mark, rgb, mask)` of it (the mark in its
    box grown by `margin`, the file's pixels and the restorer's whole mask)."""
    pil = Image.open(io.BytesIO(data))
    pil.load()
    mask = np.asarray(restorer.restore(pil, predicted=False).mask) > 0
    rgb = np.asarray(pil.convert("RGB"))
    damage = np.zeros(mask.shape, bool) if damage is None else damage
    return [{"pixels": int(mark.sum()), "damage": float(damage[box][mark].mean()), **measure(box, mark, rgb, mask)}
            for box, mark in marks_in_boxes(mask, margin)]


def tally(group: List[Dict]) -> Dict:
    """Marks (each with its pixels and damage share): how many, how many mostly paint, and their
    pixels of damage and of photo (a mark can be part of each: paint grown into the photo beside it)."""
    damage = sum(round(r["damage"] * r["pixels"]) for r in group)
    return {"marks": len(group), "paint_marks": sum(r["damage"] >= 0.5 for r in group),
            "damage_pixels": damage, "photo_pixels": sum(r["pixels"] for r in group) - damage}


def tallies_under(rows: List[Dict], key: str, thresholds: Sequence[float], at_or_under: bool = False) -> Dict[str, Dict]:
    """Per threshold (named by its str), the marks whose `key` lies under it (`at_or_under`: at or
    under it; None: never), tallied; and all of them ("all")."""
    drops = operator.le if at_or_under else operator.lt
    out = {str(t): tally([r for r in rows if r[key] is not None and drops(r[key], t)]) for t in thresholds}
    out["all"] = tally(rows)
    return out


def tally_words(x: Dict) -> str:
    """A tally (`tally`) in words, as each table's heading gives the marks it counts."""
    return (f"{x['marks']} marks, {x['paint_marks']} of them mostly paint, {x['damage_pixels']:,} pixels of damage "
            f"and {x['photo_pixels']:,} of photo in all")


def tally_table(heading: str, first: str, align: str, rows: Iterable[Tuple[object, Dict]]) -> str:
    """`heading`, then a Markdown table of tallies (`tally`): a column `first` (aligned by
    `align`), then a row per (label, tally)."""
    lines = [heading, "",
             f"| {first} | marks | mostly paint | their pixels of damage | of photo |",
             f"| {align} | ---: | ---: | ---: | ---: |",
             *(f"| {label} | {x['marks']} | {x['paint_marks']} | {x['damage_pixels']:,} | {x['photo_pixels']:,} |"
               for label, x in rows)]
    return "\n".join(lines) + "\n"


def kind_marks(kinds: Iterable[Tuple[str, int]], photos: str, read: Callable[..., List[Dict]]) -> Dict[str, List[Dict]]:
    """{kind: every mark `read(data, damage)` gives in each file of the kind (drawn `per_photo` a
    photo of the group `photos`), each with its file's name}; a line per kind as it is read."""
    out = {}
    for kind, per_photo in kinds:
        out[kind] = [{"name": f.case.name, **m} for f in make_cases(kind, photos, per_photo) for m in read(f.data, f.case.mask)]
        click.echo(f"{kind}: {len(out[kind])} marks")
    return out


def write_marks_study(output: str, module: str, fields: Dict, kinds: Iterable[Tuple[str, int]],
                      read: Callable[..., List[Dict]], summarize: Callable[[List[Dict]], Dict],
                      markdown: Callable[[Dict], str]) -> None:
    """The study `module` of the marks `read` gives in the files of `kinds` (`kind_marks`; the
    group is `fields["photos"]`), written as OUTPUT.json and OUTPUT.md (`report.write_study`):
    `fields`, then the marks of each kind and their summary (`summarize` of them all)."""
    from benchmarks.report import write_study

    report = dict(fields)
    report["marks"] = kind_marks(kinds, fields["photos"], read)
    report["summary"] = summarize([m for rows in report["marks"].values() for m in rows])
    write_study(output, module, report, markdown)
