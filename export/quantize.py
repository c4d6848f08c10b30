"""Static int8 quantization of a pixels graph, with its quality proven on the held-out set.

The recipe (`quantize_graph`): ONNX Runtime's `quant_pre_process`, then `quantize_static` in QDQ
format with per-channel 7-bit weights (int8 in [-64, 63]) and uint8 activations, calibrated on 64 seeded synthetic
corruptions of the bundled *training* photos (`calibration_images`), half of them then saved as
JPEG or WebP as users' files are. Each activation's range is the one holding 99.99 % of its
calibration values (ORT's Percentile calibration), not all of them (MinMax): a few extreme
values no longer stretch the range, so the values that matter keep finer steps. For the shipped
model fine-tuned on saved photos, MinMax on PNG crops lost 0.015 mask IoU and 1.4 dB in the
mask held out, and still 0.006 IoU and 0.9 dB with up to 16 parts in float; Percentile on the
mixed PNG / JPEG set of 64 images loses 0.003 IoU and 0.08 dB with nothing in float. 24 images
were too few: the draw of the set moved the drops by more than the bounds. Only the network
body is quantized: the nodes between the first and the last convolution. The uint8 front end
(normalization, padding), the heads' tanh / sigmoid, the threshold, the uint8 composite and
the crop stay exactly as in the fp32 graph, so pixels outside the mask keep the input's bytes.

Why 7-bit weights (`reduce_range`): on a CPU without VNNI (AVX2, AVX-512 before VNNI) ONNX
Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW, which adds each two
products into a 16-bit lane that saturates (255 × 127 × 2 = 64,770 > 32,767); VNNI and AMX sum
in 32 bits. A graph with full-range weights verified on a VNNI CPU computed something else on
an AVX2 one: the shipped graph's held-out mask IoU 0.903 and 16.17 dB inside the mask there,
against 0.979 and 17.55 dB for the same QDQ graph with ORT's integer kernels off (AMD EPYC,
AVX2 only). With weights within ±64 two products never pass 32,640: every x86 CPU computes
the same integers, so the verification below holds on each.

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

numpy, onnx and onnxruntime only (no torch): it works on any fp32 pixels graph.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from runtime.default_model import Bounds

DEFAULT_BOUNDS = Bounds()  # the export's bounds unless a caller gives others

CALIBRATION_SEED = 1107
CALIBRATION_SIZE = (128, 224)  # crop sides of the calibration images (any size runs)
CALIBRATION_SAVED = 0.5  # share of calibration images saved as a lossy file (JPEG or WebP) after painting
# ... as one of these, in turn (named, not every lossy save there is: the shipped int8 graph's
# calibration stays what it was when evaluation kinds are added to heldout.SAVES).
LOSSY_SAVES = ("jpeg-75-420", "jpeg-90-420", "jpeg-95-420", "jpeg-95-444", "webp-90")
DEFAULT_CALIBRATION = 64
CALIBRATION_METHODS = ("percentile", "minmax", "entropy")
DEFAULT_CALIBRATION_METHOD = "percentile"
CALIBRATION_PERCENTILE = 99.99  # share (%) of each activation's calibration values inside its int8 range
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
# Calibration images.


def calibration_images(count: int = DEFAULT_CALIBRATION, seed: int = CALIBRATION_SEED,
                       saved: float = CALIBRATION_SAVED) -> List[np.ndarray]:
    """`count` seeded, corrupted crops of the bundled training photos, each uint8 (1, H, W, 3).

    Training's own corruptions (`CorruptionConfig()`), drawn on crops of the photos training
    sees; the held-out photos (`BUNDLED_VAL`) are never used, so calibration cannot leak into
    the verification. A share `saved` of them is then saved as users' files are after painting,
    as one of `LOSSY_SAVES` (JPEG at quality 75 to 95, WebP; keys of `restore_core.heldout.SAVES`),
    and decoded: the model is trained on such files, and their block noise and ringing reach
    activation values that painted PNG crops alone do not.
    """
    from restore_core.degrade import decode, encode_file
    from restore_core.heldout import SAVES
    from restore_core.photos import BUNDLED_VAL, bundled_photos
    from restore_toolkit.corruption import corrupt, sample_rng

    if count < 1:
        raise ValueError("calibration needs at least one image")
    if not 0.0 <= saved <= 1.0:
        raise ValueError(f"the saved share must lie in [0, 1], got {saved}")
    lossy = [SAVES[k] for k in LOSSY_SAVES]
    photos = [a for n, a in sorted(bundled_photos().items()) if n not in BUNDLED_VAL]
    out = []
    for i in range(count):
        rng = sample_rng(seed, i)
        photo = photos[i % len(photos)]
        ph, pw = photo.shape[:2]
        h, w = (int(rng.integers(CALIBRATION_SIZE[0], CALIBRATION_SIZE[1] + 1)) for _ in range(2))
        h, w = min(h, ph), min(w, pw)
        y, x = int(rng.integers(0, ph - h + 1)), int(rng.integers(0, pw - w + 1))
        corrupted, _ = corrupt(np.ascontiguousarray(photo[y : y + h, x : x + w]), rng)
        if saved and rng.random() < saved:
            container, quality, subsampling = lossy[int(rng.integers(len(lossy)))]
            corrupted = decode(encode_file(corrupted, container, quality, subsampling))
        out.append(np.ascontiguousarray(corrupted)[None])
    return out


class _Reader:
    """An ORT `CalibrationDataReader` over uint8 (1, H, W, 3) images (re-iterable via rewind).

    `len` and `set_range` let `quantize_static` feed the calibrator a slice at a time
    (`CalibStridedMinMax`): the images differ in size, which ORT's histogram calibrators cannot
    stack in one pass.
    """

    def __init__(self, images: Sequence[np.ndarray]):
        self.images = list(images)
        self.rewind()

    def __len__(self) -> int:
        return len(self.images)

    def get_next(self):
        return next(self._it, None)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter([{"image": img} for img in self.images[start_index:end_index]])

    def rewind(self):
        self.set_range(0, len(self.images))

    def __iter__(self):
        self.rewind()
        return iter([{"image": img} for img in self.images])


# ---------------------------------------------------------------------------------------------
# The graph: which nodes form the network body, quantizing it.


class _Graph:
    """A graph's nodes with their links by index: who produces a tensor, who consumes it."""

    def __init__(self, proto):
        self.nodes = list(proto.graph.node)
        self.producer = {out: i for i, n in enumerate(self.nodes) for out in n.output}
        self.consumers: Dict[str, List[int]] = {}
        for i, n in enumerate(self.nodes):
            for inp in n.input:
                self.consumers.setdefault(inp, []).append(i)

    def upstream(self, start: List[int]) -> set:
        """`start` and every node that feeds them, directly or not."""
        return self._closure(start, lambda i: [self.producer[x] for x in self.nodes[i].input if x in self.producer])

    def downstream(self, start: List[int]) -> set:
        """`start` and every node they feed, directly or not."""
        return self._closure(start, lambda i: [j for o in self.nodes[i].output for j in self.consumers.get(o, [])])

    @staticmethod
    def _closure(start: List[int], step) -> set:
        seen, todo = set(start), list(start)
        while todo:
            for j in step(todo.pop()):
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen


