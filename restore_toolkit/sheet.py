"""Contact sheets: rows of before / mask / after / original, labelled with how close each got.

Pillow and numpy only, so the torch-free demo draws its sheet with the same code as the model
card's figures.
"""

from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from restore_toolkit.fileio import atomic_path

COLUMNS = ("before", "mask", "after", "original")
Row = Tuple[str, Sequence[np.ndarray]]  # (label, one uint8 (H, W, 3) or bool (H, W) image per column)


def _rgb(a: np.ndarray) -> Image.Image:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))


def draw_sheet(rows: List[Row], columns: Sequence[str] = COLUMNS, cell: int = 160) -> Image.Image:
    """One picture: a header of column names, then one row per entry, each image fit into `cell` px."""
    pad, header, label = 4, 16, 14
    sheet = Image.new("RGB", (pad + len(columns) * (cell + pad), header + len(rows) * (label + cell + pad)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((pad + c * (cell + pad) + 2, 2), name, fill=(0, 0, 0))
    for r, (text, images) in enumerate(rows):
        top = header + r * (label + cell + pad)
        draw.text((pad + 2, top), text, fill=(0, 0, 0))
        for c, arr in enumerate(images):
            im = _rgb(arr)
            scale = cell / max(im.width, im.height)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.NEAREST if scale >= 1 else Image.LANCZOS)
            sheet.paste(im, (pad + c * (cell + pad), top + label))
    return sheet


def save_sheet(rows: List[Row], path: str | os.PathLike, columns: Sequence[str] = COLUMNS, cell: int = 160) -> None:
    """`draw_sheet` written to `path` as PNG, atomically."""
    with atomic_path(path) as tmp:
        draw_sheet(rows, columns, cell).save(tmp, "PNG")
