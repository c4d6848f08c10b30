"""What the gutter reading sees: each run of lines in one colour across a picture, in collages and
in photos.

runtime/gutter.py takes a run of rows (or columns) that cross the whole picture in one colour for
a collage's gutter where it touches neither side, is `gutter.MIN_WIDTH` lines to `gutter.WIDTH`
of the picture across, and the lines `gutter.AWAY` beyond it hold at most `gutter.CONTRAST` of
their pixels near its colour; then reads the same way each panel those gutters cut the picture
into (`gutter.panel_runs`). This lists every run that touches neither side of the picture or
panel it crosses and is at most that wide (`gutter.inner_runs`), with its width and that share,
in the files of one group, each saved as PNG, JPEG 75 and 90 at 4:2:0 and WebP 90:

- the group's collages as benchmarks/photo_cases.py lays them out, clean and painted: two crops
  with a gutter of 1 to 3 % of the long side between them in one of four colours, and three
  crops, one beside two stacked (their gutter crosses a panel, not the picture); every third also
  framed: a run on a gutter (lines the collage drew in one colour across the panel) or elsewhere;
- its photo files: crops painted (as painted, and resized after painting) and clean, whole
  photos, clean photos (none has a gutter).

`--per-photo` draws more crops of each photo (as photo_eval's option does: more collages, more
whole photos). Runs merge where a reading joins a gutter's lines (a run's lines are compared with
its mean colour), so the count of runs on gutters can fall as more of the gutters are taken: the
lines of gutters taken count what was found.

No model runs: the reading looks at the file alone.

    python -m benchmarks.gutter_shares --photos selection -o benchmarks/results/gutter-shares-selection
    python -m benchmarks.gutter_shares --photos selection --per-photo 12 -o benchmarks/results/gutter-shares-selection12
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import click
import numpy as np

from benchmarks.marks_common import study_options
from benchmarks.photo_cases import EVAL_SEED, PHOTO_KINDS, painted_cases
from restore_core.degrade import decode, encode_file

SAVES = {"png": ("png",), "jpeg-75": ("jpeg", 75, "4:2:0"), "jpeg-90": ("jpeg", 90, "4:2:0"), "webp-90": ("webp", 90)}


def drawn_lines(clean: np.ndarray) -> np.ndarray:
    """(lines,) bool: the lines of `clean` (lines, length, 3), before any save, that are one exact
    colour from end to end (a collage's gutter and frame)."""
    return np.all(clean == clean[:, :1], axis=(1, 2))


def pictures(which: str, per_photo: int = 4) -> Iterator[Tuple[str, str, np.ndarray, Optional[np.ndarray]]]:
    """(group, name, (H, W, 3) uint8 before the save, the collage as drawn before any paint or None)."""
    for kind in ("clean-collage", "collage", "clean-collage3", "collage3"):
        for case in painted_cases(which, kind, per_photo, EVAL_SEED):
            yield "collages", f"{kind}/{case.name}", case.corrupted, case.clean
    for kind in PHOTO_KINDS:
        for case in painted_cases(which, kind, per_photo, EVAL_SEED):
            yield "photo files", f"{kind}/{case.name}", case.corrupted, None


def runs(rgb: np.ndarray, clean: Optional[np.ndarray]) -> List[Dict]:
    """Each inner run of rows and of columns across the picture and its panels: where, how wide,
    its neighbours' share, whether it lies on lines `clean` drew in one colour across the panel,
    and whether the reading takes it."""
    from runtime.gutter import panel_runs

    out = []
    for run in panel_runs(rgb):
        top, bottom, left, right = run.panel
        gutter = False
        if clean is not None:
            lines = (clean[run.start:run.end, left:right] if run.axis == "rows"
                     else clean[top:bottom, run.start:run.end].transpose(1, 0, 2))  # (run's lines, panel across, 3)
            gutter = bool(drawn_lines(lines).any())
        out.append({"axis": run.axis, "panel": list(run.panel), "depth": run.depth, "start": run.start, "end": run.end,
                    "share": run.share, "gutter": gutter, "taken": run.taken})
    return out


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per group and save, the runs on a gutter and the others: how many, taken, the share's range."""
    out: Dict[str, List[Dict]] = {}
    for r in rows:
        for run in r["runs"]:
            where = ("on a gutter" if run["gutter"] else "elsewhere") + (", across a panel" if run.get("depth") else "")
            out.setdefault(f"{r['group']}, {r['save']}, {where}", []).append(run)
    summary = {}
    for key, group in sorted(out.items()):
        shares = [g["share"] for g in group]
        wide = [g["share"] for g in group if g["end"] - g["start"] >= 2]
        summary[key] = {"runs": len(group), "taken": sum(g["taken"] for g in group),
                        "lines_taken": sum(g["end"] - g["start"] for g in group if g["taken"]),
                        "share_min": min(shares), "share_max": max(shares),
                        "wide_share_min": min(wide) if wide else None, "wide_share_max": max(wide) if wide else None}
    return summary


def markdown(report: Dict) -> str:
    f = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"Runs of lines in one colour across the {report['photos']} group's collages and photo files, and across "
             "the panels their gutters cut them into, off the sides and at most a tenth of the picture (panel) across "
             "(runtime/gutter.py: a gutter at 2 lines or more whose neighbours 2 lines beyond hold at most 0.25 of "
             "their pixels near its colour).", "",
             "| files, saved as, where | runs | taken for gutters | their lines | neighbours' share | of runs 2 lines or more |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    for key, s in report["summary"].items():
        lines.append(f"| {key} | {s['runs']} | {s['taken']} | {s['lines_taken']} | {f(s['share_min'])}–{f(s['share_max'])} | "
                     f"{f(s['wide_share_min'])}–{f(s['wide_share_max'])} |")
    return "\n".join(lines) + "\n"


@click.command()
@study_options(per_photo=4)
def main(output, photos, per_photo):
    """List the runs the gutter reading sees in collages and photos, file by file."""
    from benchmarks.report import write_study

    rows = []
    for group, name, img, clean in pictures(photos, per_photo):
        for save, spec in SAVES.items():
            rows.append({"group": group, "name": name, "save": save, "runs": runs(decode(encode_file(img, *spec)), clean)})
    write_study(output, "benchmarks.gutter_shares", {"photos": photos, "per_photo": per_photo, "summary": summarize(rows), "files": rows}, markdown)


if __name__ == "__main__":
    main()