def body_nodes(proto) -> List[str]:
    """Names of the nodes between the first and the last Conv (inclusive): the part worth int8.

    A node is in the body when a Conv lies upstream of it (or it is one) and a Conv lies
    downstream of it (or it is one). Everything else (the uint8 front end, the heads'
    activations, threshold, composite, crop, shape arithmetic) is interface and stays float.
    """
    g = _Graph(proto)
    return [g.nodes[i].name for i in sorted(_body(g))]


def _body(g: _Graph) -> set:
    """Indices of the body nodes (see `body_nodes`)."""
    convs = [i for i, n in enumerate(g.nodes) if n.op_type == "Conv"]
    return g.downstream(convs) & g.upstream(convs)


def first_stage_nodes(proto) -> List[str]:
    """Names of the body nodes upstream of the first MaxPool: the stem and the first stage.

    They run at full resolution, and their output reaches the mask head by two roads: through
    the encoder and, unpooled, through the skip connection into the last decoder stage. Held
    out, they are where int8 costs the mask most: on the shipped model's one-view graph,
    quantizing everything lost 0.154 mask IoU and 3.1 dB in the mask; the same graph with these
    nodes in float lost 0.0027 and 0.21 dB (`MODEL_CARD.md`).
    """
    g = _Graph(proto)
    # Each pool's upstream nodes (the pool itself left out); the first pool has the fewest.
    pools = [g.upstream([i]) - {i} for i, n in enumerate(g.nodes) if n.op_type == "MaxPool"]
    if not pools:
        return []
    return [g.nodes[i].name for i in sorted(min(pools, key=len) & _body(g))]


