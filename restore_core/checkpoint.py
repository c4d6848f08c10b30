"""Checkpoints (resume training) and released weights (`.safetensors`), loaded safely.

A training checkpoint is a plain dict of tensors and Python primitives, written atomically and
read back with `torch.load(weights_only=True)` and no pickle fallback: a file that needs code
to unpickle is refused. A released model is a `.safetensors` file whose metadata carries the
model config and threshold, so any artifact can rebuild its model without guessing.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch

from restore_core.fileio import atomic_path
from restore_core.model import DualDecoderUNet, ModelConfig
from restore_core.pipeline import DEFAULT_THRESHOLD, RestorationPipeline, check_mask_opening
from restore_toolkit.messages import one_line

CHECKPOINT_FORMAT = "restore-checkpoint"
RELEASE_FORMAT = "restore-release"
FORMAT_VERSION = 1

# The word that names the model shipped inside the package (MODEL_CARD.md) wherever a
# checkpoint is asked for: `--checkpoint default`, `load_model("default")`.
DEFAULT_MODEL = "default"
SHIPPED_WEIGHTS = Path(__file__).parent / "assets" / "default.safetensors"


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be used; the message names the file."""


def resolve_weights(path: str | os.PathLike) -> Path:
    """`path` as a Path, with the word `default` standing for the shipped weights."""
    if str(path) != DEFAULT_MODEL:
        return Path(path)
    if not SHIPPED_WEIGHTS.is_file():
        raise CheckpointError(f"{SHIPPED_WEIGHTS}: the default model's weights are not installed with this package")
    return SHIPPED_WEIGHTS


# ---------------------------------------------------------------------------------------------
# Training checkpoints.


def save_checkpoint(state: Dict[str, Any], path: str | os.PathLike) -> None:
    """Write a checkpoint dict atomically. It must hold `model` and `model_config` at least."""
    if "model" not in state or "model_config" not in state:
        raise ValueError("a checkpoint needs 'model' (state dict) and 'model_config'")
    state = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything else.

    Raises:
        CheckpointError: missing, a folder, empty, another kind of file (named: an image, an ONNX
            graph, a release, a TorchScript module), truncated, foreign, or pickled with code.
    """
    path = Path(path)
    _check_readable(path, "checkpoint")
    kind = sniff_kind(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path}: not a checkpoint: it is a safetensors file; name it .safetensors")
    if kind is not None:
        raise CheckpointError(f"{path}: not a checkpoint: it is {kind}")
    try:
        # torch.load warns (UserWarning, FutureWarning) about the very files it then refuses; our
        # one-line error below says all there is to say, so its warnings are not shown.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know: code, custom classes, lambdas.
        raise CheckpointError(f"{path}: refused, {_refusal_reason(e)}; only checkpoints written by restore-train load") from None
    except Exception as e:  # truncated zip, not a zip, wrong magic number, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({one_line(e, 160)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a restore checkpoint (no '{CHECKPOINT_FORMAT}' format marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format version {state.get('format_version')!r}")
    return state


def _check_readable(path: Path, what: str) -> None:
    """Refuse a missing path, a folder and an empty file, each in its own words."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a {what} file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")


# What a file that is not a checkpoint is, told by its first bytes (no parser needed).
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"RIFF", "a RIFF file (a WebP image or a sound)"), (b"%PDF", "a PDF document"))
# The tags that may follow ONNX's leading ir_version field (ModelProto fields 2 to 8, 14, 20, 25).
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def sniff_kind(path: Path) -> Optional[str]:
    """What `path` is when its first bytes say it is no checkpoint ("safetensors", "a PNG
    image", "an ONNX file", ...), or None (a zip or pickle torch may read, or unknown)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if len(head) >= 10 and head[8:9] == b"{":
        size = int.from_bytes(head[:8], "little")  # safetensors: header length, then its JSON
        if 0 < size < 100_000_000:
            return "safetensors"
    return "an ONNX file" if _looks_like_onnx(head) else None


def _looks_like_onnx(head: bytes) -> bool:
    """ONNX's ModelProto starts with ir_version (field 1, a varint), then one of its other fields."""
    if head[:1] != b"\x08":
        return False
    i = 1
    while i < len(head) and head[i] & 0x80:
        i += 1
    return i + 1 < len(head) and head[i + 1] in _ONNX_NEXT_TAGS


