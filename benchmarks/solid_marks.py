"""How solid the marks the mask head finds in lossless files are: paint against photo.

The rule of runtime/solid.py keeps a mark of a lossless file only if `SHARE` of its pixels lie
within `TOLERANCE` levels of its commonest colour. This measures that share for every mark the
full-size pass finds (the graph alone, no step around it) in PNG files of one held-out group:
whole photos painted with 2-8 shapes of 1-12 % of the side, as they are and resized to 3/4 and
1/2 after painting (LANCZOS: the resampling rings at every edge of the paint), whole photos with
nothing painted, and the painted and clean crops of `benchmarks/photo_eval.py`. A mark is paint when at least
half its pixels are painted, else photo.

    python -m benchmarks.solid_marks --photos selection -o benchmarks/results/solid-marks-selection
"""

from __future__ import annotations

import json
from typing import Dict, List

import click
import numpy as np
from PIL import Image

from benchmarks.marks_common import study_options
from benchmarks.photo_cases import EVAL_SEED
from restore_core.heldout import Case, heldout_photos, heldout_set, unpainted
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng
from runtime.pyramid import label_with_boxes
from runtime.solid import SHARE, TOLERANCE, solid_share

SEED = 777
SMALL = CorruptionConfig(count=(2, 8), size=(0.01, 0.12), shapes=("square", "circle", "rectangle", "ellipse"), fill="random")
SCALES = (1.0, 0.75, 0.5)  # resized after painting


def _resized(a: np.ndarray, scale: float, resample) -> np.ndarray:
    h, w = a.shape[:2]
    return np.asarray(Image.fromarray(a).resize((round(w * scale), round(h * scale)), resample))


def cases(which: str, draws: int) -> Dict[str, List[Case]]:
    """The pictures of each kind, as a PNG would hold them (uint8, exact)."""
    out: Dict[str, List[Case]] = {f"whole, resized {s}" if s != 1 else "whole": [] for s in SCALES}
    out["whole, clean"] = []
    for p, (name, photo) in enumerate(heldout_photos(which).items()):
        out["whole, clean"].append(Case(f"{name}_clean", name, photo, photo, np.zeros(photo.shape[:2], bool)))
        for d in range(draws):
            painted, mask = corrupt(photo, sample_rng(SEED, 100 * p + d), SMALL)
            for s in SCALES:
                kind = f"whole, resized {s}" if s != 1 else "whole"
                if s == 1:
                    out[kind].append(Case(f"{name}_{d}", name, photo, painted, mask))
                else:
                    small_mask = _resized(mask.astype(np.uint8) * 255, s, Image.LANCZOS) > 127
                    out[kind].append(Case(f"{name}_{d}_x{s}", name, _resized(photo, s, Image.LANCZOS),
                                          _resized(painted, s, Image.LANCZOS), small_mask))
    crops = heldout_set(4, seed=EVAL_SEED, photos=which)  # photo_eval's crops
    out["crops"], out["crops, clean"] = crops, [unpainted(c) for c in crops]
    return out


def marks(restorer, case: Case) -> List[Dict]:
    """Each mark the full-size pass finds: its pixels, whether it is paint, and its solid share."""
    rgb = case.corrupted
    _restored, mask, _raw, _tiles = restorer._full_size(rgb, restorer.tile_for(*rgb.shape[:2], None), None,
                                                        predicted=False)
    labels, _count, boxes = label_with_boxes(mask > 0)
    rows = []
    for i, (r0, r1, c0, c1) in enumerate(boxes[1:], start=1):
        mark = labels[r0:r1, c0:c1] == i
        rows.append({"image": case.name, "pixels": int(mark.sum()),
                     "paint": bool(case.mask[r0:r1, c0:c1][mark].mean() >= 0.5),
                     "share": solid_share(rgb[r0:r1, c0:c1][mark])})
    return rows


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    out = {}
    for paint in (True, False):
        s = np.array([r["share"] for r in rows if r["paint"] == paint])
        out["paint" if paint else "photo"] = {
            "marks": int(s.size), "dropped": int((s < SHARE).sum()),
            **({"min": float(s.min()), "p05": float(np.quantile(s, 0.05)), "median": float(np.median(s)),
                "max": float(s.max())} if s.size else {})}
    return out


def markdown(report: Dict) -> str:
    f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"Marks the full-size pass finds in PNG files of the {report['photos']} photos: the share of each "
             f"mark's pixels within {report['tolerance']} levels of its commonest colour (runtime/solid.py drops "
             f"a mark under {report['share']}).", "",
             "| pictures | marks of paint | dropped | least | 5 % | median | marks of photo | dropped | most |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, s in report["kinds"].items():
        p, q = s["paint"], s["photo"]
        lines.append(f"| {kind} | {p['marks']} | {p['dropped']} | {f(p.get('min'))} | {f(p.get('p05'))} | "
                     f"{f(p.get('median'))} | {q['marks']} | {q['dropped']} | {f(q.get('max'))} |")
    return "\n".join(lines) + "\n"


@click.command()
@study_options()
@click.option("--draws", default=4, show_default=True, help="Paintings of each whole photo.")
def main(output, photos, draws):
    """Measure how solid the marks found in lossless files are, paint against photo."""
    from benchmarks.report import write_study
    from runtime.restorer import Restorer

    restorer = Restorer(device="cpu")
    report = {"photos": photos, "tolerance": TOLERANCE, "share": SHARE, "kinds": {}, "marks": {}}
    for kind, group in cases(photos, draws).items():
        rows = [r for c in group for r in marks(restorer, c)]
        report["kinds"][kind], report["marks"][kind] = summarize(rows), rows
        click.echo(f"{kind}: {json.dumps(report['kinds'][kind])}")
    write_study(output, "benchmarks.solid_marks", report, markdown)


if __name__ == "__main__":
    main()
