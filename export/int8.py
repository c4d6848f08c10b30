"""The int8 export: a quantized graph searched for within quality bounds, proven, and reported.

The proof (`heldout_deltas`): both graphs restore `restore_core.heldout.heldout_set` (the selection photos) and the
int8 graph may lose at most `Bounds.max_iou_drop` mask IoU and `Bounds.max_psnr_drop` dB of
PSNR inside the true mask against the fp32 graph.

Whole photos: the crops are 96 to 320 pixels a side, and users' files are whole photos saved as
JPEG. So the proof also restores `DEFAULT_WHOLE_PAINTINGS` paintings of each selection photo
whole, saved as `WHOLE_SAVE` (`restore_core.heldout.whole_set`), and records what the int8
graph loses there (`whole_` deltas); `Bounds.max_whole_iou_drop` and `max_whole_psnr_drop` bound
it where a caller asks. Not by default: on them the shipped graph loses 0.042 mask IoU and 0.83 dB
in the mask (crops: 0.0012 and 0.24), yet through `restore-run`, whose smaller copies and paint
grow find much of what the graph alone misses, it is 0.14 dB behind the fp32 flip ensemble on 60
whole selection photos, and graphs the search reaches with parts in float gave back at most 0.05
dB of that for 8 to 46 % more time (benchmarks/results/selection-int8-whole.md). A bound on the
graph alone would have picked one of them for nothing.

The search (`quantize_verified`): when the fully quantized body misses the bounds, parts of it
are kept in float, 1, 2, 4, ... of them, until the bounds hold or `max_excluded` is reached;
then the export is refused. The first part is the network's first stage (`first_stage_nodes`:
the stem and the first ResNet stage, at full resolution), whose output the skip connection
carries unpooled to the last decoder stage where each pixel's mask is decided. The next are
single activation tensors ranked by ORT's `qdq_loss_debug`, which matches the activations of the
float and the QDQ graph on calibration images: lowest signal-to-quantization-noise ratio of the
tensor's own quantize/dequantize pair first (a tensor is kept in float by excluding its producer
and consumers). The ranking's head and what was excluded are recorded in the report.

The recipe of one quantized graph (calibration, 7-bit weights, the body) is export/quantize.py's.
numpy, onnx and onnxruntime only (no torch) but for `export_int8`, which exports the fp32 graph first.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from export.int8_report import allowed
from export.quantize import (
    CALIBRATION_PERCENTILE,
    CALIBRATION_SAVED,
    CALIBRATION_SEED,
    DEFAULT_CALIBRATION,
    DEFAULT_CALIBRATION_METHOD,
    calibration_images,
    check_calibration_method,
    first_stage_nodes,
    preprocess,
    quantize_graph,
    rank_nodes,
)
from runtime.default_model import Bounds

DEFAULT_BOUNDS = Bounds()  # the export's bounds unless a caller gives others
DEFAULT_HELDOUT_PER_PHOTO = 12  # crops per selection photo in the int8 verification
DEFAULT_WHOLE_PAINTINGS = 4  # paintings of each selection photo whole in it ...
WHOLE_SAVE = "jpeg-90-420"  # ... each saved as this (a key of restore_core.heldout.SAVES)
DEFAULT_MAX_EXCLUDED = 16
DEBUG_IMAGES = 4  # calibration images the activation matching runs on
WORST_LISTED = 5  # ranked tensors recorded in the metadata


class QuantizationRefused(RuntimeError):
    """The int8 graph misses the quality bounds even with `max_excluded` tensors kept in float."""

    def __init__(self, message: str, report: Dict[str, Any]):
        super().__init__(message)
        self.report = report


# ---------------------------------------------------------------------------------------------
# Verification on the held-out set.


def _session(path: Path, threads: Optional[int] = None):
    import onnxruntime as ort

    from restore_toolkit.console import available_cpus

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or available_cpus()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def score_graph(path: Path, cases) -> Dict[str, float]:
    """Held-out figures of one pixels graph (means over `cases`), plus the count of images whose
    pixels outside the graph's own mask are not the input's bytes."""
    from restore_core.heldout import evaluate

    session = _session(path)
    changed = 0

    def restore(rgb: np.ndarray):
        nonlocal changed
        restored, mask = session.run(["restored", "mask"], {"image": rgb[None]})
        keep = mask[0, ..., 0] == 0
        changed += int(np.any(restored[0][keep] != rgb[keep]))
        return restored[0], mask[0, ..., 0] > 0

    summary, _ = evaluate(cases, restore)
    summary["changed_outside_mask"] = changed
    return summary


def _scores(path: Path, cases, whole) -> Dict[str, Any]:
    """`score_graph` on the crops, with its figures on the whole photos under "whole" (if any)."""
    scores = score_graph(path, cases)
    if whole:
        scores["whole"] = score_graph(path, whole)
    return scores


def heldout_deltas(fp32: Dict[str, Any], int8: Dict[str, Any]) -> Dict[str, float]:
    """What the int8 graph loses against the fp32 one (positive = worse); `whole_` on whole photos."""
    deltas = {
        "mask_iou_drop": round(fp32["mask_iou"] - int8["mask_iou"], 5),
        "psnr_inside_drop": round(fp32["psnr_inside"] - int8["psnr_inside"], 4),
        "psnr_drop": round(fp32["psnr"] - int8["psnr"], 4),
        "changed_outside_mask": int(int8["changed_outside_mask"]),
    }
    if "whole" in int8:
        whole = heldout_deltas(fp32["whole"], int8["whole"])
        deltas.update({"whole_" + k: v for k, v in whole.items() if k != "changed_outside_mask"})
        deltas["changed_outside_mask"] += whole["changed_outside_mask"]
    return deltas


def _figures(s: Dict[str, Any]) -> Dict[str, Any]:
    out = {"mask_iou": round(s["mask_iou"], 5), "psnr_inside": round(s["psnr_inside"], 4), "psnr": round(s["psnr"], 4)}
    if "whole" in s:
        out["whole"] = _figures(s["whole"])
    return out


# ---------------------------------------------------------------------------------------------
# The search.


@dataclass
class QuantizationReport:
    """What `quantize_verified` did and measured; stored as `restore.int8` metadata."""

    bounds: Dict[str, float]
    calibration: Dict[str, Any]
    heldout: Dict[str, Any]
    fp32: Dict[str, float] = field(default_factory=dict)
    int8: Dict[str, float] = field(default_factory=dict)
    deltas: Dict[str, float] = field(default_factory=dict)
    excluded: List[Dict[str, Any]] = field(default_factory=list)  # tensors kept in float: nodes, figures
    tries: List[Dict[str, Any]] = field(default_factory=list)  # excluded count -> deltas, per attempt
    worst_tensors: List[Dict[str, Any]] = field(default_factory=list)  # qdq_loss_debug's ranking, head of it
    passed: bool = False
    seconds: float = 0.0
    quantizer: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _float_candidates(pre: Path, ranked: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The parts that may be kept in float, in the order they are tried: the first stage as one
    part (its lowest tensor SQNR as its figure), then the other ranked tensors, worst first."""
    import onnx

    first = set(first_stage_nodes(onnx.load(str(pre), load_external_data=False)))
    inside = [r for r in ranked if set(r["nodes"]) <= first]
    rest = [r for r in ranked if not set(r["nodes"]) <= first]
    if not first:
        return rest
    stage = {"tensor": "first stage", "nodes": sorted(first),  # None: no ranked tensor inside (JSON has no NaN)
             "qdq_sqnr": min((r["qdq_sqnr"] for r in inside), default=None),
             "xmodel_sqnr": min((r["xmodel_sqnr"] for r in inside), default=None)}
    return [stage] + rest


