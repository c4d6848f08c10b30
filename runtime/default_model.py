"""The model shipped inside the package, named `default` (see MODEL_CARD.md).

`restore-run` and `Restorer` use it when no model is named, and every option that names a model
accepts the word `default` for it. The graph here is exactly what `restore-export onnx
--checkpoint default` writes from the shipped weights (`restore_core/assets/default.safetensors`);
its `restore.weights_sha256` metadata proves which weights it holds. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

DEFAULT_MODEL = "default"
ASSETS = Path(__file__).parent / "assets"
SHIPPED_ONNX = ASSETS / "default.onnx"
SAMPLES = ASSETS / "samples"  # photos the default model never trained on, for restore-demo


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


def describe_model(model: Optional[Union[str, os.PathLike, bytes]]) -> str:
    """How a run names its model on the console: `default (path)` or the path given."""
    if isinstance(model, bytes):
        return "<in-memory model>"
    if model is None or str(model) == DEFAULT_MODEL:
        return f"default ({SHIPPED_ONNX})"
    return str(model)
