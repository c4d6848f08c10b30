"""The graphics drawn around a photo of their own group: a chart, screen, poster or spreadsheet
with a photo inset, news articles, printed bulletins and blog posts.

Apart from the graphics drawn alone (`restore_core/graphics_drawn.py`) because these take the
group's photos as well as the seeded `numpy.random.Generator`: `restore_core/graphics.py` hands
each the photos of the group it draws for, so no photo crosses from one group to the other.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from restore_core.graphics_drawn import chart, colour, poster, screen, sheet


def _photo(rng: np.random.Generator, photos: List[np.ndarray], area: float, most: Tuple[int, int]) -> Image.Image:
    """One of `photos`, chosen by `rng`, resized (its shape kept) to about `area` pixels, within `most` (w, h)."""
    photo = photos[int(rng.integers(0, len(photos)))]
    ph, pw = photo.shape[:2]
    scale = min((area / (pw * ph)) ** 0.5, most[0] / pw, most[1] / ph)
    return Image.fromarray(photo).resize((max(8, int(pw * scale)), max(8, int(ph * scale))), Image.LANCZOS)


def inset(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A chart, a screen, a poster or a spreadsheet (`graphics_drawn.py`) with a photo of the
    group inset anywhere over a tenth to a half of it: a slide or a page that holds a picture."""
    base = (chart, screen, poster, sheet)[int(rng.integers(0, 4))](rng)
    h, w = base.shape[:2]
    photo = _photo(rng, photos, rng.uniform(0.1, 0.5) * w * h, (w, h))
    img = Image.fromarray(base)
    img.paste(photo, (int(rng.integers(0, w - photo.width + 1)), int(rng.integers(0, h - photo.height + 1))))
    return np.asarray(img)


def article(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A news article on the web: the site's band, a headline, a photo of the group across the main
    column (a sixth to a half of the page), lines of text under it, a sidebar of coloured cards
    and a footer."""
    w, h = int(rng.integers(800, 1400)), int(rng.integers(900, 1500))
    img = Image.new("RGB", (w, h), colour(rng, 235))
    draw = ImageDraw.Draw(img)
    band, column = int(rng.integers(50, 90)), int(w * rng.uniform(0.6, 0.75))
    draw.rectangle([0, 0, w, band], fill=colour(rng, 0))
    draw.text((24, band // 2 - 5), f"The {int(rng.integers(10, 99))} Courier", fill=(255, 255, 255))
    draw.text((30, band + 20), f"Headline number {int(rng.integers(1000))} of the day", fill=(10, 10, 10))
    photo = _photo(rng, photos, rng.uniform(1 / 6, 1 / 2) * w * h, (column - 60, h - band - 160))
    img.paste(photo, (30, band + 50))
    y = band + 70 + photo.height
    while y < h - 80:
        words = " ".join(f"word{int(rng.integers(1000))}" for _ in range(int(rng.integers(4, column // 60))))
        draw.text((30, y), words, fill=(30, 30, 30))
        y += int(rng.integers(16, 24))
    y = band + 50
    while y < h - 200:  # the sidebar's cards
        ch = int(rng.integers(80, 200))
        draw.rectangle([column + 20, y, w - 20, y + ch], fill=colour(rng, 120))
        draw.text((column + 34, y + 14), f"Read more {int(rng.integers(100))}", fill=(0, 0, 0))
        y += ch + int(rng.integers(20, 40))
    draw.rectangle([0, h - 50, w, h], fill=colour(rng, 0))
    return np.asarray(img)


def bulletin(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A printed bulletin: a masthead band and a footer band across the page, a photo of the group
    on the left or the right beside a column of text, more text across the page under both, a
    notice box of flat colour, all within margins of the page's colour."""
    w, h = int(rng.integers(700, 1300)), int(rng.integers(800, 1400))
    img = Image.new("RGB", (w, h), colour(rng, 225))
    draw = ImageDraw.Draw(img)
    margin, mast, foot = int(rng.integers(15, 60)), int(rng.integers(60, 130)), int(rng.integers(25, 70))
    draw.rectangle([0, 0, w, mast], fill=colour(rng))
    draw.text((margin, mast // 2 - 5), f"Bulletin no. {int(rng.integers(1, 300))}", fill=(255, 255, 255))
    photo = _photo(rng, photos, rng.uniform(0.1, 0.35) * w * h, (w // 2, h // 2))
    left = rng.random() < 0.5
    px = margin if left else w - margin - photo.width
    img.paste(photo, (px, mast + margin))
    tx = margin + photo.width + 20 if left else margin
    for y in range(mast + margin, mast + margin + photo.height, int(rng.integers(16, 26))):
        draw.text((tx, y), f"News item {int(rng.integers(1000))} in brief", fill=(20, 20, 20))
    y = mast + 2 * margin + photo.height
    if rng.random() < 0.7:  # the notice
        bh = int(rng.integers(60, 160))
        draw.rectangle([margin, y, w - margin, y + bh], fill=colour(rng, 100))
        draw.text((margin + 12, y + 12), "Notice to members", fill=(0, 0, 0))
        y += bh + 20
    while y < h - foot - 30:
        words = " ".join(f"text{int(rng.integers(1000))}" for _ in range(int(rng.integers(3, max(4, (w - 2 * margin) // 70)))))
        draw.text((margin, y), words, fill=(25, 25, 25))
        y += int(rng.integers(15, 22))
    draw.rectangle([0, h - foot, w, h], fill=colour(rng))
    return np.asarray(img)


def blog(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A blog post: a navigation bar across the top, one centred column between wide margins of the
    page's colour (a tenth to a quarter of the width each), a title, a photo of the group across
    the column, paragraphs, a quoted passage with a coloured rule beside it, and a footer."""
    w, h = int(rng.integers(900, 1600)), int(rng.integers(1000, 1800))
    img = Image.new("RGB", (w, h), (255, 255, 255) if rng.random() < 0.5 else colour(rng, 240))
    draw = ImageDraw.Draw(img)
    nav = int(rng.integers(40, 80))
    side = int(w * rng.uniform(0.1, 0.25))
    draw.rectangle([0, 0, w, nav], fill=colour(rng, 0))
    for i in range(int(rng.integers(3, 7))):
        draw.text((side + 80 * i, nav // 2 - 5), f"Topic {i}", fill=(240, 240, 240))
    draw.text((side, nav + 30), f"Notes from day {int(rng.integers(1, 400))}", fill=(15, 15, 15))
    photo = _photo(rng, photos, rng.uniform(0.12, 0.4) * w * h, (w - 2 * side, h // 2))
    img.paste(photo, (side + (w - 2 * side - photo.width) // 2, nav + 60))
    y, rule = nav + 90 + photo.height, colour(rng)
    while y < h - 140:
        if rng.random() < 0.08:  # a quoted passage
            draw.rectangle([side, y, side + 6, y + 60], fill=rule)
            draw.text((side + 20, y + 24), "A line worth quoting", fill=(90, 90, 90))
            y += 80
            continue
        words = " ".join(f"note{int(rng.integers(1000))}" for _ in range(int(rng.integers(3, max(4, (w - 2 * side) // 65)))))
        draw.text((side, y), words, fill=(40, 40, 40))
        y += int(rng.integers(18, 28)) + (12 if rng.random() < 0.2 else 0)
    draw.rectangle([0, h - 90, w, h], fill=colour(rng, 0))
    return np.asarray(img)

