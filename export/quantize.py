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
the same integers, so the int8 verification (export/int8.py) holds on each.

Which parts keep float, and the proof that the graph is good enough, are export/int8.py's.

numpy, onnx and onnxruntime only (no torch): it works on any fp32 pixels graph.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

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
