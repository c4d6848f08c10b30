"""The gutters between a collage's photos are not paint: no mark is kept in them.

Two photos side by side with a white line between them (a before and after, a phone's collage,
a contact sheet): the gutter is a band of one flat colour with straight edges against photos, as
a frame is (runtime/frame.py), and the model marks it and the photos' edges along it. Restored,
the gutter is painted over with the photos' colours: of the clean selection collages, 3 of 10 at
JPEG 90 and 4 of 10 at JPEG 75 came back changed, down to 21.1 dB from their input
(docs/restoring.md, "The gutters of a collage").

So `panel_runs` finds the rows (and the columns) that run the photo's whole width (height)
inside its frame (`frame.photo_box`) in one colour, as a frame's lines are found
(`frame.FRAME_SHARE` of their pixels within `frame.FRAME_TOLERANCE` levels of the line's median
colour; a run's lines each within `FRAME_TOLERANCE` of the mean colour of its lines before), and
keeps the runs of them that touch neither side of the photo (a run from a side is a frame, a sky
or a background), are `MIN_WIDTH` lines to `WIDTH` of the photo's longer side across, and whose
neighbours hold at most `CONTRAST` of their pixels near the gutter's colour (on each side, the
fewer of the lines `AWAY` and `AWAY` + 1 beyond it): a gutter has photos on both sides.
Then it reads each panel those gutters cut the picture into the same way, and the panels within
those (`MAX_DEPTH`): a phone's collage of one photo beside two stacked has a gutter between the
two that runs across their panel only. The restorer drops the marks' pixels in a gutter and
within `frame.BAND` pixels of it on both sides, across the panel it crosses (`gutter_boxes`),
where the codec rings, as it does along a frame; it does so after the graphic check, which reads
the picture as it is (a page's white between its lines of text is such a run too).

Chosen on the selection collages and photo files (benchmarks/gutter_shares.py lists every run):
the runs on a gutter are taken but for one layout, a black gutter over a photo whose top is dark;
no run in a photo is, their neighbours holding 22 % of its colour or more, 34 % or more where the
run is 2 lines or more (the one under `CONTRAST`: a single line on a red bin's rim). The panels
are read only where the whole picture has a gutter, so a photo costs what it did (and the reading of
its frame, 0.01 s on a 12 Mpx photo with none).

A run's lines are compared with the mean of its lines before, not with its first: at JPEG 75 a
light gutter's chroma rings, its lines' blue swinging by 20 levels and more (a cream gutter in a
cream frame, from 207 to 228 across its first rows), and compared with its first line the gutter
was cut into runs that each bordered another of its colour, so none was taken and the model
painted it over. Chosen on the selection collages drawn three times as often as above
(`--per-photo 12`, benchmarks/results/gutter-shares-selection12.md): the lines of gutters taken
at JPEG 75 rose from 542 to 614 across the picture and from 190 to 278 across a panel (PNG's: 663
and 305), at JPEG 90 and WebP 90 by 16 to 24 each, PNG's as before; no run in a photo file more
is taken (at JPEG 75 a 2-line run on the red bin's rim in one crop, painted and clean, its
neighbours at 18 and 21 %, was taken before as well).

Read inside the frame, and with the line beyond too (chosen on the selection collages drawn 24
a photo, benchmarks/results/selection24-gutters-photo.md): a collage framed in its gutters'
colour had its frame's pixels counted among the gutter's neighbours' (a cream frame a fifth of
the rows' width: 0.30 of them near the gutter's colour, over `CONTRAST`), and a light gutter's
first line at JPEG 75 fell short of `FRAME_SHARE` by a pixel or two, so the line `AWAY` beyond
was the edge's own, half the gutter's colour; a panel's gutter as wide as the picture's was
over a tenth of its narrow panel. Their gutters went unfound and the model painted them over.

What it does not find: a gutter broken by paint across it, one that is not straight, and one
whose colour the photo beside it holds along its edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from runtime.frame import FRAME_SHARE, FRAME_TOLERANCE, near_share, photo_box

WIDTH = 0.1  # of the photo's longer side (inside its frame): the widest gutter, across a panel too
SAMPLES = 512  # pixels read along each line, evenly spaced (up to twice as many): the share is a count's
MIN_WIDTH = 2  # lines: a single line of one colour is an edge as often as a gutter
AWAY = 2  # the photo's lines read this many lines beyond the gutter (past the codec's rounding at its edge)
CHUNK = 512  # lines read at a time
CONTRAST = 0.25  # at most this share of those lines' pixels near the gutter's colour
MAX_DEPTH = 2  # panels read within panels: the whole picture's gutters cut it into panels, theirs into more


def _line_colours(lines: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(colour (lines, 3) int16, one (lines,) bool): each of `lines` (lines, length, 3) uint8's
    median colour (of every fourth pixel read), and whether FRAME_SHARE or more of its pixels lie
    within FRAME_TOLERANCE of it. Read CHUNK lines at a time: a few MB whatever the picture."""
    lines = lines[:, ::max(1, lines.shape[1] // SAMPLES)]  # (lines, SAMPLES to 2 SAMPLES, 3): views, no copy
    colour, one = np.empty((len(lines), 3), np.int16), np.empty(len(lines), bool)
    for start in range(0, len(lines), CHUNK):
        part = lines[start:start + CHUNK]
        c = np.median(part[:, ::4], axis=1).astype(np.int16)  # (<= CHUNK, 3): the median is the cost
        colour[start:start + CHUNK], one[start:start + CHUNK] = c, near_share(part, c[:, None]) >= FRAME_SHARE
    return colour, one


def _runs(colour: np.ndarray, one: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of each run of lines in one colour: each line within FRAME_TOLERANCE of the
    mean colour of the run's lines before it. Not of the run's first line: a JPEG's chroma rings
    across a light gutter, its lines' blue swinging by 20 levels and more at quality 75, so the
    first line alone would cut a gutter into runs that each border another of its colour."""
    runs, start, total = [], None, np.zeros(3, np.int64)
    for i in range(len(one) + 1):
        same = (start is not None and i < len(one) and one[i]
                and np.abs(colour[i] - total / (i - start)).max() <= FRAME_TOLERANCE)
        if start is not None and not same:
            runs.append((start, i))
            start = None
        if same:
            total += colour[i]
        if start is None and i < len(one) and one[i]:
            start, total = i, colour[i].astype(np.int64)
    return runs


def inner_runs(lines: np.ndarray, widest: float) -> List[Tuple[int, int, float]]:
    """(start, end, share) of each run of `lines` (lines, length, 3) uint8 in one colour that
    touches neither end and is at most `widest` lines across: `share`, of the pixels near its
    colour on each side, the fewer of the lines AWAY and AWAY + 1 beyond it, the higher side's."""
    n = len(lines)
    colour, one = _line_colours(lines)
    step = max(1, lines.shape[1] // SAMPLES)
    out = []
    for start, end in _runs(colour, one):
        if start >= AWAY and end <= n - AWAY and end - start <= widest:
            c = colour[(start + end) // 2]
            # The line beyond the one AWAY too: where the codec's rounding kept the run's own
            # first line out of it (short of FRAME_SHARE), the line AWAY beyond is the edge's.
            sides = ([start - AWAY] + ([start - AWAY - 1] if start > AWAY else []),
                     [end - 1 + AWAY] + ([end + AWAY] if end + AWAY < n else []))
            out.append((start, end, max(float(near_share(lines[side, ::step], c).min()) for side in sides)))
    return out


@dataclass
class Run:
    """A run of lines in one colour across a panel (`inner_runs`), as `panel_runs` reads it."""

    axis: str  # "rows" or "columns"
    panel: Tuple[int, int, int, int]  # (top, bottom, left, right): the part of the picture it crosses
    start: int  # the run's first row (column), in the picture
    end: int  # one past its last
    share: float  # its neighbours' share of pixels near its colour (`inner_runs`), the higher side's
    depth: int  # 0: across the photo inside the frame; 1: across a panel that depth 0's gutters bound; ...
    taken: bool  # a gutter: MIN_WIDTH lines or more, its neighbours at most CONTRAST near its colour


def _spans(on: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of each run of True in `on` (n,) bool."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))  # (n + 1,): +1 where a run starts, -1 past its end
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def panel_runs(rgb: np.ndarray) -> List[Run]:
    """Every inner run across the photo inside the picture's frame (the whole picture where it
    has none), and across each panel its gutters bound, down to MAX_DEPTH (module docstring).

    Args:
        rgb: (H, W, 3) uint8.
    """
    box = photo_box(rgb)  # the frame's lines are no neighbours of a gutter's: they hold its colour as often
    rows, cols = box if box is not None else (slice(0, rgb.shape[0]), slice(0, rgb.shape[1]))
    widest = WIDTH * max(rows.stop - rows.start, cols.stop - cols.start)  # a panel's gutter is as wide as the picture's
    out: List[Run] = []
    _read(rgb, (rows.start, rows.stop, cols.start, cols.stop), 0, widest, out)
    return out


def _read(rgb: np.ndarray, panel: Tuple[int, int, int, int], depth: int, widest: float, out: List[Run]) -> None:
    """Append the runs across `panel` to `out`, then read each panel its gutters cut it into."""
    top, bottom, left, right = panel
    part = rgb[top:bottom, left:right]  # a view
    if min(part.shape[:2]) < 3:
        return
    cuts = {}
    for axis, lines, offset in (("rows", part, top), ("columns", part.transpose(1, 0, 2), left)):
        cut = np.zeros(len(lines), bool)
        for start, end, share in inner_runs(lines, widest):
            taken = end - start >= MIN_WIDTH and share <= CONTRAST
            out.append(Run(axis, panel, offset + start, offset + end, share, depth, taken))
            cut[start:end] |= taken
        cuts[axis] = cut
    if depth < MAX_DEPTH and (cuts["rows"].any() or cuts["columns"].any()):
        for a, b in _spans(~cuts["rows"]):
            for c, d in _spans(~cuts["columns"]):
                _read(rgb, (top + a, top + b, left + c, left + d), depth + 1, widest, out)


def gutter_boxes(rgb: np.ndarray, band: int = 0) -> List[Tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each gutter `panel_runs` takes, `band` lines more on both
    sides of it (within the picture), across the panel it crosses."""
    h, w = rgb.shape[:2]
    boxes = []
    for run in panel_runs(rgb):
        if run.taken:
            top, bottom, left, right = run.panel
            if run.axis == "rows":
                boxes.append((max(0, run.start - band), min(h, run.end + band), left, right))
            else:
                boxes.append((top, bottom, max(0, run.start - band), min(w, run.end + band)))
    return boxes
