"""Procedural man-made scenes: facades, windows, signs with lettering, poles, panels, roofs.

scikit-image's bundled photos are mostly organic (a face, a cat, plants, cells, the sky); a
model trained on them alone takes the flat surfaces and straight edges of buildings, shop
interiors and signs for drawn shapes and paints over them. These scenes supply exactly that
kind of content, rendered the way a camera would see it, so that the one thing left to tell a
corruption from a real flat surface is what the corruption really is:

- a real edge is anti-aliased (the scene is drawn at 3x and downsampled with a filter), a
  drawn shape's edge is a hard step;
- a real flat surface carries light falloff, sensor noise and often JPEG blocking, a drawn
  shape is one exact colour.

Everything is drawn from the sample's generator, so a scene is reproducible from (seed, index).
"""

from __future__ import annotations

import io
import math
import string

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SUPERSAMPLE = 3  # drawn at 3x, then downsampled: anti-aliased edges like a camera's
_GLYPHS = string.ascii_uppercase + string.digits + "      &-.:"


def _colour(rng: np.random.Generator, grey_bias: float = 0.5) -> tuple:
    """A paint colour: often muted (walls, concrete, metal), sometimes saturated (signs)."""
    c = rng.integers(0, 256, size=3).astype(np.float64)
    if rng.random() < grey_bias:
        g = c.mean()
        c = g + rng.uniform(0.0, 0.35) * (c - g)
    return tuple(int(v) for v in c)


