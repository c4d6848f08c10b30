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
"""

from __future__ import annotations

import io
from typing import Callable, Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from restore_core.heldout import heldout_photos

SELECTION_GRAPHICS = ("chart", "screen", "poster", "sheet", "inset", "bulletin")  # new kinds go last, as below
EVALUATION_GRAPHICS = ("document", "slide", "plot", "logo", "page", "invoice", "article", "blog")  # new kinds go last: the others keep their draws
GRAPHICS_SEED = 20261205


def _colour(rng: np.random.Generator, low: int = 0) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, 256, 3))


def _figure(rng: np.random.Generator):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(rng.uniform(5, 10), rng.uniform(3, 7)))


def _rendered(plt, fig, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=int(rng.integers(80, 140)))
    plt.close(fig)
    return np.asarray(Image.open(buf).convert("RGB"))


def chart(rng: np.random.Generator) -> np.ndarray:
    """A bar chart (upright or sideways) or a line chart with a filled band, as matplotlib draws it."""
    plt, (fig, ax) = _figure(rng)
    x = np.arange(int(rng.integers(4, 12)))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        ax.bar(x, rng.uniform(1, 10, len(x)), color=[f"C{i % 10}" for i in x])
    elif kind == 1:
        ax.barh(x, rng.uniform(1, 10, len(x)), color=f"C{int(rng.integers(0, 10))}")
        ax.grid(True)
    else:
        ax.plot(x, rng.uniform(1, 10, (len(x), 3)))
        ax.fill_between(x, 0, rng.uniform(0, 3, len(x)), alpha=0.5)
    ax.set_title(f"Figure {int(rng.integers(1, 100))}")
    return _rendered(plt, fig, rng)


def screen(rng: np.random.Generator) -> np.ndarray:
    """An application's screen: a title bar, panels and buttons of flat colours, lines of text."""
    w, h = int(rng.integers(600, 1600)), int(rng.integers(500, 1000))
    img = Image.new("RGB", (w, h), _colour(rng, 200))
    draw = ImageDraw.Draw(img)
    bar = int(rng.integers(40, 90))
    draw.rectangle([0, 0, w, bar], fill=_colour(rng))
    for _ in range(int(rng.integers(3, 10))):
        x0, y0 = int(rng.integers(0, w - 50)), int(rng.integers(bar, h - 30))
        draw.rectangle([x0, y0, x0 + int(rng.integers(40, 500)), y0 + int(rng.integers(20, 300))], fill=_colour(rng))
    for y in range(bar + 20, h - 20, int(rng.integers(25, 60))):
        draw.text((int(rng.integers(10, 60)), y), f"Setting {y}: on", fill=(0, 0, 0))
    return np.asarray(img)


def poster(rng: np.random.Generator) -> np.ndarray:
    """A poster or a banner: a two-colour gradient in any direction, boxes of flat colour, a title and
    a few lines of text."""
    w, h = int(rng.integers(600, 1400)), int(rng.integers(500, 1100))
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.cos(angle) * xx + np.sin(angle) * yy  # (h, w)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    img = Image.fromarray((a + (b - a) * ramp[..., None]).round().astype(np.uint8))  # (h, w, 3)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = int(rng.integers(0, w - 150)), int(rng.integers(0, h - 100))
        draw.rectangle([x0, y0, x0 + int(rng.integers(80, 400)), y0 + int(rng.integers(40, 250))], fill=_colour(rng))
    draw.text((60, 40), "Summer sale", fill=(255, 255, 255))
    for i in range(int(rng.integers(0, 4))):
        draw.text((60, h - 60 - 20 * i), f"Offer {int(rng.integers(100))} ends soon", fill=_colour(rng))
    return np.asarray(img)