def _exclusion_steps(max_excluded: int) -> List[int]:
    steps, k = [0], 1
    while k <= max_excluded:
        steps.append(k)
        k *= 2
    if max_excluded > 0 and steps[-1] != max_excluded:
        steps.append(max_excluded)
    return steps


def quantize_verified(fp32_path: Path, dst: Path, *, calibration: int = DEFAULT_CALIBRATION,
                      heldout_per_photo: int = DEFAULT_HELDOUT_PER_PHOTO, bounds: Bounds = DEFAULT_BOUNDS,
                      max_excluded: int = DEFAULT_MAX_EXCLUDED,
                      calibration_method: str = DEFAULT_CALIBRATION_METHOD,
                      whole_paintings: int = DEFAULT_WHOLE_PAINTINGS, log=None) -> QuantizationReport:
    """Quantize the fp32 pixels graph `fp32_path` into `dst`, verified on the held-out set.

    Args:
        fp32_path: an fp32 pixels graph (ours, from `export_onnx`).
        dst: where the int8 graph goes (plain write: the caller stamps metadata and renames).
        calibration: number of calibration images (`calibration_images`).
        heldout_per_photo: crops per held-out photo in the verification set.
        bounds: the quality the int8 graph may lose against the fp32 graph.
        max_excluded: most parts that may be kept in float before refusing (the first stage
            counts as one part, each ranked tensor as one).
        calibration_method: how activation ranges are set (`quantize_graph`): "percentile",
            "minmax" or "entropy".
        whole_paintings: paintings of each selection photo whole, saved as `WHOLE_SAVE`, in the
            verification beside the crops (0: crops only).
        log: called with one line per step (progress for the CLI), or None.

    Returns:
        The report (passed True); `dst` holds the graph.

    Raises:
        QuantizationRefused: the bounds are missed with `max_excluded` parts in float; the
            message has the figures, `dst` is removed.
    """
    import onnxruntime

    from restore_core.heldout import HELDOUT_SEED, heldout_set, saved_case, whole_set

    say = log or (lambda _msg: None)
    check_calibration_method(calibration_method)
    t0 = time.perf_counter()
    calib = calibration_images(calibration)
    cases = heldout_set(heldout_per_photo, photos="selection")  # a choice: never the evaluation photos
    whole = [saved_case(c, WHOLE_SAVE)[0] for c in whole_set(whole_paintings, photos="selection")]
    report = QuantizationReport(
        bounds=asdict(bounds),
        calibration={"images": calibration, "seed": CALIBRATION_SEED, "method": calibration_method,
                     **({"percentile": CALIBRATION_PERCENTILE} if calibration_method == "percentile" else {}),
                     "saved": CALIBRATION_SAVED,
                     "source": "seeded corruptions of the bundled training photos, a share saved as JPEG or WebP"},
        heldout={"images": len(cases), "per_photo": heldout_per_photo, "seed": HELDOUT_SEED,
                 "sources": sorted({c.source for c in cases}),
                 "whole": {"images": len(whole), "paintings": whole_paintings, "saved": WHOLE_SAVE}},
        quantizer={"onnxruntime": onnxruntime.__version__, "format": "QDQ", "weights": "int8 per-channel, 7-bit range",
                   "activations": "uint8", "pre_process": "quant_pre_process"},
    )
    fp32_scores = _scores(fp32_path, cases, whole)
    report.fp32 = _figures(fp32_scores)
    say(_fp32_line(fp32_scores, len(cases), len(whole)))
    with tempfile.TemporaryDirectory(prefix="restore-int8-") as tmp:
        work = Path(tmp)
        pre = work / "pre.onnx"
        preprocess(fp32_path, pre)
        parts: Optional[List[Dict[str, Any]]] = None  # what may be kept in float, in order
        tried: set = set()
        for k in _exclusion_steps(max_excluded):
            k = min(k, len(parts)) if parts is not None else k  # no more parts than there are
            if k in tried:
                continue
            tried.add(k)
            excluded = parts[:k] if parts else []
            quantize_graph(pre, dst, calib, sorted({n for r in excluded for n in r["nodes"]}), calibration_method)
            if parts is None:  # the fully quantized body: where does it lose?
                ranked = rank_nodes(pre, dst, calib[:DEBUG_IMAGES], work)
                report.worst_tensors = ranked[:WORST_LISTED]
                say("qdq_loss_debug, worst tensors: " + ", ".join(
                    f"{r['tensor']} ({r['qdq_sqnr']:.1f} dB)" for r in ranked[:5]))
                parts = _float_candidates(pre, ranked)
            scores = _scores(dst, cases, whole)
            deltas = heldout_deltas(fp32_scores, scores)
            report.tries.append({"excluded": k, **deltas})
            say(_try_line(k, deltas))
            report.int8, report.deltas, report.excluded = _figures(scores), deltas, excluded
            if bounds.holds(deltas):
                report.passed = True
                break
    report.seconds = round(time.perf_counter() - t0, 1)
    if not report.passed:
        Path(dst).unlink(missing_ok=True)
        raise QuantizationRefused(_refusal(report, bounds, len(cases)), report.to_dict())
    return report


