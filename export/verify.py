"""Parity at export time: run the written file against eager `RestorationPipeline`.

Every exported artifact (ONNX through ONNX Runtime's CPU provider, TorchScript through
`torch.jit.load`, an exported program through `torch.export.load`) runs the same cases as the
eager pipeline: seeded random images of several sizes (a stride multiple, odd sizes with batch
3, a wide one) and corrupted held-out photos. Figures, tolerances and the table come from
`export.parity` only. The summary goes into the artifact's metadata; a failure raises
`ParityError` whose message is the readable table.

This module knows no artifact: each exporter builds the `Backend` that runs its own files
(`export.onnx_export.verify_onnx`, `export.torchscript.verify_torchscript` and
`verify_exported_program`) and calls `check_parity`, so the exporters import this module and
never the other way round.

Float parity is measured on the tensor signature: a pixels file is accompanied by its tensor
twin (same exporter, opset and precision), because uint8 outputs alone hide sub-level drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from export.errors import ExportError
from export.parity import (
    TOLERANCES,
    format_table,
    merge,
    pixel_parity,
    tensor_mask_parity,
    tensor_parity,
    violations,
)
from restore_core.img_utils import normalize
from restore_core.pipeline import RestorationPipeline

# (N, H, W): a multiple of every stride we ship (16), odd sizes with batch 3, and a wide one.
RANDOM_SHAPES: Tuple[Tuple[int, int, int], ...] = ((1, 64, 64), (3, 37, 53), (2, 50, 71))
# Held-out photos (never training crops), cut to odd sizes to keep the check quick.
REAL_CROP = (299, 333)
SEED = 0

Outputs = Sequence[np.ndarray]


class ParityError(ExportError):
    """The exported artifact disagrees with eager beyond the tolerance; the message is the table."""


@dataclass
class Case:
    """One input batch: uint8 (N, H, W, 3) RGB."""

    name: str
    image: np.ndarray


@dataclass
class Backend:
    """How to run an artifact: either signature may be missing (None)."""

    name: str
    pixels: Optional[Callable[[np.ndarray], Outputs]] = None  # uint8 NHWC -> restored, mask, predicted
    tensor: Optional[Callable[[np.ndarray], Outputs]] = None  # float NCHW -> predicted, mask_prob, composite


def parity_cases(seed: int = SEED, real: bool = True) -> List[Case]:
    """Seeded random batches and, with `real`, corrupted held-out photos (one per batch)."""
    rng = np.random.default_rng(seed)
    cases = [Case(f"random {n}x{h}x{w}", rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8))
             for n, h, w in RANDOM_SHAPES]
    if real:
        from restore_core.photos import BUNDLED_VAL, bundled_photos
        from restore_toolkit.corruption import corrupt, sample_rng

        photos = bundled_photos()
        for i, name in enumerate(BUNDLED_VAL):
            clean = np.ascontiguousarray(photos[name][: REAL_CROP[0], : REAL_CROP[1]])
            corrupted, _ = corrupt(clean, sample_rng(seed, i))
            h, w = corrupted.shape[:2]
            cases.append(Case(f"photo {name} {h}x{w}", corrupted[None]))
    return cases


def _eager(pipeline: RestorationPipeline) -> Backend:
    @torch.no_grad()
    def pixels(image: np.ndarray) -> Outputs:
        return [t.numpy() for t in pipeline(torch.from_numpy(image))]

    @torch.no_grad()
    def tensor(x: np.ndarray) -> Outputs:
        return [t.numpy() for t in pipeline.forward_tensor(torch.from_numpy(x))]

    return Backend("eager", pixels, tensor)


def _to_tensor_input(image: np.ndarray) -> np.ndarray:
    """The tensor signature's input for a uint8 batch, made by the one `normalize`."""
    return normalize(torch.from_numpy(image).permute(0, 3, 1, 2)).contiguous().numpy()  # (N, 3, H, W)


def _case_figures(backend: Backend, ref: Backend, image: np.ndarray, threshold: float) -> Dict[str, Any]:
    """Parity figures of one case, through every signature the backend has."""
    figures: Dict[str, Any] = {}
    if backend.pixels is not None:
        figures.update(pixel_parity(image, ref.pixels(image), backend.pixels(image)))
    if backend.tensor is not None:
        x = _to_tensor_input(image)
        r, t = ref.tensor(x), backend.tensor(x)
        figures.update(tensor_parity(r, t))
        mask_figs = tensor_mask_parity(x, r, t, threshold)
        # Both signatures measure the mask: keep the worse, and exactness only if both hold.
        figures["mask_disagreement"] = max(figures.get("mask_disagreement", 0.0), mask_figs["mask_disagreement"])
        figures["outside_mask_exact"] = figures.get("outside_mask_exact", True) and mask_figs["outside_mask_exact"]
    return figures


def check_parity(backend: Backend, pipeline: RestorationPipeline, precision: str,
                 cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Run `backend` and eager on every case and judge the figures against `TOLERANCES[precision]`.

    Args:
        backend: the artifact's runners (at least one signature).
        pipeline: the eager fp32 reference, eval mode, on the CPU.
        precision: "fp32" or "fp16", selects the tolerance.
        cases: inputs; `parity_cases()` when None.

    Returns:
        The summary: backend, precision, tolerance, per-case figures, the worst case ("worst";
        its mask disagreement is the share over all checked pixels) and passed=True.

    Raises:
        ParityError: a tolerance is broken; the message is the table with the reasons.
    """
    tol = TOLERANCES[precision]
    ref = _eager(pipeline.cpu().eval())
    cases = parity_cases() if cases is None else cases
    rows: List[Dict[str, Any]] = []
    for case in cases:
        rows.append({"case": case.name, **_case_figures(backend, ref, case.image, pipeline.threshold)})
    worst = merge([{k: v for k, v in r.items() if k != "case"} for r in rows])
    # Mask flips are a share of every pixel checked, not of each case: on a 64x64 case a single
    # probability tied with the threshold would already be 0.024%, a verdict on rounding luck.
    n_pixels = [int(np.prod(c.image.shape[:3])) for c in cases]
    if any("mask_disagreement" in r for r in rows):
        worst["mask_disagreement"] = float(
            sum(r.get("mask_disagreement", 0.0) * n for r, n in zip(rows, n_pixels)) / sum(n_pixels))
    bad = violations(worst, tol)
    summary = {
        "backend": backend.name,
        "precision": precision,
        "tolerance": asdict(tol),
        "signatures": [s for s in ("pixels", "tensor") if getattr(backend, s) is not None],
        "cases": rows,
        "worst": worst,
        "passed": not bad,
    }
    if bad:
        raise ParityError(format_table(summary) + "\nparity FAILED: " + "; ".join(bad))
    return summary
