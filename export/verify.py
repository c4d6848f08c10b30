"""Parity at export time: run the written file against eager `RestorationPipeline`.

Every exported artifact (ONNX through ONNX Runtime's CPU provider, TorchScript through
`torch.jit.load`, an exported program through `torch.export.load`) runs the same cases as the
eager pipeline: seeded random images of several sizes (a stride multiple, odd sizes with batch
3, a wide one) and corrupted held-out photos. Figures and tolerances come from
`export.parity` only. The summary goes into the artifact's metadata; a failure raises
`ParityError` whose message is the readable table.

Float parity is measured on the tensor signature: a pixels file is accompanied by its tensor
twin (same exporter, opset and precision), because uint8 outputs alone hide sub-level drift.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from export.onnx_export import ExportError
from export.parity import TOLERANCES, merge, pixel_parity, tensor_mask_parity, tensor_parity, violations
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
        figures: Dict[str, Any] = {}
        if backend.pixels is not None:
            figures.update(pixel_parity(case.image, ref.pixels(case.image), backend.pixels(case.image)))
        if backend.tensor is not None:
            x = _to_tensor_input(case.image)
            r, t = ref.tensor(x), backend.tensor(x)
            figures.update(tensor_parity(r, t))
            mask_figs = tensor_mask_parity(x, r, t, pipeline.threshold)
            # Both signatures measure the mask: keep the worse, and exactness only if both hold.
            figures["mask_disagreement"] = max(figures.get("mask_disagreement", 0.0), mask_figs["mask_disagreement"])
            figures["outside_mask_exact"] = figures.get("outside_mask_exact", True) and mask_figs["outside_mask_exact"]
        rows.append({"case": case.name, **figures})
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


# ---------------------------------------------------------------------------------------------
# Backends for each artifact kind.


def _ort_runner(model, input_name: Optional[str] = None) -> Callable[[np.ndarray], Outputs]:
    """An ORT CPU session over a file path or serialized bytes, made as `restore-run` makes it."""
    from runtime.session import make_session

    # The metadata is checked by the caller (the tensor twin carries none).
    session, _ = make_session(model, device="cpu", require_signature=None, check_metadata=False)
    name = input_name or session.get_inputs()[0].name
    return lambda a: session.run(None, {name: a})


def onnx_backend(path: str | os.PathLike, pipeline: RestorationPipeline, float_parity: bool = True) -> Backend:
    """Runners for an ONNX file; a pixels file gets its tensor twin when `float_parity`."""
    import onnx

    from export.fp16 import convert_to_fp16
    from export.onnx_export import to_onnx_proto
    from runtime.metadata import read_metadata

    meta = read_metadata(path)
    runner = _ort_runner(path)
    if meta.signature == "tensor":
        return Backend(f"onnxruntime CPU ({meta.precision})", tensor=runner)
    backend = Backend(f"onnxruntime CPU ({meta.precision})", pixels=runner)
    if float_parity:
        header = onnx.load(str(path), load_external_data=False)
        opset = next(o.version for o in header.opset_import if o.domain in ("", "ai.onnx"))
        twin = to_onnx_proto(pipeline, "tensor", opset)
        if meta.precision == "fp16":
            twin = convert_to_fp16(twin)
        backend.tensor = _ort_runner(twin.SerializeToString())
    return backend


def verify_onnx(path: str | os.PathLike, pipeline: RestorationPipeline, precision: Optional[str] = None, *,
                float_parity: bool = True, cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Check an ONNX file against eager on the parity cases (ONNX Runtime, CPU provider).

    Args:
        path: the ONNX file (either signature).
        pipeline: the eager model it was exported from.
        precision: "fp32" or "fp16"; selects the tolerance (None: the file's own metadata).
        float_parity: for a pixels file, also export its tensor twin and compare float outputs.
        cases: inputs; `parity_cases()` when None.

    Returns:
        The parity summary (see `check_parity`).

    Raises:
        ParityError: a tolerance is broken (the message is the table).
    """
    if precision is None:
        from runtime.metadata import read_metadata

        precision = read_metadata(path).precision
    return check_parity(onnx_backend(path, pipeline, float_parity), pipeline, precision, cases)


def verify_torchscript(path: str | os.PathLike, pipeline: RestorationPipeline,
                       cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Check a TorchScript file (both signatures: `forward` and `forward_tensor`) against eager."""
    from export.torchscript import load_torchscript

    module, _ = load_torchscript(path)

    @torch.no_grad()
    def pixels(image):
        return [t.numpy() for t in module(torch.from_numpy(image))]

    @torch.no_grad()
    def tensor(x):
        return [t.numpy() for t in module.forward_tensor(torch.from_numpy(x))]

    return check_parity(Backend("torch.jit (TorchScript)", pixels, tensor), pipeline, "fp32", cases)


def verify_exported_program(path: str | os.PathLike, pipeline: RestorationPipeline,
                            float_parity: bool = True, cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Check a `.pt2` exported program (pixels) and, with `float_parity`, its tensor twin."""
    from export.torchscript import load_exported_program, to_exported_program

    program, _ = load_exported_program(path)
    module = program.module()

    @torch.no_grad()
    def pixels(image):
        return [t.numpy() for t in module(torch.from_numpy(image))]

    backend = Backend("torch.export (.pt2)", pixels=pixels)
    if float_parity:
        twin = to_exported_program(pipeline, "tensor").module()
        backend.tensor = torch.no_grad()(lambda x: [t.numpy() for t in twin(torch.from_numpy(x))])
    return check_parity(backend, pipeline, "fp32", cases)


# ---------------------------------------------------------------------------------------------
# The readable table.

_COLUMNS = (
    # (figure key, header, format)
    ("differing_share", "uint8 differing", lambda v: f"{v:.4%}"),
    ("max_level_diff", "max levels", lambda v: f"{int(v)}"),
    ("mask_disagreement", "mask flips", lambda v: f"{v:.4%}"),
    ("outside_mask_exact", "outside exact", lambda v: "yes" if v else "NO"),
    ("predicted_max_abs_diff", "pred max|d|", lambda v: f"{v:.2e}"),
    ("predicted_mean_abs_diff", "pred mean|d|", lambda v: f"{v:.2e}"),
    ("mask_prob_max_abs_diff", "prob max|d|", lambda v: f"{v:.2e}"),
)


def format_table(summary: Dict[str, Any]) -> str:
    """Render a parity summary as a fixed-width table, one row per case, then worst and allowed."""
    tol = summary["tolerance"]
    allowed = {
        "differing_share": tol["max_differing_share"],
        "max_level_diff": tol["max_level_diff"],
        "mask_disagreement": tol["max_mask_disagreement"],
        "outside_mask_exact": True,
        "predicted_max_abs_diff": tol["max_float_abs_diff"],
        "mask_prob_max_abs_diff": tol["max_float_abs_diff"],
    }
    rows = [dict(r) for r in summary["cases"]]
    rows.append({"case": "worst (mask: all)", **summary["worst"]})
    rows.append({"case": f"allowed ({summary['precision']})", **allowed})
    cols = [c for c in _COLUMNS if any(c[0] in r for r in rows[:-1])]
    header = ["case"] + [c[1] for c in cols]
    body = [[r["case"]] + [c[2](r[c[0]]) if c[0] in r else "-" for c in cols] for r in rows]
    widths = [max(len(x[i]) for x in [header] + body) for i in range(len(header))]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [f"parity of {summary['backend']} against eager PyTorch fp32", fmt(header), fmt(["-" * w for w in widths])]
    lines += [fmt(b) for b in body]
    return "\n".join(lines)