def _zip_kind(path: Path) -> Optional[str]:
    """A zip that torch writes but that holds no checkpoint: a TorchScript module or a torch.export program."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return None  # truncated: torch.load says so
    if any("/code/__torch__/" in n for n in names):
        return "a TorchScript module (.pt)"
    if any(n.endswith("/archive_format") for n in names):
        return "a torch.export program (.pt2)"
    return None


def _refusal_reason(error: BaseException) -> str:
    # PyTorch's message is a paragraph about its own defaults; the part a user needs is which
    # global the file wanted to load ('posix.system', 'builtins.eval', a custom class).
    match = re.search(r"GLOBAL ([\w.]+)", str(error))
    if match:
        return f"the file asks to load {match.group(1)}, which is code or an object, not weights"
    return f"the file holds more than weights ({one_line(error, 160, with_type=False)})"


# ---------------------------------------------------------------------------------------------
# Released weights.


def save_release(path: str | os.PathLike, model: DualDecoderUNet, threshold: float = DEFAULT_THRESHOLD,
                 extra: Dict[str, str] | None = None, flip_ensemble: bool = False, mask_opening: int = 0) -> None:
    """Write the model's weights as `.safetensors` with config, threshold and how to run it
    (`flip_ensemble`, `mask_opening`, see `RestorationPipeline`) in the metadata."""
    from safetensors.torch import save_file

    meta = {
        "restore.format": RELEASE_FORMAT,
        "restore.format_version": str(FORMAT_VERSION),
        "restore.model_config": model.cfg.to_json(),
        "restore.threshold": repr(float(threshold)),
        "restore.flip_ensemble": "true" if flip_ensemble else "false",
        "restore.mask_opening": str(int(mask_opening)),
        **(extra or {}),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


@dataclass
class LoadedModel:
    """A model rebuilt from a checkpoint or release, with what it was saved with."""

    model: DualDecoderUNet
    config: ModelConfig
    threshold: float
    source: Path
    flip_ensemble: bool = False  # releases say; training checkpoints run one view
    mask_opening: int = 0  # releases say (calibration chooses it); training checkpoints have none

    def pipeline(self) -> RestorationPipeline:
        return RestorationPipeline(self.model, self.threshold, self.flip_ensemble, self.mask_opening).eval()

    def describe(self) -> Dict[str, Any]:
        return {"source": str(self.source), "model_config": asdict(self.config), "threshold": self.threshold,
                "flip_ensemble": self.flip_ensemble, "mask_opening": self.mask_opening}


def _read_release(path: Path):
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({one_line(e, 160, with_type=False)})") from None
    if meta.get("restore.format") != RELEASE_FORMAT:
        raise CheckpointError(f"{path}: not a restore release (metadata lacks restore.format={RELEASE_FORMAT})")
    if meta.get("restore.format_version") != str(FORMAT_VERSION):
        raise CheckpointError(f"{path}: unsupported release format version {meta.get('restore.format_version')!r}")
    # Releases written before the key existed ran one view.
    flip = meta.get("restore.flip_ensemble", "false")
    if flip not in ("true", "false"):
        raise CheckpointError(f"{path}: restore.flip_ensemble is {flip!r}, not 'true' or 'false'")
    # Releases written before the key existed binarized without an opening.
    try:
        opening = check_mask_opening(int(meta.get("restore.mask_opening", "0")))
    except ValueError:
        raise CheckpointError(f"{path}: restore.mask_opening is {meta['restore.mask_opening']!r}, "
                              "not 0 or an odd side") from None
    threshold = _threshold(meta.get("restore.threshold", ""), path, "restore.threshold")
    return tensors, _release_config(meta, path), threshold, flip == "true", opening


def _release_config(meta: Dict[str, str], path: Path) -> Any:
    """The release's `restore.model_config`, parsed (ModelConfig checks its fields)."""
    if "restore.model_config" not in meta:
        raise CheckpointError(f"{path}: bad metadata (no restore.model_config)")
    try:
        return json.loads(meta["restore.model_config"])
    except ValueError as e:
        raise CheckpointError(f"{path}: bad metadata (restore.model_config is not JSON: {one_line(e, 80, with_type=False)})") from None


def _threshold(value: Any, path: Path, key: str = "threshold") -> float:
    """A saved mask threshold (`key`) as a float inside (0, 1), as `RestorationPipeline` needs it;
    None (a checkpoint that records none) is the default."""
    if value is None:
        return DEFAULT_THRESHOLD
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 < threshold < 1.0:  # NaN too
        raise CheckpointError(f"{path}: bad metadata ({key} is {value!r}, not a number inside (0, 1))")
    return threshold


