"""The graphics drawn alone: charts and plots (matplotlib), screens, posters, spreadsheets,
documents, slides, web pages and invoices (Pillow and numpy).

Each generator takes a seeded `numpy.random.Generator` and returns one (H, W, 3) uint8 picture.
They are apart from the groups they are drawn for (`restore_core/graphics.py`) and from the
graphics drawn around a photo (`restore_core/graphics_photo.py`), which draw some of these first.
"""

from __future__ import annotations

import io
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw


def colour(rng: np.random.Generator, low: int = 0) -> Tuple[int, int, int]:
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
    img = Image.new("RGB", (w, h), colour(rng, 200))
    draw = ImageDraw.Draw(img)
    bar = int(rng.integers(40, 90))
    draw.rectangle([0, 0, w, bar], fill=colour(rng))
    for _ in range(int(rng.integers(3, 10))):
        x0, y0 = int(rng.integers(0, w - 50)), int(rng.integers(bar, h - 30))
        draw.rectangle([x0, y0, x0 + int(rng.integers(40, 500)), y0 + int(rng.integers(20, 300))], fill=colour(rng))
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
        draw.rectangle([x0, y0, x0 + int(rng.integers(80, 400)), y0 + int(rng.integers(40, 250))], fill=colour(rng))
    draw.text((60, 40), "Summer sale", fill=(255, 255, 255))
    for i in range(int(rng.integers(0, 4))):
        draw.text((60, h - 60 - 20 * i), f"Offer {int(rng.integers(100))} ends soon", fill=colour(rng))
    return np.asarray(img)


def sheet(rng: np.random.Generator) -> np.ndarray:
    """A spreadsheet: a header row and a first column of flat colour, a grid of thin lines, a number
    in every cell (text as dense as a graphic has), and a few cells filled with a highlight."""
    cw, ch = int(rng.integers(70, 130)), int(rng.integers(18, 28))
    cols, rows = int(rng.integers(6, 14)), int(rng.integers(20, 45))
    w, h = cw * cols + 1, ch * rows + 1
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, w, ch], fill=colour(rng, 120))
    draw.rectangle([0, ch, cw, h], fill=colour(rng, 200))
    for _ in range(int(rng.integers(2, 8))):  # highlighted cells, alone or in runs
        c, r, n = int(rng.integers(1, cols)), int(rng.integers(1, rows)), int(rng.integers(1, 5))
        draw.rectangle([c * cw, r * ch, c * cw + cw, min(rows, r + n) * ch], fill=colour(rng, 150))
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
            draw.rectangle([50, y, w - 50, y + int(rng.integers(40, 200))], fill=colour(rng, 150))
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
        draw.rectangle([x0, y0, x0 + int(rng.integers(100, 500)), y0 + int(rng.integers(50, 300))], fill=colour(rng))
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
    img = Image.new("RGB", (w, h), colour(rng, 235))
    if rng.random() < 0.5:  # the body shades too, from one light colour to another
        img = Image.composite(Image.new("RGB", (w, h), colour(rng, 200)), img,
                              Image.linear_gradient("L").resize((w, h), Image.BICUBIC))
    draw = ImageDraw.Draw(img)
    nav, hero = int(rng.integers(40, 70)), int(rng.integers(250, 450))
    shade = Image.linear_gradient("L").resize((w, hero), Image.BICUBIC)  # 0 at the top, 255 at the bottom
    img.paste(Image.composite(Image.new("RGB", (w, hero), colour(rng)), Image.new("RGB", (w, hero), colour(rng)),
                              shade), (0, nav))
    draw.rectangle([0, 0, w, nav], fill=colour(rng))
    for i in range(int(rng.integers(2, 6))):
        draw.text((20 + 90 * i, nav // 2 - 5), f"Menu {i}", fill=(255, 255, 255))
    draw.text((60, nav + hero // 3), "Welcome to our store", fill=(255, 255, 255))
    draw.rounded_rectangle([60, nav + hero // 2, 260, nav + hero // 2 + 50], radius=12, fill=colour(rng))
    y = nav + hero + 40
    while y < h - 200:
        x = 40
        while x < w - 300:
            cw, ch = int(rng.integers(200, 340)), int(rng.integers(120, 180))
            draw.rounded_rectangle([x, y, x + cw, y + ch], radius=int(rng.integers(4, 20)), fill=(255, 255, 255),
                                   outline=(210, 210, 210))
            avatar = Image.radial_gradient("L").resize((48, 48))  # 0 at the centre
            img.paste(Image.new("RGB", (48, 48), colour(rng)), (x + 12, y + 12), avatar.point(lambda v: 255 - v))
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
    draw.rectangle([0, 0, w, 70], fill=colour(rng))
    draw.text((30, 28), f"Invoice {int(rng.integers(10000, 99999))}", fill=(255, 255, 255))
    for i in range(4):
        draw.text((30, 90 + 16 * i), f"Street {int(rng.integers(1, 200))}, Town {int(rng.integers(1000, 9999))}", fill=(60, 60, 60))
    stripe = colour(rng, 225)
    columns = np.linspace(30, w - 120, 5).astype(int)
    top = 200
    draw.rectangle([20, top, w - 20, top + row], fill=colour(rng, 60))
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
    draw.rectangle([w - 320, y, w - 20, y + 60], fill=colour(rng, 100))
    draw.text((w - 300, y + 24), f"Total due: {rng.uniform(100, 90000):,.2f}", fill=(0, 0, 0))
    return np.asarray(img)

