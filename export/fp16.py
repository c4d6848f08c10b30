"""Half-precision ONNX graphs: fp16 weights and compute inside, the same interface outside.

We use ONNX Runtime's own converter (`onnxruntime.transformers.float16`); graphs made by
`onnxconverter-common` were refused by ONNX Runtime (type clashes at Greater/Cast). Two things
the converter leaves for us to tidy, both repaired here rather than worked around elsewhere:

- Resize's `scales` input must stay float32. When several Resize nodes share one scales
  constant (our decoders upsample by 2 at every stage), the converter inserts one identical
  fp16->fp32 Cast per consumer, all with the same node and output name: ORT refuses the graph
  ("two nodes with same node name"). Identical duplicates are dropped.
- It also records a float16 `value_info` for such a scales initializer although the initializer
  itself stays float32, and `onnx.checker` rejects the clash; and the Cast it inserts for it is
  a float32 -> float32 no-op. The annotations are dropped (they are optional; shape inference
  rebuilds them) and no-op Casts of initializers are bypassed.
- A float input that the graph also returns where the mask is 0 (the tensor signature's
  composite) would come back rounded to fp16. The Where that selects it is kept in fp32, and
  the fp32 -> fp16 -> fp32 round trips the converter puts around it are collapsed, so the
  composite still copies the input values exactly outside the mask.
- The threshold (0.1) is not a float16 number (fp16 rounds it to 0.09998), so comparisons stay
  in fp32: the mask is `fp32(prob) >= threshold` exactly as the metadata states, and a reader
  of the returned mask probability reaches the same decision as the graph.
- The image head's tanh and everything after it (crop, unnormalize, rounding to uint8) run in
  fp32: near 1.0 fp16 steps by 4.9e-4, 1/16 of a uint8 level, and rounding `(x + 1) * 127.5`
  in fp16 (spacing 0.125 above 128) would move pixels by a level for no speed gain.
- The inserted Casts are appended at the end of the node list; `onnx.checker` wants the graph
  topologically sorted, so it is re-sorted.

`keep_io_types=True` keeps float inputs and outputs in float32 (the tensor signature); uint8
inputs and outputs (the pixels signature) are never touched, and the Casts inside the graph
(uint8 -> float, float -> uint8) are retargeted to float16 where they feed or read fp16 values.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Set

import onnx
from onnx import TensorProto

# Comparisons run in fp32 on the fp16 values: they cost nothing and keep the threshold exact.
_COMPARISONS = {"Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal"}


def convert_to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of `proto` computing in float16, with the same input and output types.

    Args:
        proto: an fp32 graph from `export.onnx_export.to_onnx_proto` (either signature).

    Returns:
        A new `onnx.ModelProto` that passes `onnx.checker` and keeps every graph input and
        output's dtype and shape.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    before = _io_types(proto)
    model = onnx.ModelProto()
    model.CopyFrom(proto)  # the converter edits its argument in place
    # The converter logs an INFO line per shared initializer; users need none of it.
    log = logging.getLogger("onnxruntime.transformers.float16")
    level = log.level
    log.setLevel(logging.WARNING)
    float_inputs = {v.name for v in proto.graph.input if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    keep_fp32 = [n.name for n in proto.graph.node
                 if (n.op_type == "Where" and float_inputs & set(n.input)) or n.op_type in _COMPARISONS]
    keep_fp32 += _image_head_onwards(proto.graph)
    try:
        model = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep_fp32)
    finally:
        log.setLevel(level)
    _drop_duplicate_nodes(model.graph)
    _bypass_noop_casts(model.graph)
    del model.graph.value_info[:]
    _topological_sort(model.graph)
    _collapse_round_trips(model)
    _drop_dead_nodes(model.graph)
    after = _io_types(model)
    if after != before:  # the interface is the contract; never ship a graph that changed it
        raise RuntimeError(f"fp16 conversion changed the graph's interface: {before} -> {after}")
    return model


def _image_head_onwards(graph: onnx.GraphProto) -> List[str]:
    """Names of the Tanh nodes and every node downstream of them."""
    names: List[str] = []
    reached: Set[str] = set()
    for node in graph.node:  # exporter output is topologically sorted
        if node.op_type == "Tanh" or reached & set(node.input):
            names.append(node.name)
            reached.update(node.output)
    return names


def _io_types(proto: onnx.ModelProto) -> Dict[str, int]:
    return {v.name: v.type.tensor_type.elem_type for v in list(proto.graph.input) + list(proto.graph.output)}


def _drop_duplicate_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes that repeat an earlier node exactly (same name, op, inputs, outputs, attributes)."""
    seen: Set[bytes] = set()
    keep: List[onnx.NodeProto] = []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key in seen:
            continue
        seen.add(key)
        keep.append(node)
    names = [n.name for n in keep if n.name]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise RuntimeError(f"fp16 conversion produced distinct nodes sharing a name: {dup[:5]}")
    del graph.node[:]
    graph.node.extend(keep)


def _bypass_noop_casts(graph: onnx.GraphProto) -> None:
    """Remove Casts of an initializer to the dtype it already has; consumers read it directly."""
    dtypes = {t.name: t.data_type for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    rename: Dict[str, str] = {}
    keep: List[onnx.NodeProto] = []
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if (node.op_type == "Cast" and node.input[0] in dtypes and dtypes[node.input[0]] == to
                and node.output[0] not in outputs):
            rename[node.output[0]] = node.input[0]
            continue
        keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    del graph.node[:]
    graph.node.extend(keep)


def _collapse_round_trips(model: onnx.ModelProto) -> None:
    """Replace Cast(to=fp32)(Cast(to=fp16)(v)) with v itself when v is already fp32."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    producer = {o: n for n in model.graph.node for o in n.output}
    outputs = {o.name for o in model.graph.output}

    def cast_to(node):
        return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None

    rename: Dict[str, str] = {}
    for node in model.graph.node:
        if cast_to(node) != TensorProto.FLOAT:
            continue
        first = producer.get(node.input[0])
        if first is None or cast_to(first) != TensorProto.FLOAT16 or types.get(first.input[0]) != TensorProto.FLOAT:
            continue
        source = first.input[0]
        if node.output[0] in outputs:  # a graph output keeps its name: read the fp32 value through Identity
            node.op_type = "Identity"
            del node.attribute[:]
            node.input[0] = source
        else:
            rename[node.output[0]] = source
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]


def _drop_dead_nodes(graph: onnx.GraphProto) -> None:
    """Remove nodes none of whose outputs is used (after the round trips were collapsed)."""
    while True:
        used = {o.name for o in graph.output} | {i for n in graph.node for i in n.input}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            return
        del graph.node[:]
        graph.node.extend(keep)


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Order nodes so each comes after the producers of its inputs (Kahn's algorithm, stable)."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: List[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.input if i not in available})
            raise RuntimeError(f"fp16 graph has inputs nothing produces: {missing[:5]}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def is_fp16(proto: onnx.ModelProto) -> bool:
    """Whether the graph's weights are mostly float16 (used by inspect and tests)."""
    counts = {TensorProto.FLOAT: 0, TensorProto.FLOAT16: 0}
    for t in graph_tensors(proto):
        if t.data_type in counts:
            counts[t.data_type] += 1
    return counts[TensorProto.FLOAT16] > counts[TensorProto.FLOAT]


def graph_tensors(proto: onnx.ModelProto):
    """Initializers and Constant-node tensors of the main graph."""
    yield from proto.graph.initializer
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
