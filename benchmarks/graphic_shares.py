"""What the graphic check reads around the marks, in photos and in graphics, file by file.

runtime/graphic.py takes a picture for a graphic, and leaves it as it was, from shares of the
grid pixels around the marks the full-size pass found: flat (or on a straight gradient), in
texture (runtime/flat.py), in a few colours (runtime/palette.py), and in a few colours outside the
block that holds the texture (runtime/inset.py). This measures those shares
with the marks the shipped model finds (the graph alone, less those in a frame and its band, as
the restorer drops them before the check: runtime/frame.py) in the files of one group, each saved
as PNG, JPEG 75, 85 and 90 at 4:2:0, JPEG 95 at 4:4:4, WebP 75 and 90, and in every file, found
or not, how near its outermost lines are to the border's colour (`outer_share`, what a frame is
found by) and, where two opposite sides read as a frame's, how many of its corners hold its colour
(`frame.corners_held`, what tells a frame from a page's margins ending at a band):

- the group's graphics (restore_core/graphics.py), those that hold one of the group's photos
  apart;
- its photo files as benchmarks/photo_cases.py cuts them: crops painted, resized after painting
  and clean, whole photos, clean photos;
- the crops painted and clean, each in a frame 2, 4 and 8 % of its long side wide, its colour
  white, black, grey or cream in turn: a print's border, a matte (runtime/frame.py);
- with `--camera`, each photo at 12 Mpx, with sensor noise and without (scaled up smooth),
  painted over 0, 10, 30 and 50 % by one rectangle (PNG, JPEG 75 and 90, WebP 75 and 90): a
  photo painted over a large area whose paint is found only at its rim.

    python -m benchmarks.graphic_shares --photos selection --camera -o benchmarks/results/graphic-shares-selection
"""

from __future__ import annotations

import io
from typing import Dict, Iterator, List, Tuple

import click
import numpy as np
from PIL import Image, ImageDraw

from benchmarks.marks_common import study_options
from benchmarks.photo_cases import (
    CAMERA,
    EVAL_SEED,
    FRAME_COLOURS,
    FRAMES,
    PHOTO_KINDS,
    camera_photo,
    framed_case,
    painted_cases,
)
from restore_core.degrade import encode_file
from restore_core.graphics import WITH_PHOTOS, graphics
from restore_core.heldout import heldout_photos
from runtime.flat import shade_tolerance

SAVES = {"png": None, "jpeg-75": ("jpeg", 75, "4:2:0"), "jpeg-85": ("jpeg", 85, "4:2:0"),
         "jpeg-90": ("jpeg", 90, "4:2:0"), "jpeg-95-444": ("jpeg", 95, "4:4:4"), "webp-75": ("webp", 75, None),
         "webp-90": ("webp", 90, None)}
CAMERA_SAVES = ("png", "jpeg-75", "jpeg-90", "webp-75", "webp-90")
PAINTED = (0.0, 0.1, 0.3, 0.5)  # of a 12 Mpx photo, under one rectangle
SHARES = ("flat", "texture", "coarse_flat", "coarse_texture", "top", "others", "inset_top", "inset_others", "inset_read")


def pictures(which: str, camera: bool) -> Iterator[Tuple[str, str, np.ndarray]]:
    """(group, name, (H, W, 3) uint8) before the save: graphics, photo files, 12 Mpx photos."""
    for name, img in graphics(which, 12).items():
        yield ("graphics with a photo" if name.split("_")[0] in WITH_PHOTOS else "graphics"), name, img
    for kind in PHOTO_KINDS:
        for case in painted_cases(which, kind, 4, EVAL_SEED):
            yield "photo files", f"{kind}/{case.name}", case.corrupted
    yield from _framed_files(which)
    if camera:
        yield from _camera_files(which)


def _framed_files(which: str) -> Iterator[Tuple[str, str, np.ndarray]]:
    """The crops, painted and clean, each in a frame: FRAMES' widths, FRAME_COLOURS in turn."""
    framed = 0
    for kind in ("crops", "clean-crops"):
        for case in painted_cases(which, kind, 4, EVAL_SEED):
            for width in FRAMES:
                colour = FRAME_COLOURS[framed % len(FRAME_COLOURS)]
                framed += 1
                yield "framed photo files", f"{kind}/{case.name}-{width:.2f}", framed_case(case, 0, width, colour).corrupted


def _camera_files(which: str) -> Iterator[Tuple[str, str, np.ndarray]]:
    """Each photo at 12 Mpx, with sensor noise and without, painted over PAINTED by one rectangle."""
    for noise in (True, False):
        rng = np.random.default_rng(0)
        for name, photo in heldout_photos(which).items():
            if noise:
                base = camera_photo(photo, np.random.default_rng(1))
            else:
                h, w = CAMERA if photo.shape[0] <= photo.shape[1] else CAMERA[::-1]
                base = np.asarray(Image.fromarray(photo).resize((w, h), Image.LANCZOS))
            h, w = base.shape[:2]
            for share in PAINTED:
                img = Image.fromarray(base.copy())
                colour = tuple(int(c) for c in rng.integers(0, 256, 3))
                if share:  # one rectangle of 4:3, 200 pixels from the top left corner
                    bw, bh = int((share * h * w * 4 / 3) ** 0.5), int((share * h * w * 3 / 4) ** 0.5)
                    ImageDraw.Draw(img).rectangle([200, 200, 200 + min(bw, w - 400), 200 + min(bh, h - 400)], fill=colour)
                yield "12 Mpx photos", f"{name}-{share:.1f}-{'noise' if noise else 'smooth'}", np.asarray(img)


