"""Training configuration: dataclasses with the reference design's values, read from TOML.

The dataclass defaults are the single source of truth; `configs/default.toml` lists the same
values for people to copy and edit (a test keeps the two equal), so the package works when
installed without the file. Every key is checked: an unknown key or a value of the wrong type
is an error that names the key.
"""

from __future__ import annotations

import math
import os
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from restore_core.degrade import DegradeConfig
from restore_core.losses import LX_REDUCTIONS
from restore_core.model import ModelConfig
from restore_core.photos import ZOOM
from restore_toolkit.corruption import CorruptionConfig

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key."""


@dataclass
class DataConfig:
    """Where training data comes from.

    Attributes:
        root: a dataset root in the reference design's layout (ROOT/{train,val}/{clean,corrupted,mask});
            unset: synthesize samples on the fly from `source` (endless variety, no disk).
        source: folder of clean images for on-the-fly synthesis; unset: scikit-image's photos.
        size: side of the square training crops (a multiple of the model's stride).
        epoch_samples: on-the-fly samples per epoch.
        val_count: on-the-fly validation samples (fixed, from photos held out of training).
        num_workers: DataLoader worker processes.
        augment: random crops, flips, rotations (and colour changes for on-the-fly data).
        grey_photos: also train on scikit-image's grey photos and textures (bundled source only).
        scenes: share of on-the-fly samples that are procedural man-made scenes (0: none).
        sky: share of those scenes that are mostly open sky (smooth, almost flat, no hard edge).
        jpeg: share of on-the-fly photo crops re-compressed as JPEG (quality 40-95).
        vivid: share of on-the-fly photo crops made vivid: saturation raised until colours clip.
        hue: share of on-the-fly photo crops turned to a random hue (about the grey axis).
        degraded: share of on-the-fly samples saved as a user's file is after painting (the
            `[degrade]` chain: resize, noise, JPEG or WebP); the rest stay exact, as PNGs are.
        unpainted: share of on-the-fly samples with nothing painted (an empty mask): most photos
            a user restores hold no damage, and the model must leave them alone.
        zoom: (min, max) side of the source window of an on-the-fly photo crop as a multiple of
            `size`, drawn log-uniform: below 1 the photo is scaled up, as a camera-size photo's
            pixels are smooth next to a small photo's; above 1 scaled down.
    """

    root: Optional[str] = None
    source: Optional[str] = None
    size: int = 96
    epoch_samples: int = 4096
    val_count: int = 64
    num_workers: int = 2
    augment: bool = True
    grey_photos: bool = False
    scenes: float = 0.0
    sky: float = 0.0
    jpeg: float = 0.0
    vivid: float = 0.0
    hue: float = 0.0
    degraded: float = 0.0
    unpainted: float = 0.0
    zoom: Tuple[float, float] = ZOOM


@dataclass
class TrainConfig:
    """Optimization, schedule, devices and bookkeeping.

    Attributes:
        epochs, batch_size, lr: the reference design's values (25, 16, 3e-4).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up, then cosine decay to `min_lr_ratio * lr` at the last step.
        grad_clip: max gradient norm; 0 turns clipping off.
        max_steps: stop after this many optimizer steps (0: no limit). The schedule still spans
            all epochs, so a run stopped early and resumed follows the same learning rates.
        max_minutes: stop after this many minutes of training (0: no limit; validation and
            saving are not counted). The cosine decay then runs on the clock as well as the
            steps, whichever is further along, so a run on hardware of unknown speed still ends
            its schedule at the limit; `epochs` only bounds it from above.
        patience: early stopping after this many epochs without a better validation loss
            (0: off); `min_delta` is the improvement that counts.
        device: auto (CUDA when usable), cpu or cuda.
        precision: auto (CUDA: bf16 if supported, else fp16 with a grad scaler; CPU: fp32),
            fp32, bf16 (autocast; about 2x faster on CPUs with native bf16) or fp16 (CUDA only).
        channels_last: NHWC memory format (faster convolutions on CUDA and on this CPU).
        seed: seeds weights, data order, augmentation and corruption.
        save_dir: where last.ckpt, best.ckpt, best.safetensors and train_log.jsonl go.
        resume: a last.ckpt to continue from exactly.
        init: weights to start from (a .ckpt, a .safetensors release, or `default` for the
            shipped model) with a fresh optimizer and schedule: fine-tuning. The model config
            must match. Ignored when `resume` is set (the resumed checkpoint has the weights).
        lx_reduction: how Lx is reduced over a batch, "pixels" or "images" (`losses.py`).
        threshold: mask binarization threshold stored with the model (the reference design's 0.1).
        checkpoint_every: also write last.ckpt every this many steps (0: at epoch ends only).
        log_every: steps between JSON-lines log records.
        progress: show a progress bar.
        threads: CPU threads for torch (0: torch's default, one per core). On a busy machine
            fewer threads than cores can be many times faster than oversubscribing them.
    """

    epochs: int = 25
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    max_steps: int = 0
    max_minutes: float = 0.0
    patience: int = 5
    min_delta: float = 0.0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    seed: int = 0
    save_dir: str = "checkpoints"
    resume: Optional[str] = None
    init: Optional[str] = None
    lx_reduction: str = "pixels"
    threshold: float = 0.1
    checkpoint_every: int = 500
    log_every: int = 10
    progress: bool = True
    threads: int = 0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# Type checking against the dataclass annotations.

# Scalar type -> (accepts this value, what the error says it must be).
_SCALARS = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def optional_of(hint: Any) -> Any:
    """X for Optional[X], else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        return [a for a in args if a is not type(None)][0]
    return None


def _check_sequence(value: Any, hint: Any, key: str) -> tuple:
    """A TOML array checked against Tuple[X, ...], Tuple[X, Y] or List[X]."""
    args = typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
    if typing.get_origin(hint) is list or (len(args) == 2 and args[1] is Ellipsis):
        return tuple(check_value(v, args[0], key) for v in value)
    if len(value) != len(args):
        raise ConfigError(f"config key '{key}' must be a list of {len(args)} values, got {list(value)!r}")
    return tuple(check_value(v, a, key) for v, a in zip(value, args))


def check_value(value: Any, hint: Any, key: str) -> Any:
    """Return `value` converted to `hint`'s type, or raise ConfigError naming `key`."""
    inner = optional_of(hint)
    if inner is not None:
        return None if value is None else check_value(value, inner, key)
    if hint in _SCALARS:
        accepts, must_be = _SCALARS[hint]
        if not accepts(value):
            raise ConfigError(f"config key '{key}' must be {must_be}, got {value!r}")
        return float(value) if hint is float else value
    if typing.get_origin(hint) in (tuple, list):
        return _check_sequence(value, hint, key)
    raise TypeError(f"unsupported config type {hint} for {key}")  # a programming error


def _section_from_dict(name: str, d: Dict[str, Any]):
    factory = SECTIONS[name]
    default = factory()
    hints = typing.get_type_hints(type(default))
    if not isinstance(d, dict):
        raise ConfigError(f"config key '{name}' must be a table ([{name}]), got {d!r}")
    values = {}
    for k, v in d.items():
        if k not in hints:
            raise ConfigError(f"unknown config key '{name}.{k}' (known: {', '.join(sorted(hints))})")
        values[k] = check_value(v, hints[k], f"{name}.{k}")
    try:
        return replace(default, **values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config section '{name}': {e}") from None


def config_from_dict(d: Dict[str, Any]) -> Config:
    """Build a checked `Config` from nested dicts (a TOML file, a checkpoint's 'config')."""
    unknown = sorted(set(d) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section '{unknown[0]}' (known: {', '.join(SECTIONS)})")
    cfg = Config(**{name: _section_from_dict(name, d.get(name, {})) for name in SECTIONS})
    validate(cfg)
    return cfg


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """Nested dicts of plain values (tuples as lists), safe for JSON and weights_only checkpoints."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {name: plain(asdict(getattr(cfg, name))) for name in SECTIONS}


def load_config(path: str | os.PathLike | None) -> Config:
    """Read a TOML config; None gives the defaults (the values of configs/default.toml).

    Raises:
        ConfigError: missing file, bad TOML, unknown key, wrong type or out-of-range value;
            the message names the file and the key.
    """
    if path is None:
        return Config()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError as e:  # a PNG or other binary file given as --config
        raise ConfigError(f"{path}: not a TOML text file (not UTF-8: byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start})") from None
    try:
        return config_from_dict(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def config_keys() -> Dict[str, Any]:
    """Every key a config can set, 'section.name' -> its type annotation, in declaration order.

    Read from the dataclasses, so a field added to one is settable (TOML, `--set`) at once.
    """
    keys = {}
    for name, factory in SECTIONS.items():
        cls = type(factory())
        hints = typing.get_type_hints(cls)
        keys.update({f"{name}.{f.name}": hints[f.name] for f in fields(cls)})
    return keys


def unknown_key(key: str) -> str:
    section = key.partition(".")[0]
    if section not in SECTIONS:
        return f"unknown config key '{key}' (sections: {', '.join(SECTIONS)})"
    known = [k.partition(".")[2] for k in config_keys() if k.startswith(section + ".")]
    return f"unknown config key '{key}' (known in [{section}]: {', '.join(known)})"


def apply_overrides(cfg: Config, overrides: Dict[str, Any]) -> Config:
    """Return a copy of `cfg` with dotted keys ('train.lr') replaced; None values are skipped."""
    d = config_to_dict(cfg)
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.partition(".")
        if section not in d or name not in d[section]:
            raise ConfigError(unknown_key(key))
        d[section][name] = value
    return config_from_dict(d)


def validate(cfg: Config) -> None:
    """Range checks that span keys; raises ConfigError naming the key."""
    t, dcfg, m = cfg.train, cfg.data, cfg.model

    def need(ok: bool, key: str, msg: str):
        if not ok:
            raise ConfigError(f"config key '{key}' {msg}")

    try:
        ModelConfig.from_dict(asdict(m))
    except ValueError as e:
        raise ConfigError(f"config section 'model': {e}") from None
    need(t.epochs >= 1, "train.epochs", f"must be at least 1, got {t.epochs}")
    need(t.batch_size >= 1, "train.batch_size", f"must be at least 1, got {t.batch_size}")
    need(t.lr > 0 and math.isfinite(t.lr), "train.lr", f"must be a positive finite number, got {t.lr}")
    need(0 <= t.seed < 2**63, "train.seed", f"must lie in [0, 2**63), got {t.seed}")
    need(t.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    need(t.warmup_steps >= 0, "train.warmup_steps", f"must be >= 0, got {t.warmup_steps}")
    need(0 <= t.min_lr_ratio <= 1, "train.min_lr_ratio", f"must lie in [0, 1], got {t.min_lr_ratio}")
    need(t.grad_clip >= 0, "train.grad_clip", f"must be >= 0, got {t.grad_clip}")
    for key, value in (("train.resume", t.resume), ("train.init", t.init)):
        need(value is None or bool(str(value).strip()), key, "is empty; name a file or leave the key out")
    need(t.max_steps >= 0, "train.max_steps", f"must be >= 0, got {t.max_steps}")
    need(t.max_minutes >= 0, "train.max_minutes", f"must be >= 0, got {t.max_minutes}")
    need(t.patience >= 0, "train.patience", f"must be >= 0, got {t.patience}")
    need(t.device in DEVICES, "train.device", f"must be one of {list(DEVICES)}, got {t.device!r}")
    need(t.precision in PRECISIONS, "train.precision", f"must be one of {list(PRECISIONS)}, got {t.precision!r}")
    need(0 < t.threshold < 1, "train.threshold", f"must lie in (0, 1), got {t.threshold}")
    need(t.checkpoint_every >= 0, "train.checkpoint_every", f"must be >= 0, got {t.checkpoint_every}")
    need(t.threads >= 0, "train.threads", f"must be >= 0, got {t.threads}")
    need(t.lx_reduction in LX_REDUCTIONS, "train.lx_reduction",
         f"must be one of {list(LX_REDUCTIONS)}, got {t.lx_reduction!r}")
    need(t.log_every >= 1, "train.log_every", f"must be at least 1, got {t.log_every}")
    need(dcfg.size >= m.stride and dcfg.size % m.stride == 0, "data.size",
         f"must be a positive multiple of the model's stride {m.stride}, got {dcfg.size}")
    need(dcfg.epoch_samples >= 1, "data.epoch_samples", f"must be at least 1, got {dcfg.epoch_samples}")
    need(dcfg.val_count >= 1, "data.val_count", f"must be at least 1, got {dcfg.val_count}")
    need(dcfg.num_workers >= 0, "data.num_workers", f"must be >= 0, got {dcfg.num_workers}")
    need(0 < dcfg.zoom[0] <= dcfg.zoom[1], "data.zoom",
         f"must be two scales 0 < min <= max, got {list(dcfg.zoom)}")
    for key in ("scenes", "sky", "jpeg", "vivid", "hue", "degraded", "unpainted"):
        share = getattr(dcfg, key)
        need(0.0 <= share <= 1.0, f"data.{key}", f"must lie in [0, 1], got {share}")
