"""The model shipped inside the package, named `default` (see MODEL_CARD.md).

`restore-run` and `Restorer` use it when no model is named, and every option that names a model
accepts the word `default` for it. The graph here is exactly what `restore-export onnx
--checkpoint default` writes from the shipped weights (`restore_core/assets/default.safetensors`);
its `restore.weights_sha256` metadata proves which weights it holds. Torch-free.

Beside the fp32 graph the package may carry `default.int8.onnx` (`restore-export onnx
--checkpoint default --int8 --no-flip-ensemble`), shipped only when it met the quality bounds
below at export. On the CPU, `precision='auto'` picks it when it is there, holds the same weights
and its recorded deltas meet the bounds; `fp32` always takes the fp32 graph (`choose_model`).

The fp32 graph runs the flip ensemble (`RestorationPipeline`), the int8 graph one view: at
int8 the ensemble's gain does not survive quantization (MODEL_CARD.md), and one view keeps the
CPU path at twice the speed. Each graph's `restore.flip_ensemble` says which it is.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

DEFAULT_MODEL = "default"
ASSETS = Path(__file__).parent / "assets"
SHIPPED_ONNX = ASSETS / "default.onnx"
SHIPPED_INT8 = ASSETS / "default.int8.onnx"
SAMPLES = ASSETS / "samples"  # photos the default model never trained on, for restore-demo
PRECISIONS = ("auto", "fp32", "int8")
# Most an int8 graph may lose against its fp32 graph on the held-out set (the export's defaults).
INT8_MAX_IOU_DROP = 0.005
INT8_MAX_PSNR_DROP = 0.3  # dB, PSNR inside the true mask


@dataclass(frozen=True)
class Bounds:
    """How much quality an int8 graph may lose against its fp32 graph on the held-out set; the
    one test of it, used by the export, by `choose_model` and by the benchmark's quality flag."""

    max_iou_drop: float = INT8_MAX_IOU_DROP  # mask IoU (0..1)
    max_psnr_drop: float = INT8_MAX_PSNR_DROP  # dB, PSNR inside the true mask
    # The same on whole photos saved as JPEG (export/int8.py, "Whole photos"): None, the
    # default, records them without a bound; a graph exported before they were scored has none.
    max_whole_iou_drop: Optional[float] = None
    max_whole_psnr_drop: Optional[float] = None

    def holds(self, deltas: Dict[str, float]) -> bool:
        whole = ((self.max_whole_iou_drop, "whole_mask_iou_drop"), (self.max_whole_psnr_drop, "whole_psnr_inside_drop"))
        return (deltas["mask_iou_drop"] <= self.max_iou_drop and deltas["psnr_inside_drop"] <= self.max_psnr_drop
                and all(bound is None or deltas.get(key, float("inf")) <= bound for bound, key in whole)
                and deltas.get("changed_outside_mask", 0) == 0)


class DefaultModelMissing(FileNotFoundError):
    """The package was installed without its model files."""


def resolve_model(model: Optional[Union[str, os.PathLike, bytes]]) -> Union[Path, bytes]:
    """The ONNX file to load: `model` itself, or the shipped graph for None or the word `default`."""
    if isinstance(model, bytes):
        return model
    if model is None or str(model) == DEFAULT_MODEL:
        if not SHIPPED_ONNX.is_file():
            raise DefaultModelMissing(f"{SHIPPED_ONNX}: the default model is not installed with this package")
        return SHIPPED_ONNX
    return Path(model)


@functools.lru_cache(maxsize=1)
def shipped_weights() -> Optional[str]:
    """The SHA-256 of the shipped model's weights (every graph of them records it), or None when
    it is not installed or unreadable."""
    from runtime.metadata import ModelFileError, read_metadata

    try:
        return read_metadata(SHIPPED_ONNX).weights_sha256
    except ModelFileError:
        return None


def describe_model(model: Optional[Union[str, os.PathLike, bytes]], loaded: Optional[Union[Path, bytes]] = None) -> str:
    """How a run names its model on the console: `default (path)` or the path given.

    `loaded` is the graph actually loaded (`choose_model`), when it may differ from the fp32 one."""
    if isinstance(model, bytes):
        return "<in-memory model>"
    if model is None or str(model) == DEFAULT_MODEL:
        return f"default ({loaded if isinstance(loaded, Path) else SHIPPED_ONNX})"
    return str(model)