def _name_nodes(proto) -> None:
    """Give every node a unique name (exclusion lists refer to nodes by name)."""
    seen = set()
    for i, n in enumerate(proto.graph.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)


def preprocess(src: Path, dst: Path) -> None:
    """ORT's recommended pre-processing (graph optimization before quantization).

    Its symbolic shape inference cannot resolve the dynamic sizes of the in-graph padding, so
    it is skipped; ONNX shape inference and the graph optimizations still run.
    """
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
    proto = onnx.load(str(dst))
    _name_nodes(proto)
    onnx.save_model(proto, str(dst))


def check_calibration_method(method: str) -> str:
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {list(CALIBRATION_METHODS)}, got {method!r}")
    return method


def quantize_graph(pre: Path, dst: Path, calibration: Sequence[np.ndarray], exclude: Sequence[str] = (),
                   method: str = DEFAULT_CALIBRATION_METHOD) -> None:
    """QDQ static quantization of the body of the pre-processed graph `pre` into `dst`.

    `method` sets each activation's range from the calibration values: "percentile" (the
    default) the range holding `CALIBRATION_PERCENTILE` % of them (outliers are clipped, the
    rest resolved more finely), "minmax" all of them, "entropy" the range that keeps the
    distribution's KL divergence lowest. The calibrator sees one image at a time.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    check_calibration_method(method)
    proto = onnx.load(str(pre), load_external_data=False)
    interface = [n.name for n in proto.graph.node if n.name not in set(body_nodes(proto))]
    extra: Dict[str, Any] = {"CalibStridedMinMax": 1}  # one image a pass (any method; see _Reader)
    if method == "percentile":
        extra["CalibPercentile"] = CALIBRATION_PERCENTILE
    calibrate = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax,
                 "entropy": CalibrationMethod.Entropy}[method]
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print every pass
        quantize_static(str(pre), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                        calibrate_method=calibrate,
                        nodes_to_exclude=interface + list(exclude), extra_options=extra)


# ---------------------------------------------------------------------------------------------
# Finding the layers that lose most: qdq_loss_debug's activation matching.


def rank_nodes(pre: Path, qdq: Path, images: Sequence[np.ndarray], workdir: Path) -> List[Dict[str, Any]]:
    """Quantized body nodes, worst first, by how much quantizing their output costs.

    Runs ORT's `qdq_loss_debug`: both graphs are augmented to output every float activation;
    `create_activation_matching` pairs each tensor before and after its QDQ pair (and with the
    float graph's). Per tensor, `qdq_sqnr` is the SQNR (dB) of its own quantization and
    `xmodel_sqnr` the SQNR of the int8 graph's value against the float graph's (accumulated
    error). Nodes are ranked by `qdq_sqnr`, lowest first: where the signal is least resolved.
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    aug_f, aug_q = workdir / "aug-float.onnx", workdir / "aug-qdq.onnx"
    modify_model_output_intermediate_tensors(str(pre), str(aug_f))
    modify_model_output_intermediate_tensors(str(qdq), str(aug_q))
    float_acts = collect_activations(str(aug_f), _Reader(images))
    qdq_acts = collect_activations(str(aug_q), _Reader(images))
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))
    aug_f.unlink()
    aug_q.unlink()

    proto = onnx.load(str(pre), load_external_data=False)
    body = set(body_nodes(proto))
    producer = {out: n.name for n in proto.graph.node for out in n.output}
    consumers: Dict[str, List[str]] = {}
    for n in proto.graph.node:
        for inp in n.input:
            consumers.setdefault(inp, []).append(n.name)
    ranked = []
    for tensor, err in errors.items():
        node = producer.get(tensor)
        if node in body and math.isfinite(err.get("qdq_err", float("nan"))):
            # A tensor keeps its QDQ pair while any node touching it is quantized: keeping it in
            # float means keeping its producer and all its consumers in float.
            nodes = [node] + [c for c in consumers.get(tensor, []) if c in body and c != node]
            ranked.append({"tensor": tensor, "nodes": nodes, "qdq_sqnr": round(float(err["qdq_err"]), 2),
                           "xmodel_sqnr": round(float(err.get("xmodel_err", float("nan"))), 2)})
    ranked.sort(key=lambda r: (r["qdq_sqnr"], r["xmodel_sqnr"]))
    return ranked


