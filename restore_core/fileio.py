"""Atomic file writes for training, validation and export: the bottom floor's one implementation
(`restore_toolkit.fileio`), re-exported, plus the PNG writer of bulk images.
"""

from __future__ import annotations

import os

from restore_toolkit.fileio import _UMASK, atomic_path, atomic_write_bytes, atomic_write_text  # noqa: F401 (_UMASK: tests)

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_save_png"]


def atomic_save_png(pixels, path: str | os.PathLike, durable: bool = False) -> None:
    """Write a uint8 array ((H, W) grey or (H, W, 3) RGB) as a PNG, atomically.

    Not synced by default: these are bulk images (synthetic datasets, validation outputs) that
    can be made again, and an fsync costs about 7 ms per image here. Checkpoints, models and
    reports are always synced.
    """
    from PIL import Image

    with atomic_path(path, durable) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
