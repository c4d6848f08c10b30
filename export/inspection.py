"""What is inside one of our artifacts: metadata, I/O signature, parity measured at export.

Handles every file the project writes: ONNX graphs (`.onnx`), TorchScript (`.pt`), exported
programs (`.pt2`), training checkpoints (`.ckpt`) and released weights (`.safetensors`). A file
that is not ours is refused with one line naming it; so is an ONNX file whose external data
points outside its folder (its metadata is read without loading any weights) or is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List

from runtime.metadata import ModelFileError, ModelMetadata

KINDS = {".onnx": "onnx", ".pt": "torchscript", ".pt2": "exported-program", ".ckpt": "checkpoint",
         ".safetensors": "release"}

# The I/O of each signature in words, for artifacts that do not describe their own (TorchScript).
_SIGNATURE_IO = {
    "pixels": {
        "inputs": [{"name": "image", "dtype": "uint8", "shape": ["batch", "height", "width", 3]}],
        "outputs": [{"name": "restored", "dtype": "uint8", "shape": ["batch", "height", "width", 3]},
                    {"name": "mask", "dtype": "uint8", "shape": ["batch", "height", "width", 1]},
                    {"name": "predicted", "dtype": "uint8", "shape": ["batch", "height", "width", 3]}],
    },
    "tensor": {
        "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, "height", "width"]}],
        "outputs": [{"name": "predicted", "dtype": "float32", "shape": ["batch", 3, "height", "width"]},
                    {"name": "mask_prob", "dtype": "float32", "shape": ["batch", 1, "height", "width"]},
                    {"name": "composite", "dtype": "float32", "shape": ["batch", 3, "height", "width"]}],
    },
}


def describe(path: str | os.PathLike) -> Dict[str, Any]:
    """Describe one of our artifacts.

    Args:
        path: an `.onnx`, `.pt`, `.pt2`, `.ckpt` or `.safetensors` file written by this project.

    Returns:
        A dict with at least `path`, `kind`, `size_bytes`; model files add `metadata` (the
        `restore.` fields), `inputs` and `outputs`; weights files add `model_config`,
        `threshold`, `flip_ensemble`, `parameters` and `weights_sha256`, releases `averaged_from` and
        `mask_offset` where `restore-export weights` averaged or calibrated them.

    Raises:
        ModelFileError: the file is missing, of an unknown kind, not ours, or unsafe (ONNX
            external data outside its folder).
        CheckpointError: a `.ckpt` / `.safetensors` that is not a readable restore file.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give a file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ModelFileError(f"{path}: not a restore artifact (expected one of {', '.join(KINDS)})")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: empty file (0 bytes)")
    info: Dict[str, Any] = {"path": str(path), "kind": kind, "size_bytes": path.stat().st_size}
    if kind == "onnx":
        info.update(_describe_onnx(path))
    elif kind == "torchscript":
        from export.torchscript import load_torchscript

        _, meta = load_torchscript(path)
        info.update(_from_metadata(meta))
        info["methods"] = {"forward": "pixels", "forward_tensor": "tensor"}
    elif kind == "exported-program":
        from export.torchscript import load_exported_program

        _, meta = load_exported_program(path)
        info.update(_from_metadata(meta))
    else:
        info.update(_describe_weights(path))
    return info


def _from_metadata(meta: ModelMetadata) -> Dict[str, Any]:
    io = _SIGNATURE_IO.get(meta.signature, {"inputs": [], "outputs": []})
    return {"metadata": asdict(meta), "inputs": io["inputs"], "outputs": io["outputs"]}


def _describe_onnx(path: Path) -> Dict[str, Any]:
    import onnx

    from runtime.metadata import read_metadata

    meta = read_metadata(path)  # refuses non-ours, and external data unsafe or missing, before anything else
    proto = onnx.load(str(path), load_external_data=False)

    def values(vs) -> List[Dict[str, Any]]:
        out = []
        for v in vs:
            t = v.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            shape = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "dtype": dtype, "shape": shape})
        return out

    return {
        "metadata": asdict(meta),
        "inputs": values(proto.graph.input),
        "outputs": values(proto.graph.output),
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
    }


def _describe_weights(path: Path) -> Dict[str, Any]:
    from restore_core.checkpoint import load_checkpoint, load_model, release_mask_offset, weights_sha256
    from restore_core.model import count_parameters

    loaded = load_model(path)  # CheckpointError names the file for anything not ours
    info: Dict[str, Any] = {
        "model_config": asdict(loaded.config),
        "threshold": loaded.threshold,
        "flip_ensemble": loaded.flip_ensemble,
        "mask_opening": loaded.mask_opening,
        "parameters": count_parameters(loaded.model),
        "weights_sha256": weights_sha256(loaded.model),
    }
    if path.suffix.lower() == ".ckpt":
        state = load_checkpoint(path)
        # Training progress, whichever of these the trainer recorded.
        info["training"] = {k: state[k] for k in ("epoch", "step", "best_metric", "best_val_loss") if k in state}
    else:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:  # readable: load_model has just read it
            meta = f.metadata() or {}
        # How the release was made (`restore-export weights`): averaged, calibrated.
        if "restore.averaged_from" in meta:
            info["averaged_from"] = [s["file"] for s in json.loads(meta["restore.averaged_from"])]
        if "restore.mask_offset" in meta:
            info["mask_offset"] = release_mask_offset(path)
    return info


def _metadata_lines(meta: Dict[str, Any]) -> List[str]:
    """Our metadata's fields, one a line (the int8 record is shown readably apart)."""
    keys = ("signature", "layout", "color_order", "precision", "threshold", "stride", "pads_inside",
            "weights_sha256", "format_version", "model_config", "exporter")
    return ([f"  {key}: {meta[key]}" for key in keys]
            + [f"  {k}: {v}" for k, v in sorted(meta.get("extra", {}).items()) if k != "int8"])


def _info_lines(info: Dict[str, Any], has_metadata: bool) -> List[str]:
    """The fields read from the file itself, less those the metadata already showed."""
    shown = ("model_config", "threshold", "weights_sha256") if has_metadata else ()
    keys = ("opset", "producer", "model_config", "threshold", "flip_ensemble", "mask_opening", "parameters", "weights_sha256",
            "training", "methods", "averaged_from", "mask_offset")
    return [f"  {key}: {info[key]}" for key in keys if key in info and key not in shown]


def format_description(info: Dict[str, Any]) -> str:
    """Readable text for `restore-export inspect`: fields, I/O table, parity table."""
    lines = [f"{info['path']}: {info['kind']}, {info['size_bytes'] / 1e6:.2f} MB"]
    meta = info.get("metadata")
    lines += (_metadata_lines(meta) if meta else []) + _info_lines(info, bool(meta))
    for side in ("inputs", "outputs"):
        for v in info.get(side, []):
            shape = "[" + ", ".join(str(d) for d in v["shape"]) + "]"
            lines.append(f"  {side[:-1]:6s} {v['name']:10s} {v['dtype']:8s} {shape}")
    if meta:
        if meta.get("parity"):
            from export.parity import format_table

            if meta.get("precision") == "int8":
                lines.append("  parity of the fp32 graph this int8 graph was quantized from:")
            lines.append(format_table(meta["parity"]))
        else:
            lines.append("  parity: skipped at export")
        int8 = meta.get("extra", {}).get("int8")
        if int8:
            from export.int8_report import format_int8, int8_summary

            lines.append(format_int8(int8_summary(meta["extra"])))
    return "\n".join(lines)