# ---------------------------------------------------------------------------------------------
# Verification on the held-out set.


def _session(path: Path, threads: Optional[int] = None):
    import onnxruntime as ort

    from runtime.session import available_cpus

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
        whole = (f", on whole photos {d['whole_mask_iou_drop']:.4f} ({_allowed(bounds.max_whole_iou_drop)}) and "
                 f"{d['whole_psnr_inside_drop']:.3f} dB ({_allowed(bounds.max_whole_psnr_drop)})")
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


def int8_summary(metadata_extra: Dict[str, str]) -> Optional[Dict[str, Any]]:
    """The parsed `restore.int8` report of a file's metadata (None for a float graph)."""
    import json

    text = metadata_extra.get("int8")
    return json.loads(text) if text else None


def format_int8(report: Dict[str, Any]) -> str:
    """Lines for `restore-export inspect` and the CLI: figures, deltas, bounds, what stayed float."""
    d, b, h = report["deltas"], report["bounds"], report["heldout"]
    lines = [
        f"int8 quality on {h['images']} held-out images (seed {h['seed']}; {', '.join(h['sources'])}), against the fp32 graph:",
        f"  mask IoU      fp32 {report['fp32']['mask_iou']:.4f}  int8 {report['int8']['mask_iou']:.4f}  "
        f"drop {d['mask_iou_drop']:+.4f} (allowed {b['max_iou_drop']})",
        f"  PSNR in mask  fp32 {report['fp32']['psnr_inside']:.2f}  int8 {report['int8']['psnr_inside']:.2f} dB  "
        f"drop {d['psnr_inside_drop']:+.3f} dB (allowed {b['max_psnr_drop']})",
        *_whole_lines(report),
        f"  changed outside the mask: {d['changed_outside_mask']} image(s)",
        f"  calibration: {report['calibration']['images']} images ({report['calibration']['source']}, "
        f"seed {report['calibration']['seed']}, {report['calibration']['method']}"
        + (f" {report['calibration']['percentile']} %" if report["calibration"].get("percentile") else "") + ")",
    ]
    kept = report.get("excluded") or []
    lines.append("  kept in float: " + (", ".join(
        r["tensor"] + ("" if r["qdq_sqnr"] is None else f" ({r['qdq_sqnr']:.1f} dB)") for r in kept)
        if kept else "none needed"))
    worst = report.get("worst_tensors") or []
    if worst:
        lines.append("  lowest quantization SQNR: " + ", ".join(f"{r['tensor']} {r['qdq_sqnr']:.1f} dB" for r in worst))
    return "\n".join(lines)


def _whole_lines(report: Dict[str, Any]) -> List[str]:
    """The whole photos' figures (none for a graph exported before they were checked)."""
    d, b, w = report["deltas"], report["bounds"], report["heldout"].get("whole")
    if not w or "whole_mask_iou_drop" not in d:
        return []
    f, q = report["fp32"]["whole"], report["int8"]["whole"]
    return [f"  on {w['images']} whole photos saved as {w['saved']}:",
            f"  mask IoU      fp32 {f['mask_iou']:.4f}  int8 {q['mask_iou']:.4f}  "
            f"drop {d['whole_mask_iou_drop']:+.4f} ({_allowed(b.get('max_whole_iou_drop'))})",
            f"  PSNR in mask  fp32 {f['psnr_inside']:.2f}  int8 {q['psnr_inside']:.2f} dB  "
            f"drop {d['whole_psnr_inside_drop']:+.3f} dB ({_allowed(b.get('max_whole_psnr_drop'))})"]


def _allowed(bound: Optional[float]) -> str:
    return "not bounded" if bound is None else f"allowed {bound}"