def int8_problem(int8: Path, fp32: Optional[Path] = None, fp32_meta=None) -> Optional[str]:
    """Why the int8 graph `int8` may not stand in for its fp32 graph, or None when it may.

    It must be ours, say precision int8, carry the export's held-out deltas within the bounds,
    and (when `fp32` is given) hold the same weights as the fp32 graph; `fp32_meta` is that
    graph's metadata where the caller has already read it.
    """
    from runtime.metadata import ModelFileError, read_metadata

    try:
        meta = read_metadata(int8)
        report = json.loads(meta.extra.get("int8", "null"))
        if meta.precision != "int8" or not isinstance(report, dict):
            return f"{int8.name} is not an int8 graph with recorded quality"
        d = report["deltas"]
        if "changed_outside_mask" not in d or not Bounds().holds(d):
            return (f"{int8.name} misses the quality bounds (mask IoU drop {d['mask_iou_drop']:.4f}, "
                    f"PSNR-in-mask drop {d['psnr_inside_drop']:.3f} dB)")
        if fp32_meta is None and fp32 is not None and fp32.is_file():
            fp32_meta = read_metadata(fp32)
        if fp32_meta is not None and fp32_meta.weights_sha256 != meta.weights_sha256:
            return f"{int8.name} holds other weights than {fp32.name if fp32 else 'its fp32 graph'}"
    except (ModelFileError, ValueError, KeyError, TypeError) as e:
        return f"{int8.name} unreadable ({e})"
    return None


def choose_model(model: Optional[Union[str, os.PathLike, bytes]], precision: str = "auto",
                 cpu: bool = True) -> Tuple[Union[Path, bytes], str]:
    """The graph a run loads and one line saying why: `resolve_model` plus the precision choice.

    Args:
        model: a path, bytes, or None / `default` for the shipped model.
        precision: 'auto' (the shipped int8 graph on the CPU when it meets the bounds, else
            fp32), 'fp32' or 'int8' (an error when the shipped int8 graph is missing or fails
            the bounds). For a file the user names, its own precision; 'fp32' / 'int8' must match it.
        cpu: whether the session will run on the CPU (int8 QDQ graphs are a CPU path).

    Raises:
        ValueError: an unknown precision.
        ModelFileError: a precision the named file or the package cannot serve.
        DefaultModelMissing: no shipped fp32 graph.
    """
    from runtime.metadata import ModelFileError, read_metadata

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if isinstance(model, bytes) or not (model is None or str(model) == DEFAULT_MODEL):
        path = resolve_model(model)
        if precision != "auto" and not isinstance(path, bytes):
            have = read_metadata(path).precision
            if have != precision:
                raise ModelFileError(f"{path} is a {have} graph; --precision {precision} needs a {precision} one "
                                 f"(or use --precision auto)")
        return path, ""
    fp32 = resolve_model(None)
    fp32_meta = read_metadata(fp32)  # once: for the choice line and the int8 graph's weights check
    f32 = f"fp32{_views(fp32_meta)}"
    if precision == "fp32":
        return fp32, f"{f32} (asked for)"
    problem = None if SHIPPED_INT8.is_file() else "no int8 graph is shipped"
    problem = problem or int8_problem(SHIPPED_INT8, fp32, fp32_meta)
    if precision == "int8":
        if problem:
            raise ModelFileError(f"--precision int8: {problem}")
        return SHIPPED_INT8, f"int8{_views(read_metadata(SHIPPED_INT8))} (asked for)"
    if not cpu:
        return fp32, f"{f32} (int8 is the CPU path)"
    if problem:
        return fp32, f"{f32} ({problem})"
    return SHIPPED_INT8, (f"int8{_views(read_metadata(SHIPPED_INT8))} (fastest shipped CPU graph within the quality bounds; "
                          f"--precision fp32 runs the {f32} graph)")


def _views(meta) -> str:
    """', flip ensemble' or ', one view': how a graph runs the network, from its metadata."""
    return ", flip ensemble" if meta.extra.get("flip_ensemble") == "true" else ", one view"