def _ramp(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Position along a random direction, 0 at one corner and 1 at the opposite: float32 (h, w)."""
    t = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(t), math.sin(t)
    lo = min(0.0, c * (w - 1)) + min(0.0, s * (h - 1))  # the smallest projection, at a corner
    span = max(abs(c) * (w - 1) + abs(s) * (h - 1), 1.0)
    # An outer sum of two 1-D ramps: a 768 px canvas costs one pass, not a coordinate grid.
    return np.add.outer(np.arange(h, dtype=np.float32) * np.float32(s / span),
                        np.arange(w, dtype=np.float32) * np.float32(c / span) - np.float32(lo / span))


def _gradient(h: int, w: int, a: tuple, b: tuple, rng: np.random.Generator, levels: int = 1024) -> np.ndarray:
    """A linear colour gradient from `a` to `b` in a random direction, uint8 (h, w, 3).

    The colours come from a table of `levels` steps (a step is far below one grey level for
    any pair of colours), so the canvas is indexed once instead of computed in float per channel.
    """
    q = (_ramp(h, w, rng) * np.float32(levels - 1) + np.float32(0.5)).astype(np.uint16)  # (h, w)
    a, b = np.array(a, np.float64), np.array(b, np.float64)
    table = np.clip(np.round(a + np.linspace(0.0, 1.0, levels)[:, None] * (b - a)), 0, 255).astype(np.uint8)
    return np.take(table, q, axis=0)  # (h, w, 3)


def _font(px: int):
    return ImageFont.load_default(size=max(6, px))


def _sign(draw: ImageDraw.ImageDraw, box, rng: np.random.Generator) -> None:
    """A panel with a border and a line or two of lettering."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=_colour(rng, 0.3), outline=_colour(rng), width=int(rng.integers(0, 4)) * SUPERSAMPLE)
    lines = int(rng.integers(1, 3))
    px = int((y1 - y0) / (lines + 0.6))
    font = _font(px)
    ink = _colour(rng, 0.2)
    for i in range(lines):
        text = "".join(rng.choice(list(_GLYPHS), size=int(rng.integers(2, 12))))
        draw.text((x0 + px * 0.2, y0 + px * (0.2 + i)), text, fill=ink, font=font)


def _facade(draw: ImageDraw.ImageDraw, s: int, rng: np.random.Generator) -> None:
    """A wall region with a grid of windows (frames, panes, sills)."""
    x0, y0 = (int(v) for v in rng.integers(-s // 4, s // 2, size=2))
    x1, y1 = x0 + int(rng.integers(s // 3, s + s // 2)), y0 + int(rng.integers(s // 3, s + s // 2))
    draw.rectangle((x0, y0, x1, y1), fill=_colour(rng, 0.8))
    rows, cols = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    fw, fh = cw * rng.uniform(0.35, 0.8), ch * rng.uniform(0.35, 0.8)
    frame, pane = _colour(rng, 0.7), _colour(rng, 0.6)
    bar = max(1, int(min(fw, fh) * rng.uniform(0.03, 0.12)))
    for r in range(rows):
        for c in range(cols):
            wx, wy = x0 + c * cw + (cw - fw) / 2, y0 + r * ch + (ch - fh) / 2
            draw.rectangle((wx, wy, wx + fw, wy + fh), fill=frame)
            draw.rectangle((wx + bar, wy + bar, wx + fw - bar, wy + fh - bar), fill=pane)
            if rng.random() < 0.5:  # mullions
                draw.line((wx + fw / 2, wy, wx + fw / 2, wy + fh), fill=frame, width=bar)
                draw.line((wx, wy + fh / 2, wx + fw, wy + fh / 2), fill=frame, width=bar)


def _element(draw: ImageDraw.ImageDraw, s: int, rng: np.random.Generator) -> None:
    """One random man-made element: a panel, sign, pole, cable, roof, disc or tilted plane."""
    kind = rng.choice(["panel", "sign", "pole", "line", "roof", "disc", "quad", "stripes"])
    cx, cy = rng.uniform(-0.1, 1.1, size=2) * s
    w, h = rng.uniform(0.05, 0.6, size=2) * s
    if kind == "panel":
        draw.rounded_rectangle((cx, cy, cx + w, cy + h), radius=int(rng.uniform(0, 0.2) * min(w, h)),
                               fill=_colour(rng), outline=_colour(rng), width=int(rng.integers(0, 3)) * SUPERSAMPLE)
    elif kind == "sign":
        _sign(draw, (cx, cy, cx + w, cy + max(h * 0.4, 0.05 * s)), rng)
    elif kind == "pole":
        vertical = rng.random() < 0.7
        t = rng.uniform(0.005, 0.04) * s
        box = (cx, -s, cx + t, 2 * s) if vertical else (-s, cy, 2 * s, cy + t)
        draw.rectangle(box, fill=_colour(rng))
    elif kind == "line":
        a = rng.uniform(0, math.pi)
        dx, dy = math.cos(a) * s, math.sin(a) * s
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=_colour(rng), width=max(1, int(rng.uniform(1, 8))))
    elif kind == "roof":
        draw.polygon([(cx, cy), (cx + w, cy), (cx + w / 2, cy - h / 2)], fill=_colour(rng))
    elif kind == "disc":
        draw.ellipse((cx, cy, cx + w, cy + w * rng.uniform(0.6, 1.0)), fill=_colour(rng, 0.3),
                     outline=_colour(rng), width=int(rng.integers(0, 3)) * SUPERSAMPLE)
    elif kind == "quad":  # a plane seen in perspective
        pts = [(cx + rng.uniform(-0.3, 0.3) * s, cy + rng.uniform(-0.3, 0.3) * s) for _ in range(4)]
        pts.sort(key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
        draw.polygon(pts, fill=_colour(rng))
    else:  # shutters, awnings, tiles
        n, c1, c2 = int(rng.integers(3, 12)), _colour(rng), _colour(rng)
        step = h / n
        for i in range(n):
            draw.rectangle((cx, cy + i * step, cx + w, cy + (i + 0.5) * step), fill=c1 if i % 2 else c2)


def _sky(s: int, rng: np.random.Generator) -> np.ndarray:
    """An open sky, float (s, s, 3): a smooth vertical gradient (blue, haze or dusk) with faint
    clouds. Real skies and blurred backgrounds are almost flat over large areas, yet have no hard
    edge: the model must not take them for drawn shapes."""
    top = np.array(_colour(rng, 0.4), np.float32) * 0.5 + np.array([60, 110, 200], np.float32) * 0.5
    bottom = top + rng.uniform(-20, 60, size=3).astype(np.float32)  # lighter, hazier towards the horizon
    t = np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None, None] ** rng.uniform(0.5, 2.0)
    sky = top + t * (bottom - top)  # (s, 1, 3)
    clouds = rng.normal(0.0, 1.0, size=(6, 6)).astype(np.float32)
    clouds = np.asarray(Image.fromarray(clouds, "F").resize((s, s), Image.BICUBIC))  # (s, s), smooth
    return sky + clouds[..., None] * rng.uniform(0.0, 8.0)  # (s, s, 3)


def render_scene(size: int, rng: np.random.Generator, sky: float = 0.0) -> np.ndarray:
    """A random man-made scene as a camera would record it.

    Args:
        size: side of the square output in pixels.
        rng: the sample's generator.
        sky: the odds that the scene is mostly open sky, with a few elements low in the frame.

    Returns:
        uint8 (size, size, 3) RGB.
    """
    s = size * SUPERSAMPLE
    open_sky = sky > 0 and rng.random() < sky
    if open_sky:
        base = np.clip(_sky(s, rng), 0, 255).astype(np.uint8)  # (s, s, 3)
    else:
        base = _gradient(s, s, _colour(rng, 0.7), _colour(rng, 0.7), rng)  # (s, s, 3): wall or sky
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    if open_sky:
        # Rooftops, poles and signs along the bottom edge; the sky above stays open.
        layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
        low = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(0, 5))):
            _element(low, s, rng)
        cut = int(s * rng.uniform(0.55, 1.0))
        layer.paste((0, 0, 0, 0), (0, 0, s, cut))
        img.paste(layer, (0, 0), layer)
    else:
        for _ in range(int(rng.integers(0, 3))):
            _facade(draw, s, rng)
        for _ in range(int(rng.integers(3, 16))):
            _element(draw, s, rng)
    img = img.resize((size, size), Image.LANCZOS)  # anti-aliased edges

    x = np.asarray(img, dtype=np.float32)  # (size, size, 3)
    # Light falls off across every surface: a smooth multiplicative field, never exactly flat.
    dim = rng.uniform(0.6, 1.0)
    light = 1.0 + (dim - 1.0) * _ramp(size, size, rng)[..., None]  # (size, size, 1), 1 down to `dim`
    x = x * light * rng.uniform(0.85, 1.15)
    x = x + rng.normal(0.0, rng.uniform(0.2, 1.5) if open_sky else rng.uniform(0.8, 4.0), size=x.shape)
    out = np.clip(np.round(x), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0))))
    if rng.random() < (0.8 if open_sky else 0.5):  # most photos of buildings and skies are JPEGs
        out = jpeg(out, int(rng.integers(40 if open_sky else 55, 96)))
    return np.ascontiguousarray(out, dtype=np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """`img` (uint8 (H, W, 3)) after a JPEG round trip at `quality`: blocking, flattened gradients."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))