def sheet(rng: np.random.Generator) -> np.ndarray:
    """A spreadsheet: a header row and a first column of flat colour, a grid of thin lines, a number
    in every cell (text as dense as a graphic has), and a few cells filled with a highlight."""
    cw, ch = int(rng.integers(70, 130)), int(rng.integers(18, 28))
    cols, rows = int(rng.integers(6, 14)), int(rng.integers(20, 45))
    w, h = cw * cols + 1, ch * rows + 1
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, w, ch], fill=_colour(rng, 120))
    draw.rectangle([0, ch, cw, h], fill=_colour(rng, 200))
    for _ in range(int(rng.integers(2, 8))):  # highlighted cells, alone or in runs
        c, r, n = int(rng.integers(1, cols)), int(rng.integers(1, rows)), int(rng.integers(1, 5))
        draw.rectangle([c * cw, r * ch, c * cw + cw, min(rows, r + n) * ch], fill=_colour(rng, 150))
    line = tuple(int(v) for v in rng.integers(180, 230, 3))
    for c in range(cols + 1):
        draw.line([c * cw, 0, c * cw, h], fill=line)
    for r in range(rows + 1):
        draw.line([0, r * ch, w, r * ch], fill=line)
    for r in range(rows):
        for c in range(cols):
            text = f"Col {c}" if r == 0 else (f"Row {r}" if c == 0 else f"{rng.uniform(-1e4, 1e5):,.2f}")
            draw.text((c * cw + 4, r * ch + (ch - 10) // 2), text, fill=(20, 20, 20))
    return np.asarray(img)


def document(rng: np.random.Generator) -> np.ndarray:
    """A page of text, now and then a shaded box, black on white."""
    w, h = int(rng.integers(700, 1300)), int(rng.integers(900, 1700))
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    y = 40
    while y < h - 40:
        words = " ".join(f"word{int(rng.integers(1000))}" for _ in range(int(rng.integers(4, 14))))
        draw.text((50, y), words, fill=(20, 20, 20))
        y += int(rng.integers(14, 30))
        if rng.random() < 0.05:
            draw.rectangle([50, y, w - 50, y + int(rng.integers(40, 200))], fill=_colour(rng, 150))
            y += 220
    return np.asarray(img)


def slide(rng: np.random.Generator) -> np.ndarray:
    """A presentation slide: a colour gradient across, a few boxes of flat colour, a title."""
    w, h = 1280, 720
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, w)[None, :, None]  # (1, w, 1)
    img = Image.fromarray(np.repeat(a + (b - a) * ramp, h, axis=0).astype(np.uint8))  # (h, w, 3)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = int(rng.integers(0, w - 200)), int(rng.integers(0, h - 150))
        draw.rectangle([x0, y0, x0 + int(rng.integers(100, 500)), y0 + int(rng.integers(50, 300))], fill=_colour(rng))
    draw.text((100, 60), "Quarterly review", fill=(255, 255, 255))
    return np.asarray(img)


def plot(rng: np.random.Generator) -> np.ndarray:
    """A pie chart or a scatter plot of coloured discs, as matplotlib draws them."""
    plt, (fig, ax) = _figure(rng)
    if rng.random() < 0.5:
        ax.pie(rng.uniform(1, 5, 5), labels=list("ABCDE"))
    else:
        n = 60
        ax.scatter(rng.normal(size=n), rng.normal(size=n), s=rng.uniform(20, 300, n), c=rng.integers(0, 5, n),
                   cmap="tab10")
    return _rendered(plt, fig, rng)


def page(rng: np.random.Generator) -> np.ndarray:
    """A web page: a hero band shading from one colour to another (Pillow's gradient, stretched), a
    navigation bar, cards with rounded corners and buttons on a light body (flat, or shading down
    the page), lines of text, and avatars shaded from their centre."""
    w, h = int(rng.integers(800, 1500)), int(rng.integers(900, 1600))
    img = Image.new("RGB", (w, h), _colour(rng, 235))
    if rng.random() < 0.5:  # the body shades too, from one light colour to another
        img = Image.composite(Image.new("RGB", (w, h), _colour(rng, 200)), img,
                              Image.linear_gradient("L").resize((w, h), Image.BICUBIC))
    draw = ImageDraw.Draw(img)
    nav, hero = int(rng.integers(40, 70)), int(rng.integers(250, 450))
    shade = Image.linear_gradient("L").resize((w, hero), Image.BICUBIC)  # 0 at the top, 255 at the bottom
    img.paste(Image.composite(Image.new("RGB", (w, hero), _colour(rng)), Image.new("RGB", (w, hero), _colour(rng)),
                              shade), (0, nav))
    draw.rectangle([0, 0, w, nav], fill=_colour(rng))
    for i in range(int(rng.integers(2, 6))):
        draw.text((20 + 90 * i, nav // 2 - 5), f"Menu {i}", fill=(255, 255, 255))
    draw.text((60, nav + hero // 3), "Welcome to our store", fill=(255, 255, 255))
    draw.rounded_rectangle([60, nav + hero // 2, 260, nav + hero // 2 + 50], radius=12, fill=_colour(rng))
    y = nav + hero + 40
    while y < h - 200:
        x = 40
        while x < w - 300:
            cw, ch = int(rng.integers(200, 340)), int(rng.integers(120, 180))
            draw.rounded_rectangle([x, y, x + cw, y + ch], radius=int(rng.integers(4, 20)), fill=(255, 255, 255),
                                   outline=(210, 210, 210))
            avatar = Image.radial_gradient("L").resize((48, 48))  # 0 at the centre
            img.paste(Image.new("RGB", (48, 48), _colour(rng)), (x + 12, y + 12), avatar.point(lambda v: 255 - v))
            for line in range(3):
                draw.text((x + 72, y + 16 + 18 * line), f"Item {int(rng.integers(1000))} in stock", fill=(40, 40, 40))
            x += cw + 30
        y += 220
    return np.asarray(img)


def invoice(rng: np.random.Generator) -> np.ndarray:
    """An invoice: a letterhead band, an address block, a table of items on rows striped in two
    light colours with a number in every column, and a filled box for the total."""
    w = int(rng.integers(700, 1200))
    rows = int(rng.integers(15, 40))
    row = int(rng.integers(16, 26))
    h = 260 + rows * row + 160
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, w, 70], fill=_colour(rng))
    draw.text((30, 28), f"Invoice {int(rng.integers(10000, 99999))}", fill=(255, 255, 255))
    for i in range(4):
        draw.text((30, 90 + 16 * i), f"Street {int(rng.integers(1, 200))}, Town {int(rng.integers(1000, 9999))}", fill=(60, 60, 60))
    stripe = _colour(rng, 225)
    columns = np.linspace(30, w - 120, 5).astype(int)
    top = 200
    draw.rectangle([20, top, w - 20, top + row], fill=_colour(rng, 60))
    for j, name in enumerate(("Item", "Code", "Quantity", "Price", "Total")):
        draw.text((int(columns[j]), top + 4), name, fill=(255, 255, 255))
    for r in range(1, rows + 1):
        y = top + r * row
        if r % 2:
            draw.rectangle([20, y, w - 20, y + row], fill=stripe)
        cells = (f"Part {int(rng.integers(1000))}", f"X-{int(rng.integers(100000))}", str(int(rng.integers(1, 50))),
                 f"{rng.uniform(1, 500):.2f}", f"{rng.uniform(1, 9000):,.2f}")
        for j, text in enumerate(cells):
            draw.text((int(columns[j]), y + (row - 10) // 2), text, fill=(30, 30, 30))
    y = top + (rows + 1) * row + 30
    draw.rectangle([w - 320, y, w - 20, y + 60], fill=_colour(rng, 100))
    draw.text((w - 300, y + 24), f"Total due: {rng.uniform(100, 90000):,.2f}", fill=(0, 0, 0))
    return np.asarray(img)


def _photo(rng: np.random.Generator, photos: List[np.ndarray], area: float, most: Tuple[int, int]) -> Image.Image:
    """One of `photos`, chosen by `rng`, resized (its shape kept) to about `area` pixels, within `most` (w, h)."""
    photo = photos[int(rng.integers(0, len(photos)))]
    ph, pw = photo.shape[:2]
    scale = min((area / (pw * ph)) ** 0.5, most[0] / pw, most[1] / ph)
    return Image.fromarray(photo).resize((max(8, int(pw * scale)), max(8, int(ph * scale))), Image.LANCZOS)


def inset(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A chart, a screen, a poster or a spreadsheet (as above) with a photo of the group inset
    anywhere over a tenth to a half of it: a slide or a page that holds a picture."""
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
    img = Image.new("RGB", (w, h), _colour(rng, 235))
    draw = ImageDraw.Draw(img)
    band, column = int(rng.integers(50, 90)), int(w * rng.uniform(0.6, 0.75))
    draw.rectangle([0, 0, w, band], fill=_colour(rng, 0))
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
        draw.rectangle([column + 20, y, w - 20, y + ch], fill=_colour(rng, 120))
        draw.text((column + 34, y + 14), f"Read more {int(rng.integers(100))}", fill=(0, 0, 0))
        y += ch + int(rng.integers(20, 40))
    draw.rectangle([0, h - 50, w, h], fill=_colour(rng, 0))
    return np.asarray(img)


def bulletin(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A printed bulletin: a masthead band and a footer band across the page, a photo of the group
    on the left or the right beside a column of text, more text across the page under both, a
    notice box of flat colour, all within margins of the page's colour."""
    w, h = int(rng.integers(700, 1300)), int(rng.integers(800, 1400))
    img = Image.new("RGB", (w, h), _colour(rng, 225))
    draw = ImageDraw.Draw(img)
    margin, mast, foot = int(rng.integers(15, 60)), int(rng.integers(60, 130)), int(rng.integers(25, 70))
    draw.rectangle([0, 0, w, mast], fill=_colour(rng))
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
        draw.rectangle([margin, y, w - margin, y + bh], fill=_colour(rng, 100))
        draw.text((margin + 12, y + 12), "Notice to members", fill=(0, 0, 0))
        y += bh + 20
    while y < h - foot - 30:
        words = " ".join(f"text{int(rng.integers(1000))}" for _ in range(int(rng.integers(3, max(4, (w - 2 * margin) // 70)))))
        draw.text((margin, y), words, fill=(25, 25, 25))
        y += int(rng.integers(15, 22))
    draw.rectangle([0, h - foot, w, h], fill=_colour(rng))
    return np.asarray(img)


def blog(rng: np.random.Generator, photos: List[np.ndarray]) -> np.ndarray:
    """A blog post: a navigation bar across the top, one centred column between wide margins of the
    page's colour (a tenth to a quarter of the width each), a title, a photo of the group across
    the column, paragraphs, a quoted passage with a coloured rule beside it, and a footer."""
    w, h = int(rng.integers(900, 1600)), int(rng.integers(1000, 1800))
    img = Image.new("RGB", (w, h), (255, 255, 255) if rng.random() < 0.5 else _colour(rng, 240))
    draw = ImageDraw.Draw(img)
    nav = int(rng.integers(40, 80))
    side = int(w * rng.uniform(0.1, 0.25))
    draw.rectangle([0, 0, w, nav], fill=_colour(rng, 0))
    for i in range(int(rng.integers(3, 7))):
        draw.text((side + 80 * i, nav // 2 - 5), f"Topic {i}", fill=(240, 240, 240))
    draw.text((side, nav + 30), f"Notes from day {int(rng.integers(1, 400))}", fill=(15, 15, 15))
    photo = _photo(rng, photos, rng.uniform(0.12, 0.4) * w * h, (w - 2 * side, h // 2))
    img.paste(photo, (side + (w - 2 * side - photo.width) // 2, nav + 60))
    y, rule = nav + 90 + photo.height, _colour(rng)
    while y < h - 140:
        if rng.random() < 0.08:  # a quoted passage
            draw.rectangle([side, y, side + 6, y + 60], fill=rule)
            draw.text((side + 20, y + 24), "A line worth quoting", fill=(90, 90, 90))
            y += 80
            continue
        words = " ".join(f"note{int(rng.integers(1000))}" for _ in range(int(rng.integers(3, max(4, (w - 2 * side) // 65)))))
        draw.text((side, y), words, fill=(40, 40, 40))
        y += int(rng.integers(18, 28)) + (12 if rng.random() < 0.2 else 0)
    draw.rectangle([0, h - 90, w, h], fill=_colour(rng, 0))
    return np.asarray(img)


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
