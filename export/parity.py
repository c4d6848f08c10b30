"""Parity figures between a backend's outputs and eager PyTorch's, and the tolerances they meet.

Export verification, the benchmarks and the runtime tests all judge "same result" with these
functions and these numbers, so a tolerance is stated once. Works on numpy arrays so that any
backend (ORT, TorchScript, eager) can be compared the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Sequence

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """What a backend may differ from eager fp32 by and still count as the same model."""

    max_level_diff: int  # largest allowed |difference| of a uint8 output value
    max_differing_share: float  # share of uint8 values allowed to differ at all
    max_mask_disagreement: float  # share of pixels whose binarized mask may flip
    max_float_abs_diff: float  # tensor signature: largest |difference| of float outputs


# fp32: same arithmetic up to operation order and fused kernels; a rounding boundary may move
# a pixel by one level, and a probability sitting on the threshold may flip its mask bit.
FP32 = Tolerance(max_level_diff=1, max_differing_share=1e-3, max_mask_disagreement=1e-4, max_float_abs_diff=1e-4)

# fp16 keeps 11 significant bits: activations of order 1 carry ~5e-4 relative error per
# operation, which grows through ~20 layers to a few 1e-3 at the tanh output (≈ 1 level of 127.5)
# and moves mask probabilities near the threshold. Allow a few levels on a small share of
# values and 0.5% mask flips; outside-mask pixels must still be the input bytes.
FP16 = Tolerance(max_level_diff=8, max_differing_share=5e-2, max_mask_disagreement=5e-3, max_float_abs_diff=5e-2)

TOLERANCES = {"fp32": FP32, "fp16": FP16}


def pixel_parity(image: np.ndarray, ref: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> Dict[str, float]:
    """Compare (restored, mask, predicted) uint8 outputs of the pixels signature.

    Args:
        image: the uint8 (N, H, W, 3) input both ran on.
        ref: eager outputs (restored, mask, predicted).
        test: the backend's outputs, same shapes.

    Returns:
        differing_share and max_level_diff over restored and predicted values, mask_disagreement
        (share of pixels), and outside_mask_exact: every pixel the backend's own mask leaves
        alone equals the input byte for byte. Restored values are compared only where the two
        masks agree: where a mask bit flipped, one side holds the input and the other the
        prediction, a difference the mask rule already counts (and bounds).
    """
    ref_restored, ref_mask, ref_pred = (np.asarray(a) for a in ref)
    restored, mask, pred = (np.asarray(a) for a in test)
    if restored.shape != ref_restored.shape or mask.shape != ref_mask.shape or pred.shape != ref_pred.shape:
        raise ValueError(f"output shapes differ: {restored.shape} vs {ref_restored.shape}")
    flipped = (mask > 0) != (ref_mask > 0)  # (N, H, W, 1)
    agree = np.broadcast_to(~flipped, image.shape)
    diffs = [
        np.abs(restored.astype(np.int16) - ref_restored.astype(np.int16))[agree],
        np.abs(pred.astype(np.int16) - ref_pred.astype(np.int16)).ravel(),
    ]
    n_values = sum(d.size for d in diffs)
    outside = np.broadcast_to(mask == 0, image.shape)
    return {
        "differing_share": float(sum(int((d > 0).sum()) for d in diffs) / max(n_values, 1)),
        "max_level_diff": int(max((int(d.max()) for d in diffs if d.size), default=0)),
        "mask_disagreement": float(flipped.mean()),
        "outside_mask_exact": bool(np.array_equal(restored[outside], image[outside])),
    }


def tensor_mask_parity(x: np.ndarray, ref: Sequence[np.ndarray], test: Sequence[np.ndarray],
                       threshold: float) -> Dict[str, float]:
    """The mask rules for the tensor signature's float outputs.

    Args:
        x: the float (N, 3, H, W) input both ran on.
        ref: eager outputs (predicted, mask_prob, composite).
        test: the backend's outputs, same shapes.
        threshold: the model's mask threshold.

    Returns:
        mask_disagreement (share of pixels whose binarized mask differs) and outside_mask_exact
        (the composite equals the input wherever the backend's own mask is 0).
    """
    ref_mask = np.asarray(ref[1]) >= threshold
    mask = np.asarray(test[1]) >= threshold  # (N, 1, H, W)
    outside = np.broadcast_to(~mask, x.shape)
    return {
        "mask_disagreement": float((mask != ref_mask).mean()),
        "outside_mask_exact": bool(np.array_equal(np.asarray(test[2])[outside], np.asarray(x)[outside])),
    }


def tensor_parity(ref: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> Dict[str, float]:
    """Compare (predicted, mask_prob, composite) float outputs of the tensor signature."""
    out: Dict[str, float] = {}
    for name, a, b in zip(("predicted", "mask_prob", "composite"), ref, test):
        d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
        out[f"{name}_max_abs_diff"] = float(d.max())
        out[f"{name}_mean_abs_diff"] = float(d.mean())
    return out


def merge(records: List[Dict[str, float]]) -> Dict[str, float]:
    """Worst case over several inputs: max of differences, all() of exactness flags."""
    merged: Dict[str, float] = {}
    for rec in records:
        for k, v in rec.items():
            if isinstance(v, bool):
                merged[k] = bool(merged.get(k, True) and v)
            elif k.endswith("mean_abs_diff") or k in ("differing_share", "mask_disagreement"):
                merged[k] = max(merged.get(k, 0.0), v)  # worst input, not the average
            else:
                merged[k] = max(merged.get(k, 0), v)
    return merged


def violations(figures: Dict[str, float], tol: Tolerance) -> List[str]:
    """Readable reasons the figures break the tolerance; empty when they pass."""
    bad = []
    if figures.get("max_level_diff", 0) > tol.max_level_diff and figures.get("differing_share", 0) > 0:
        bad.append(f"uint8 values differ by up to {figures['max_level_diff']} levels (allowed {tol.max_level_diff})")
    if figures.get("differing_share", 0) > tol.max_differing_share:
        bad.append(f"{figures['differing_share']:.3%} of uint8 values differ (allowed {tol.max_differing_share:.3%})")
    if figures.get("mask_disagreement", 0) > tol.max_mask_disagreement:
        bad.append(f"mask disagrees on {figures['mask_disagreement']:.4%} of pixels (allowed {tol.max_mask_disagreement:.4%})")
    if figures.get("outside_mask_exact") is False:
        bad.append("pixels outside the mask differ from the input")
    for k, v in figures.items():
        # The composite legitimately differs where a mask bit flipped; the mask rule judges that.
        if k.endswith("_max_abs_diff") and not k.startswith("composite") and v > tol.max_float_abs_diff:
            bad.append(f"{k} = {v:.2e} (allowed {tol.max_float_abs_diff:.0e})")
    return bad


def tolerance_table() -> List[Dict[str, float]]:
    """The tolerances as rows, for reports and the README."""
    return [{"precision": name, **asdict(t)} for name, t in TOLERANCES.items()]


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
