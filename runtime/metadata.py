"""The `restore.` metadata contract of our ONNX graphs, read without PyTorch.

Every exported graph carries these keys in `metadata_props`; the runtime, the inspect command
and the non-Python examples read them to know what a file expects. The key names and the
format version live here, once; the exporter imports them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

FORMAT_VERSION = "1"
PREFIX = "restore."

# Key names (without the prefix) and what they hold.
KEYS = {
    "format_version": "version of this metadata contract; readers refuse versions they do not know",
    "signature": "'pixels' (uint8 NHWC in and out) or 'tensor' (float32 NCHW in [-1, 1])",
    "layout": "'NHWC' for pixels, 'NCHW' for tensor",
    "color_order": "'RGB'",
    "threshold": "mask probability at or above which a pixel is replaced",
    "stride": "the network's stride; the graph pads to a multiple of it internally",
    "pads_inside": "'true' when any H and W are accepted (padding is inside the graph)",
    "precision": "'fp32', 'fp16' or 'int8' (compute inside; the interface keeps its dtypes)",
    "model_config": "JSON of the model's config",
    "weights_sha256": "SHA-256 of the state dict, identifies the weights",
    "exporter": "JSON of the torch / onnx / onnxscript versions that wrote the file",
    "parity": "JSON summary of the parity check run at export, or 'skipped'",
}


# The "pixels" signature's inputs and outputs: the one place their names are spelled. Each is
# uint8 NHWC with this many channels on the last axis.
PIXELS_INPUTS = ("image",)
PIXELS_OUTPUTS = ("restored", "mask", "predicted")
PIXELS_CHANNELS = {"image": 3, "restored": 3, "mask": 1, "predicted": 3}


class ModelFileError(ValueError):
    """A model file that is not ours, of an unknown version, or unsafe to load."""


@dataclass
class ModelMetadata:
    """The parsed `restore.` metadata of one model file."""

    format_version: str
    signature: str
    layout: str
    color_order: str
    threshold: float
    stride: int
    pads_inside: bool
    precision: str
    model_config: Dict[str, Any]
    weights_sha256: str
    exporter: Dict[str, Any]
    parity: Optional[Dict[str, Any]]  # None when the export skipped verification
    extra: Dict[str, str] = field(default_factory=dict)  # other restore.* keys, kept verbatim

    @classmethod
    def from_props(cls, props: Dict[str, str], source: str = "model") -> "ModelMetadata":
        """Parse a metadata dict (full `restore.`-prefixed keys).

        Raises:
            ModelFileError: keys missing, or a format version this reader does not know.
        """
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelFileError(f"{source}: not a restore model (no '{PREFIX}*' metadata)")
        if ours.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(
                f"{source}: unknown restore format version {ours.get('format_version')!r} "
                f"(this reader knows {FORMAT_VERSION})"
            )
        missing = [k for k in KEYS if k not in ours]
        if missing:
            raise ModelFileError(f"{source}: restore metadata lacks {', '.join(missing)}")
        try:
            parity = None if ours["parity"] == "skipped" else json.loads(ours["parity"])
            return cls(
                format_version=ours["format_version"],
                signature=ours["signature"],
                layout=ours["layout"],
                color_order=ours["color_order"],
                threshold=float(ours["threshold"]),
                stride=int(ours["stride"]),
                pads_inside=ours["pads_inside"] == "true",
                precision=ours["precision"],
                model_config=json.loads(ours["model_config"]),
                weights_sha256=ours["weights_sha256"],
                exporter=json.loads(ours["exporter"]),
                parity=parity,
                extra={k: v for k, v in ours.items() if k not in KEYS},
            )
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{source}: malformed restore metadata ({e})") from None

    @property
    def mask_opening(self) -> int:
        """The side of the mask opening inside the graph (`RestorationPipeline`); 0 for none or
        for files written before the key existed. Raises ModelFileError when malformed."""
        value = self.extra.get("mask_opening", "0")
        if not value.isdigit() or (int(value) > 1 and int(value) % 2 == 0):
            raise ModelFileError(f"restore.mask_opening is {value!r}, not 0 or an odd side")
        return int(value)

    def to_props(self) -> Dict[str, str]:
        """The inverse of `from_props`: full keys, string values."""
        values = {
            "format_version": self.format_version,
            "signature": self.signature,
            "layout": self.layout,
            "color_order": self.color_order,
            "threshold": repr(float(self.threshold)),
            "stride": str(self.stride),
            "pads_inside": "true" if self.pads_inside else "false",
            "precision": self.precision,
            "model_config": json.dumps(self.model_config, sort_keys=True),
            "weights_sha256": self.weights_sha256,
            "exporter": json.dumps(self.exporter, sort_keys=True),
            "parity": "skipped" if self.parity is None else json.dumps(self.parity, sort_keys=True),
            **self.extra,
        }
        return {PREFIX + k: v for k, v in values.items()}


def check_external_data(model_proto, model_path: str | os.PathLike) -> None:
    """Refuse initializers stored outside the model's own folder (path traversal, absolute paths),
    and those whose data file is missing or too short (the weights are not there: no runtime
    could load the graph, and ONNX Runtime would say so far less plainly).

    Our exporter writes self-contained files; a file that points elsewhere could make a loader
    read arbitrary files on the machine.
    """
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = Path(model_path).resolve().parent
    for tensor in _all_tensors(model_proto):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        target = (folder / info.location).resolve()
        if os.path.isabs(info.location) or folder not in target.parents:
            raise ModelFileError(
                f"{model_path}: refused, tensor {tensor.name!r} keeps its data outside the model's folder ({info.location})"
            )
        if not target.is_file():
            raise ModelFileError(f"{model_path}: its weights are not there: tensor {tensor.name!r} keeps its data in "
                                 f"{info.location}, which is missing")
        needed = (info.offset or 0) + (info.length or 0)
        if target.stat().st_size < needed:
            raise ModelFileError(f"{model_path}: its weights are not all there: {info.location} holds "
                                 f"{target.stat().st_size} bytes, tensor {tensor.name!r} needs {needed}")


def _all_tensors(model_proto):
    from onnx.external_data_helper import _get_all_tensors

    return _get_all_tensors(model_proto)


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Read and validate the `restore.` metadata of an ONNX file without loading its weights.

    Raises:
        ModelFileError: unreadable, not ours, unknown version, or external data outside its folder or missing.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError, truncated file, ...
        raise ModelFileError(f"{path}: not a readable ONNX file ({type(e).__name__})") from None
    check_external_data(proto, path)
    props = {p.key: p.value for p in proto.metadata_props}
    return ModelMetadata.from_props(props, source=str(path))


def _describe_arg(arg) -> str:
    dims = ", ".join(str(d) if isinstance(d, int) else "?" for d in (arg.shape or []))
    return f"{arg.type.replace('tensor(', '').rstrip(')')} [{dims}]"


def _arg_problem(arg, channels: int) -> Optional[str]:
    """Why one graph input or output does not fit the pixels contract, or None."""
    shape = arg.shape or []
    last = shape[-1] if shape else None
    if arg.type != "tensor(uint8)" or len(shape) != 4 or (isinstance(last, int) and last != channels):
        return f"'{arg.name}' is {_describe_arg(arg)}, expected uint8 [N, H, W, {channels}]"
    return None


def check_pixels_io(inputs, outputs, source: str) -> None:
    """Refuse a graph whose inputs and outputs are not the pixels contract, before any image runs.

    Copied `restore.*` metadata is easy to put on a foreign graph; what the graph really takes
    and returns is checked here, by name, type and rank, so such a file fails at load with one
    line instead of on every image.

    Args:
        inputs, outputs: ONNX Runtime's `session.get_inputs()` / `get_outputs()` (name, type, shape).
        source: the model's path, for the message.

    Raises:
        ModelFileError: naming every difference from the contract.
    """
    problems = _pixels_io_problems(inputs, outputs)
    if problems:
        raise ModelFileError(f"{source}: not a pixels graph as this runner needs: {'; '.join(problems)}")


def _pixels_io_problems(inputs, outputs) -> list:
    """Every difference of (inputs, outputs) from the pixels contract, one phrase each."""
    problems = []
    names = [i.name for i in inputs]
    if names != list(PIXELS_INPUTS):
        problems.append(f"inputs are {names}, expected {list(PIXELS_INPUTS)}")
    by_name = {o.name: o for o in outputs}
    missing = [n for n in PIXELS_OUTPUTS if n not in by_name]
    if missing:
        problems.append(f"outputs lack {', '.join(repr(n) for n in missing)} (it has {[o.name for o in outputs]})")
    for arg in [i for i in inputs if i.name in PIXELS_CHANNELS] + [by_name[n] for n in PIXELS_OUTPUTS if n in by_name]:
        problem = _arg_problem(arg, PIXELS_CHANNELS[arg.name])
        if problem:
            problems.append(problem)
    return problems
