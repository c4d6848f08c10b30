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
  rebuilds them) and no-op Casts of initializers are removed.
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

The generic repairs (sorting, shape inference, removing Identity and unused nodes) are onnx-ir's
passes; what is ours is which nodes stay fp32 and which Casts are redundant.

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
    _drop_duplicate_nodes(model.graph)  # before onnx-ir: it cannot load two nodes writing one name
    del model.graph.value_info[:]
    model = _tidy(model)
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


def _tidy(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnx-ir's passes do the generic repairs: sort the nodes the converter appended (the checker
    wants a topological order), infer the types, drop the Identities our Casts become, and drop
    the nodes left unused. Only which Casts are redundant is ours to say (`_redundant_casts_to_identity`)."""
    import onnx_ir as ir
    from onnx_ir.passes.common import (
        IdentityEliminationPass,
        RemoveUnusedNodesPass,
        ShapeInferencePass,
        TopologicalSortPass,
    )

    model = ir.from_proto(proto)
    model = ir.passes.Sequential(TopologicalSortPass(), ShapeInferencePass())(model).model
    _redundant_casts_to_identity(model.graph)
    passes = ir.passes.Sequential(IdentityEliminationPass(), RemoveUnusedNodesPass(), TopologicalSortPass())
    return ir.to_proto(passes(model).model)


def _redundant_casts_to_identity(graph) -> None:
    """Turn into Identity (onnx-ir then removes it) every Cast that changes nothing:

    - a Cast of an initializer to the dtype it already has (the converter's float32 -> float32
      Cast of Resize's scales);
    - the second Cast of a round trip fp32 -> fp16 -> fp32, which then reads the fp32 value
      itself, so the composite copies the input exactly outside the mask.
    """
    import onnx_ir as ir

    def cast_to(node):
        return node.attributes["to"].as_int() if node.op_type == "Cast" and "to" in node.attributes else None

    for node in list(graph):
        to, source = cast_to(node), node.inputs[0] if node.op_type == "Cast" else None
        if to is None:
            continue
        if source.is_initializer() and source.dtype is not None and source.dtype.value == to:
            node.op_type = "Identity"
            node.attributes.clear()
            continue
        first = source.producer()
        if (to == ir.DataType.FLOAT.value and first is not None and cast_to(first) == ir.DataType.FLOAT16.value
                and first.inputs[0].dtype == ir.DataType.FLOAT):
            node.replace_input_with(0, first.inputs[0])
            node.op_type = "Identity"
            node.attributes.clear()


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