def outer_share(rgb: np.ndarray) -> float:
    """The share of the outermost line's pixels within `frame.FRAME_TOLERANCE` of the border's
    colour, the lower of two opposite sides, the higher of the two pairs: a frame is found where it
    reaches `frame.FRAME_SHARE` (runtime/frame.py)."""
    from runtime.frame import border_colour, near_share

    colour = border_colour(rgb)
    near = [float(near_share(line, colour)) for line in (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1])]  # top, bottom, left, right
    return max(min(near[0], near[1]), min(near[2], near[3]))


def shares(restorer, img: np.ndarray, save: str) -> Dict:
    """The check's shares of `img` saved as `save`, with the marks the full-size pass finds in it
    outside a frame and its band (only the outermost lines' share where it finds none)."""
    from runtime.frame import BAND, frame_mask, read_sides
    from runtime.graphic import read_shares

    spec = SAVES[save]
    qtables = None
    if spec is not None:
        opened = Image.open(io.BytesIO(encode_file(img, *spec)))
        qtables = getattr(opened, "quantization", None)
        img = np.asarray(opened.convert("RGB"))
    mask = restorer._full_size(img, restorer.tile_for(*img.shape[:2], None), None, predicted=False)[1]
    frame = frame_mask(img, BAND)
    mask = np.where(frame, np.uint8(0), mask)
    edges = {"outer": outer_share(img), "corners": read_sides(img)[1]}
    if not mask.any():
        return {"found": False, **edges}
    s = read_shares(img, mask, shade_tolerance(qtables), frame)
    return {"found": True, **edges, **{k: getattr(s, k) for k in SHARES}, "graphic": s.graphic}


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per group and save: files, those with marks, graphics, and each share's range."""
    out: Dict[str, Dict] = {}
    for r in rows:
        out.setdefault(f"{r['group']}, {r['save']}", []).append(r)
    summary = {}
    for key, group in out.items():
        found = [r for r in group if r["found"]]
        corners = [r["corners"] for r in group if r["corners"] is not None]
        summary[key] = {"files": len(group), "found": len(found), "graphics": sum(r["graphic"] for r in found),
                        "outer_min": min(r["outer"] for r in group), "outer_max": max(r["outer"] for r in group),
                        "sides": len(corners), "corners_min": min(corners, default=None),
                        "corners_max": max(corners, default=None),
                        **{f"{k}_{f.__name__}": (float(f([r[k] for r in found])) if found else None)
                           for k in SHARES for f in (min, max)}}
    return summary


def markdown(report: Dict) -> str:
    from runtime import flat, inset, palette
    from runtime.frame import FRAME_SHARE, MIN_CORNERS

    def f(v, key):  # a share, or a count
        return "–" if v is None else f"{v:.0f}" if key in ("inset_read", "corners") else f"{v:.2f}"

    lines = [f"The graphic check's shares around the marks the shipped model finds, in the {report['photos']} "
             f"group's files (runtime/graphic.py: a graphic at flat >= {flat.GRAPHIC_SHARE} with texture < "
             f"{flat.TEXTURE_SHARE}, at coarse flat >= {flat.GRAPHIC_SHARE} with coarse texture < "
             f"{flat.COARSE_TEXTURE_SHARE}, at top >= {palette.TOP_SHARE} with others >= {palette.OTHERS_SHARE}, or "
             f"outside the block that holds its texture at top >= {inset.TOP_SHARE} with others >= "
             f"{palette.OTHERS_SHARE}, where {inset.MIN_READ} grid pixels or more lie there).", "",
             "| files, saved as | files | with marks | taken for graphics | flat | texture | coarse flat (3 levels) "
             "| coarse texture (of the unflat) | top (4 colours) | others (next 4) | top outside the texture's block "
             "| others outside it | grid pixels outside it and the frame | every file: outermost lines near the border's "
             f"colour (a frame at {FRAME_SHARE}) | files whose sides read as a frame's | their corners in its colour "
             f"(a frame at {MIN_CORNERS}) |",
             "| --- | ---: | ---: | ---: | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---: | --- |"]
    for key, s in report["summary"].items():
        lines.append(f"| {key} | {s['files']} | {s['found']} | {s['graphics']} | "
                     + " | ".join(f"{f(s[k + '_min'], k)}–{f(s[k + '_max'], k)}" for k in (*SHARES, "outer"))
                     + f" | {s['sides']} | {f(s['corners_min'], 'corners')}–{f(s['corners_max'], 'corners')} |")
    return "\n".join(lines) + "\n"


@click.command()
@study_options()
@click.option("--camera", is_flag=True, help="Also the 12 Mpx photos painted over 0-50 % (slow: minutes).")
def main(output, photos, camera):
    """Measure the graphic check's shares in photos and graphics, file by file."""
    from benchmarks.report import write_study
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu", graphic_check=False)
    rows = []
    for group, name, img in pictures(photos, camera):
        for save in (CAMERA_SAVES if group == "12 Mpx photos" else SAVES):
            rows.append({"group": group, "name": name, "save": save, **shares(restorer, img, save)})
    write_study(output, "benchmarks.graphic_shares", {"photos": photos, "summary": summarize(rows), "files": rows}, markdown)


if __name__ == "__main__":
    main()
