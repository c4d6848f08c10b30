"""Pictures that are not photos: charts, screens, documents and slides, drawn here.

A user's folder of photos is rarely photos alone. A phone's camera roll holds screenshots, and a
folder of pictures holds charts, slides and scanned-in documents. Their flat panels, bars and
boxes of one exact colour are what the shipped model's damage looks like (solid shapes of random
colours), so the evaluation needs them: a graphic in which nothing was painted must come back as
it was.

They are drawn procedurally, seeded, in two groups that share no generator, kept apart as the
photos are (`restore_core/heldout.py`):

- selection (`SELECTION_GRAPHICS`): bar and line charts (matplotlib), application screens
  (panels, buttons and lines of text, Pillow), posters on a gradient in any direction (numpy) and
  spreadsheets (a grid of thin lines, a number in every cell, highlighted cells), and any of those
  with one of the selection photos inset over a tenth to a half of it, and printed bulletins (a
  masthead band and a footer band across the page, a selection photo beside columns of text, a
  notice box, margins of the page's colour). The check that leaves graphics alone
  (runtime/graphic.py) was chosen on these;
- evaluation (`EVALUATION_GRAPHICS`): text documents, slides on a gradient background, pie and
  scatter plots, the logos two packages ship (scikit-image's and matplotlib's), web pages (a hero
  band and sometimes the body shading down the page, cards, buttons and avatars, from Pillow's
  own gradients), invoices (a table of items on striped rows) and news articles (a site's band, a
  headline, one of the evaluation photos across the column, text, a sidebar of cards) and blog
  posts (a navigation bar, one centred column between wide margins with an evaluation photo,
  paragraphs and a quoted passage, a footer). Only reports read them.

Training never sees either: its pictures are photos and camera-like scenes (`scenes.py`).

The generators are in `graphics_drawn.py` (drawn alone) and `graphics_photo.py` (drawn around a
photo of the group); this module makes the two groups of them.
"""

from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np
from PIL import Image

from restore_core.graphics_drawn import chart, document, invoice, page, plot, poster, screen, sheet, slide
from restore_core.graphics_photo import article, blog, bulletin, inset
from restore_core.heldout import heldout_photos

SELECTION_GRAPHICS = ("chart", "screen", "poster", "sheet", "inset", "bulletin")  # new kinds go last, as below
EVALUATION_GRAPHICS = ("document", "slide", "plot", "logo", "page", "invoice", "article", "blog")  # new kinds go last: the others keep their draws
GRAPHICS_SEED = 20261205


def _on_white(img: Image.Image) -> np.ndarray:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    white.alpha_composite(rgba)
    return np.asarray(white.convert("RGB"))


def logos() -> List[np.ndarray]:
    """The logos scikit-image and matplotlib ship, on white (their transparency flattened)."""
    import os

    import matplotlib
    import skimage

    paths = [os.path.join(os.path.dirname(skimage.__file__), "data", "logo.png"),
             os.path.join(matplotlib.get_data_path(), "sample_data", "logo2.png")]
    return [_on_white(Image.open(p)) for p in paths]


DRAWN: Dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "chart": chart, "screen": screen, "poster": poster, "sheet": sheet, "document": document, "slide": slide, "plot": plot,
    "page": page, "invoice": invoice}
WITH_PHOTOS: Dict[str, Callable[[np.random.Generator, List[np.ndarray]], np.ndarray]] = {
    "inset": inset, "article": article, "bulletin": bulletin, "blog": blog}  # drawn around the photos of their own group


def graphics(which: str, per_kind: int, seed: int = GRAPHICS_SEED) -> Dict[str, np.ndarray]:
    """{name: (H, W, 3) uint8} for the group `which` ("selection" or "evaluation"): `per_kind`
    seeded drawings of each generator, and for evaluation the packages' logos. The generators that
    hold a photo take it from the group's own photos (`restore_core/heldout.py`)."""
    kinds = {"selection": SELECTION_GRAPHICS, "evaluation": EVALUATION_GRAPHICS}[which]
    out: Dict[str, np.ndarray] = {}
    for k, kind in enumerate(kinds):
        if kind == "logo":
            out.update({f"logo_{i:02d}": img for i, img in enumerate(logos())})
            continue
        rng = np.random.default_rng([seed, k])
        if kind in WITH_PHOTOS:
            photos = list(heldout_photos(which).values())
            out.update({f"{kind}_{i:02d}": WITH_PHOTOS[kind](rng, photos) for i in range(per_kind)})
        else:
            out.update({f"{kind}_{i:02d}": DRAWN[kind](rng) for i in range(per_kind)})
    return out