def _fp32_line(scores: Dict[str, Any], crops: int, whole: int) -> str:
    line = (f"fp32 graph on {crops} held-out crops: mask IoU {scores['mask_iou']:.4f}, "
            f"PSNR in mask {scores['psnr_inside']:.2f} dB")
    if whole:
        line += f"; on {whole} whole photos: {scores['whole']['mask_iou']:.4f}, {scores['whole']['psnr_inside']:.2f} dB"
    return line


def _try_line(k: int, d: Dict[str, float]) -> str:
    line = (f"int8 with {k} part(s) in float: mask IoU drop {d['mask_iou_drop']:+.4f}, "
            f"PSNR-in-mask drop {d['psnr_inside_drop']:+.3f} dB")
    if "whole_mask_iou_drop" in d:
        line += f"; whole photos {d['whole_mask_iou_drop']:+.4f}, {d['whole_psnr_inside_drop']:+.3f} dB"
    return line


def _refusal(report: QuantizationReport, bounds: Bounds, crops: int) -> str:
    d = report.deltas
    whole = ""
    if "whole_mask_iou_drop" in d:
        whole = (f", on whole photos {d['whole_mask_iou_drop']:.4f} ({allowed(bounds.max_whole_iou_drop)}) and "
                 f"{d['whole_psnr_inside_drop']:.3f} dB ({allowed(bounds.max_whole_psnr_drop)})")
    return (f"int8 graph misses the quality bounds on {crops} held-out images even with "
            f"{len(report.excluded)} part(s) in float: mask IoU drop {d['mask_iou_drop']:.4f} "
            f"(allowed {bounds.max_iou_drop}), PSNR-in-mask drop {d['psnr_inside_drop']:.3f} dB "
            f"(allowed {bounds.max_psnr_drop}){whole}, {d['changed_outside_mask']} image(s) changed outside the mask; "
            f"nothing written")


