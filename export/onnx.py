"""Export `RestorationPipeline` to one self-contained ONNX file with `restore.` metadata.

The graph holds everything between decoded pixels and restored pixels (normalization, padding
to the stride, both decoders, thresholding, compositing), so an app needs only ONNX Runtime.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from restore_core.fileio import atomic_path
from restore_core.checkpoint import weights_sha256
from restore_core.pipeline import RestorationPipeline
from runtime.metadata import FORMAT_VERSION, ModelMetadata

MIN_OPSET = 18
DEFAULT_OPSET = 20

# Names and layouts of the two signatures (the contract in DESIGN.md).
SIGNATURES = {
    "pixels": {"inputs": ["image"], "outputs": ["restored", "mask", "predicted"], "layout": "NHWC"},
    "tensor": {"inputs": ["input"], "outputs": ["predicted", "mask_prob", "composite"], "layout": "NCHW"},
}


class ExportError(RuntimeError):
    """An export that could not be completed; nothing was written."""


class _TensorSignature(nn.Module):
    """The float research signature: (N, 3, H, W) in [-1, 1] -> prediction, mask prob, composite."""

    def __init__(self, pipeline: RestorationPipeline):
        super().__init__()
        self.pipeline = pipeline

    def forward(self, x: torch.Tensor):
        return self.pipeline.forward_tensor(x)


def signature_module(pipeline: RestorationPipeline, signature: str) -> nn.Module:
    """The module whose forward is the given signature (the pipeline itself for 'pixels')."""
    if signature == "pixels":
        return pipeline
    if signature == "tensor":
        return _TensorSignature(pipeline)
    raise ValueError(f"unknown signature {signature!r}; choose pixels or tensor")


def example_input(signature: str, batch: int = 2, height: int = 40, width: int = 56) -> torch.Tensor:
    """A seeded input for tracing; deliberately not a multiple of the stride, batch > 1."""
    g = torch.Generator().manual_seed(0)
    if signature == "pixels":
        return torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, generator=g)
    return torch.rand(batch, 3, height, width, generator=g) * 2 - 1


def exporter_versions() -> Dict[str, str]:
    import onnx
    import onnxscript

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__}


def build_metadata(pipeline: RestorationPipeline, signature: str, precision: str,
                   parity: Optional[Dict[str, Any]]) -> ModelMetadata:
    from dataclasses import asdict

    return ModelMetadata(
        format_version=FORMAT_VERSION,
        signature=signature,
        layout=SIGNATURES[signature]["layout"],
        color_order="RGB",
        threshold=pipeline.threshold,
        stride=pipeline.stride,
        pads_inside=True,
        precision=precision,
        model_config=asdict(pipeline.model.cfg),
        weights_sha256=weights_sha256(pipeline.model),
        exporter=exporter_versions(),
        parity=parity,
    )


def _rename_dynamic_dims(proto, signature: str) -> None:
    """Give output dims the input's names: the exporter writes them as sympy expressions
    (e.g. 'Min(height, 16*((height + ...)//16))') that equal the input size but read badly."""
    names = {"pixels": {0: "batch", 1: "height", 2: "width"}, "tensor": {0: "batch", 2: "height", 3: "width"}}[signature]
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis, name in names.items():
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name


def to_onnx_proto(pipeline: RestorationPipeline, signature: str = "pixels", opset: int = DEFAULT_OPSET):
    """Trace the chosen signature with the dynamo exporter; returns an `onnx.ModelProto`."""
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is not supported; use {MIN_OPSET} or newer")
    module = signature_module(pipeline.eval(), signature)
    x = example_input(signature)
    spatial = (1, 2) if signature == "pixels" else (2, 3)
    dims = {0: torch.export.Dim("batch"), spatial[0]: torch.export.Dim("height"), spatial[1]: torch.export.Dim("width")}
    names = SIGNATURES[signature]
    with warnings.catch_warnings():
        # The exporter narrates its progress through warnings; errors still raise.
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module, (x,), dynamo=True, input_names=names["inputs"], output_names=names["outputs"],
                dynamic_shapes=(dims,), opset_version=opset, external_data=False, verbose=False,
            )
        except Exception as e:  # the exporter raises many types; one clear line for the user
            raise ExportError(f"ONNX export failed at opset {opset}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from e
    proto = program.model_proto
    _rename_dynamic_dims(proto, signature)
    return proto


def save_onnx(proto, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Attach metadata, check the model fully, and write it atomically as one file."""
    import onnx

    path = Path(path)
    del proto.metadata_props[:]
    for k, v in metadata.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise ExportError(f"the exported graph fails onnx.checker: {str(e).splitlines()[0][:200]}") from e
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    return path