def release_mask_offset(path: str | os.PathLike) -> float:
    """The mask offset already subtracted from a release's mask head (`restore-export weights
    --calibrate`), 0.0 for a training checkpoint or an uncalibrated release."""
    path = resolve_weights(path)
    if path.suffix.lower() != ".safetensors":
        return 0.0
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            value = (f.metadata() or {}).get("restore.mask_offset", "0")
        return float(value)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable restore.mask_offset ({one_line(e, 160, with_type=False)})") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu",
               flip_ensemble: Optional[bool] = None) -> LoadedModel:
    """Rebuild the model from a training checkpoint (`.ckpt`) or a release (`.safetensors`).

    The model is returned in eval mode on `device`.

    Args:
        path: the file, or `default` for the weights shipped with the package.
        flip_ensemble: how its pipeline runs; None keeps the file's setting (releases say,
            training checkpoints run one view).

    Raises:
        CheckpointError: the file is missing, foreign, unsafe, its metadata or entries are malformed
            (a model config that is not JSON, a threshold that is not a number inside (0, 1), no
            `model` entry), or its weights do not fit its config.
    """
    path = resolve_weights(path)
    if path.suffix.lower() == ".safetensors":
        _check_readable(path, "weights")
        state, cfg_dict, threshold, flip, opening = _read_release(path)
    else:
        flip, opening = False, 0
        state, cfg_dict, threshold = _checkpoint_model(path)
    try:
        cfg = ModelConfig.from_dict(cfg_dict)
    except (ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: bad model config ({e})") from None
    model = DualDecoderUNet(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: weights do not match the model config ({one_line(e, 160, with_type=False)})") from None
    return LoadedModel(model.to(device).eval(), cfg, threshold, path, flip if flip_ensemble is None else flip_ensemble,
                       opening)


def _checkpoint_model(path: Path):
    """A training checkpoint's weights, model config and threshold, each checked to be there."""
    ckpt = load_checkpoint(path)
    missing = [key for key in ("model", "model_config") if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: bad checkpoint (no {' or '.join(repr(k) for k in missing)} entry)")
    if not isinstance(ckpt["model"], dict) or not isinstance(ckpt["model_config"], dict):
        raise CheckpointError(f"{path}: bad checkpoint ('model' and 'model_config' must be dicts)")
    return ckpt["model"], ckpt["model_config"], _threshold(ckpt.get("threshold"), path)


def average_models(loaded: Sequence[LoadedModel]) -> LoadedModel:
    """The uniform average of several models' weights (a "model soup"), as one model.

    Runs fine-tuned from one starting point with different data or seeds lie in one basin of
    the loss, so the mean of their weights is itself a good model, often better than each.
    Floating tensors (BatchNorm's running statistics among them) are averaged in float32;
    integer buffers (BatchNorm's batch counters) are taken from the first model.

    Raises:
        CheckpointError: fewer than one model, or models with different configs, thresholds,
            flip_ensemble or mask_opening settings.
    """
    if not loaded:
        raise CheckpointError("nothing to average: no model given")
    first = loaded[0]
    for other in loaded[1:]:
        if other.config != first.config:
            raise CheckpointError(f"{other.source}: its model config differs from {first.source}'s; "
                                  "only models of one config can be averaged")
        if other.threshold != first.threshold:
            raise CheckpointError(f"{other.source}: threshold {other.threshold} differs from "
                                  f"{first.source}'s {first.threshold}")
        if other.flip_ensemble != first.flip_ensemble:
            raise CheckpointError(f"{other.source}: flip_ensemble {other.flip_ensemble} differs from "
                                  f"{first.source}'s {first.flip_ensemble}")
        if other.mask_opening != first.mask_opening:
            raise CheckpointError(f"{other.source}: mask_opening {other.mask_opening} differs from "
                                  f"{first.source}'s {first.mask_opening}")
    states = [m.model.state_dict() for m in loaded]
    mean = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            mean[key] = (torch.stack([s[key].float() for s in states]).mean(dim=0)).to(ref.dtype)
        else:
            mean[key] = ref.clone()
    model = DualDecoderUNet(first.config)
    model.load_state_dict(mean, strict=True)
    return LoadedModel(model.eval(), first.config, first.threshold, first.source, first.flip_ensemble,
                       first.mask_opening)


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict in key order: identifies the weights inside any artifact."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
