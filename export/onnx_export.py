"""Export `RestorationPipeline` to one self-contained ONNX file with `restore.` metadata.

The graph holds everything between decoded pixels and restored pixels (normalization, padding
to the stride, both decoders, thresholding, compositing), so an app needs only ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np
import torch
from torch import nn

from export.errors import ExportError
from export.parity import format_table
from export.verify import Backend, Case, Outputs, check_parity
from restore_core.checkpoint import weights_sha256
from restore_core.fileio import atomic_path
from restore_core.pipeline import RestorationPipeline
from restore_toolkit.messages import one_line
from runtime.metadata import FORMAT_VERSION, PIXELS_INPUTS, PIXELS_OUTPUTS, ModelMetadata

MIN_OPSET = 18
DEFAULT_OPSET = 20

# Names and layouts of the two signatures (the I/O contract the README documents).
SIGNATURES = {
    "pixels": {"inputs": list(PIXELS_INPUTS), "outputs": list(PIXELS_OUTPUTS), "layout": "NHWC"},
    "tensor": {"inputs": ["input"], "outputs": ["predicted", "mask_prob", "composite"], "layout": "NCHW"},
}


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
    """The versions that wrote a file: this toolkit's, torch's, onnx's and onnxscript's."""
    import onnx
    import onnxscript

    from restore_toolkit import __version__

    return {"restore-toolkit": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__}


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
        extra={"flip_ensemble": "true" if pipeline.flip_ensemble else "false",
               "mask_opening": str(pipeline.mask_opening)},
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


# The dynamo exporter registers torchvision's ONNX functions (nms, roi_align, ...) on every
# export and, without torchvision, logs one warning per op through this logger. Our graphs use
# none of them, and the export extra does not install torchvision.
_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"
_NO_TORCHVISION = "torchvision is not installed. Skipping "


class _NoTorchvisionNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_NO_TORCHVISION))


@contextlib.contextmanager
def _without_torchvision_notes():
    """Drop only the exporter's "torchvision is not installed" records while it runs; every
    other record of that logger still shows."""
    logger, notes = logging.getLogger(_REGISTRATION_LOGGER), _NoTorchvisionNotes()
    logger.addFilter(notes)
    try:
        yield
    finally:
        logger.removeFilter(notes)


def to_onnx_proto(pipeline: RestorationPipeline, signature: str = "pixels", opset: int = DEFAULT_OPSET):
    """Trace the chosen signature with the dynamo exporter; returns an `onnx.ModelProto`."""
    check_opset(opset)
    module = signature_module(pipeline.eval(), signature)
    x = example_input(signature)
    spatial = (1, 2) if signature == "pixels" else (2, 3)
    dims = {0: torch.export.Dim("batch"), spatial[0]: torch.export.Dim("height"), spatial[1]: torch.export.Dim("width")}
    names = SIGNATURES[signature]
    with warnings.catch_warnings(), _without_torchvision_notes():
        # The exporter narrates its progress through warnings; errors still raise.
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module, (x,), dynamo=True, input_names=names["inputs"], output_names=names["outputs"],
                dynamic_shapes=(dims,), opset_version=opset, external_data=False, verbose=False,
            )
        except Exception as e:  # the exporter raises many types; one clear line for the user
            raise ExportError(f"ONNX export failed at opset {opset}: {one_line(e)}") from e
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
        raise ExportError(f"the exported graph fails onnx.checker: {one_line(e, with_type=False)}") from e
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    return path


# ---------------------------------------------------------------------------------------------
# Parity of a written file: its ONNX Runtime backend for `export.verify.check_parity`.


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




# ---------------------------------------------------------------------------------------------
# The one call the CLI makes: export, convert, verify the written file, then put it in place.


@dataclass
class ExportResult:
    """What `export_onnx` wrote and what it measured.

    Attributes:
        path: the final file.
        metadata: the `restore.` metadata written into it.
        parity: the parity summary (None with verify=False); `export.verify.format_table` prints it.
        seconds: wall time of the whole call; export_seconds and verify_seconds split it.
        size_bytes: size of the written file.
    """

    path: Path
    metadata: ModelMetadata
    parity: Optional[Dict[str, Any]]
    seconds: float
    size_bytes: int
    export_seconds: float = 0.0
    verify_seconds: float = 0.0

    @property
    def table(self) -> str:
        return format_table(self.parity) if self.parity else "parity: skipped (--no-verify)"


def max_opset() -> int:
    """The newest opset the installed onnxscript can convert the exported graph to."""
    try:
        from onnxscript.version_converter._version_converter import SUPPORTED_MAX_ONNX_OPSET

        return int(SUPPORTED_MAX_ONNX_OPSET)
    except (ImportError, AttributeError):  # a layout we do not know: claim only what we tested
        return 23


def check_opset(opset: int) -> None:
    """Raise ExportError unless `opset` lies in [MIN_OPSET, max_opset()]."""
    top = max_opset()
    if not MIN_OPSET <= opset <= top:
        raise ExportError(f"opset {opset} is not supported; choose {MIN_OPSET} to {top} (the installed onnxscript's newest)")


# The suffix of the file each `restore-export` command writes, and what such a file is.
OUTPUT_SUFFIXES = {"onnx": (".onnx", "an ONNX graph"), "torchscript": (".pt", "a TorchScript module"),
                   "exported-program": (".pt2", "a torch.export program"), "weights": (".safetensors", "a release")}


def check_output_path(output: str | os.PathLike, force: bool, inputs: Iterable[str | os.PathLike] = (),
                      kind: Optional[str] = None, option: str = "--output") -> Path:
    """Fail fast, before a slow export, on an output that cannot or must not be written.

    `restore_toolkit.targets.check_file` decides (an empty path, a folder, one of `inputs` even
    with `force`, an existing file without `force`, a folder that cannot be written); `kind`
    (a key of `OUTPUT_SUFFIXES`) also asks for the suffix of the file that command writes.

    Raises:
        ExportError: the reason, naming `option` and the path.
    """
    from restore_toolkit.targets import TargetError, check_file

    try:
        path = check_file(output, option, overwrite=force, inputs=inputs)
    except TargetError as e:
        raise ExportError(str(e)) from None
    if kind is not None:
        suffix, what = OUTPUT_SUFFIXES[kind]
        if path.suffix.lower() != suffix:
            raise ExportError(f"{option} {path}: {what} is a {suffix} file; give a name ending in {suffix}")
    return path


def export_onnx(pipeline: RestorationPipeline, output: str | os.PathLike, *, signature: str = "pixels",
                opset: int = DEFAULT_OPSET, fp16: bool = False, verify: bool = True,
                force: bool = False) -> ExportResult:
    """Export `pipeline` to one ONNX file, verify the written file against eager, then rename it.

    The file is written beside `output` under a temporary name; parity runs on that file, the
    measured summary goes into its metadata, and only then is it renamed into place. On any
    failure (export, checker, parity) nothing is left at `output` and an existing file there
    is untouched.

    Args:
        pipeline: the model with its pre/post-processing, eval mode, on the CPU.
        output: the `.onnx` file to write.
        signature: "pixels" (uint8 NHWC) or "tensor" (float32 NCHW in [-1, 1]).
        opset: ONNX opset, `MIN_OPSET` up to `max_opset()`.
        fp16: half-precision weights and compute inside; the interface keeps its dtypes.
        verify: run the parity check (False writes parity "skipped" into the metadata).
        force: overwrite an existing file.

    Raises:
        ExportError: a bad opset or output path, a failed export, or failed parity (with the table).
    """
    import time

    t0 = time.perf_counter()
    if signature not in SIGNATURES:
        raise ExportError(f"unknown signature {signature!r}; choose {' or '.join(SIGNATURES)}")
    check_opset(opset)
    output = check_output_path(output, force)
    precision = "fp16" if fp16 else "fp32"
    pipeline = pipeline.cpu().eval()

    proto = to_onnx_proto(pipeline, signature, opset)
    if fp16:
        from export.fp16 import convert_to_fp16

        try:
            proto = convert_to_fp16(proto)
        except Exception as e:
            raise ExportError(f"fp16 conversion failed: {one_line(e)}") from e
    t_export = time.perf_counter() - t0

    # Hashes the weights once; the parity figures are filled in after they are measured.
    metadata = build_metadata(pipeline, signature, precision, parity=None)
    with atomic_path(output) as tmp:
        # First write: what parity runs on. Metadata says "skipped" until the figures exist.
        save_onnx(proto, tmp, metadata)
        t1 = time.perf_counter()
        if verify:
            parity = verify_onnx(tmp, pipeline, precision)  # raises ParityError with the table
            # Second write: the same graph, now carrying the figures measured on it.
            metadata = dataclasses.replace(metadata, parity=parity)
            save_onnx(proto, tmp, metadata)
        t_verify = time.perf_counter() - t1
    return ExportResult(path=output, metadata=metadata, parity=metadata.parity, seconds=time.perf_counter() - t0,
                        size_bytes=output.stat().st_size, export_seconds=t_export, verify_seconds=t_verify)