# ---------------------------------------------------------------------------------------------
# The one call `restore-export onnx --int8` makes.


def export_int8(pipeline, output: os.PathLike, *, calibration: int = DEFAULT_CALIBRATION,
                heldout_per_photo: int = DEFAULT_HELDOUT_PER_PHOTO, bounds: Bounds = DEFAULT_BOUNDS,
                max_excluded: int = DEFAULT_MAX_EXCLUDED, calibration_method: str = DEFAULT_CALIBRATION_METHOD,
                whole_paintings: int = DEFAULT_WHOLE_PAINTINGS, opset: Optional[int] = None, verify: bool = True,
                force: bool = False, log=None):
    """Export `pipeline` to an fp32 pixels graph, quantize it, prove it, and write it to `output`.

    The fp32 graph is exported (and, with `verify`, checked against eager) in a temporary
    folder; the int8 graph made from it carries the same `restore.` metadata with precision
    `int8`, the fp32 graph's parity figures, and `restore.int8`: the calibration, the bounds,
    both graphs' held-out figures, the deltas, the qdq_loss_debug ranking and the tensors kept
    in float. Nothing is written when the bounds are missed.

    Returns:
        `export.onnx_export.ExportResult` of the int8 file; `.metadata.extra['int8']` is the report's JSON.

    Raises:
        ExportError: a bad opset / output path, a failed export or fp32 parity, or the int8
            graph refused (the message has the deltas and the bounds).
    """
    import dataclasses
    import json

    import onnx

    from export.onnx_export import DEFAULT_OPSET, ExportError, ExportResult, check_output_path, export_onnx, save_onnx
    from restore_core.fileio import atomic_path

    t0 = time.perf_counter()
    check_calibration_method(calibration_method)
    output = check_output_path(output, force)
    with tempfile.TemporaryDirectory(prefix="restore-int8-export-") as tmp:
        fp32 = export_onnx(pipeline, Path(tmp) / "fp32.onnx", opset=opset or DEFAULT_OPSET, verify=verify)
        t_export = time.perf_counter() - t0
        try:
            report = quantize_verified(fp32.path, Path(tmp) / "int8.onnx", calibration=calibration,
                                       heldout_per_photo=heldout_per_photo, bounds=bounds,
                                       max_excluded=max_excluded, calibration_method=calibration_method,
                                       whole_paintings=whole_paintings, log=log)
        except QuantizationRefused as e:
            raise ExportError(str(e)) from None
        metadata = dataclasses.replace(fp32.metadata, precision="int8",
                                       extra={**fp32.metadata.extra, "int8": json.dumps(report.to_dict(), sort_keys=True)})
        proto = onnx.load(str(Path(tmp) / "int8.onnx"))
        with atomic_path(output) as dst:
            save_onnx(proto, dst, metadata)
    return ExportResult(path=output, metadata=metadata, parity=metadata.parity, seconds=time.perf_counter() - t0,
                        size_bytes=output.stat().st_size, export_seconds=t_export, verify_seconds=report.seconds)
