"""Clean source images: scikit-image's bundled photos or a user's folder, cut into augmented crops.

The model's hard part is generalization, not fitting: trained on crops of a handful of photos it
learns "not one of my photos" instead of "a drawn shape". So every crop is varied as much as is
cheap: random scale (zoom in and out), flips, 90-degree rotations, and colour and texture changes
(channel order, gain, contrast, saturation, gamma, inversion, blur, noise). More and other source
photos (`--source DIR`) help more than anything else.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageFilter

# The colour photos inside the scikit-image wheel that load with no download (pooch-fetched
# ones like `eagle` or `lily` would need the network). `cat` is `chelsea` again, so it is not
# listed: a held-out photo must not come back under another name.
BUNDLED = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)

# The grey photos and textures of the same wheel: more scenes (a camera operator, a clock,
# coins, a page, lettering, brick, grass, gravel, the moon, cells), given colour by the
# augmentation. Left out: synthetic images made of flat shapes (checkerboard, logo, horse,
# shepp_logan_phantom), which look exactly like the corruptions the model must find.
BUNDLED_GREY = ("brick", "camera", "cell", "clock", "coins", "grass", "gravel", "moon", "page", "text")

# Held out of training by default, so validation measures photos the model has not seen.
BUNDLED_VAL = ("chelsea", "rocket")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class SourceError(ValueError):
    """A source folder or image that cannot be used; the message names it."""


@lru_cache(maxsize=2)
def _bundled(names: Tuple[str, ...]) -> Tuple[Tuple[str, np.ndarray], ...]:
    """scikit-image's photos `names` as read-only uint8 (H, W, 3); grey ones get R = G = B."""
    import skimage.data

    out = []
    for name in names:
        img = getattr(skimage.data, name)()
        if isinstance(img, tuple):  # stereo_motorcycle -> (left, right, disparity)
            img = img[0]
        img = np.asarray(img, dtype=np.uint8)
        if img.ndim == 2:  # (H, W) grey
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.ascontiguousarray(img[..., :3])  # (H, W, 3)
        img.setflags(write=False)  # shared by every caller: nobody may draw on the cache
        out.append((name, img))
    return tuple(out)


def bundled_photos() -> Dict[str, np.ndarray]:
    """scikit-image's offline colour photos as uint8 (H, W, 3) RGB arrays (read-only), cached in-process."""
    return dict(_bundled(BUNDLED))


def bundled_grey_photos() -> Dict[str, np.ndarray]:
    """scikit-image's offline grey photos and textures, as uint8 (H, W, 3) with R = G = B (read-only)."""
    return dict(_bundled(BUNDLED_GREY))


def load_folder_images(folder: str | os.PathLike) -> List[Tuple[str, np.ndarray]]:
    """Every image directly inside `folder` (sorted by name) as uint8 (H, W, 3) RGB.

    Raises:
        SourceError: the folder is missing or holds no image, or an image cannot be decoded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: source folder does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the source folder")
    out = []
    for p in files:
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # PIL raises many types for bad files
            raise SourceError(f"{p}: unreadable image ({type(e).__name__}: {str(e)[:120]})") from None
        out.append((p.stem, arr))
    return out


def split_sources(images: List[Tuple[str, np.ndarray]], bundled: bool) -> Tuple[list, list]:
    """Split source images into (train, val) so validation uses photos training never saw.

    Bundled photos: `BUNDLED_VAL` are held out. A folder: every fourth image (sorted by name) is
    held out. With a single image there is nothing to hold out and both splits use it.
    """
    if len(images) < 2:
        return list(images), list(images)
    if bundled:
        val = [x for x in images if x[0] in BUNDLED_VAL]
    else:
        val = [x for i, x in enumerate(images) if i % 4 == 3] or [images[-1]]
    val_names = {n for n, _ in val}
    return [x for x in images if x[0] not in val_names], val


# ---------------------------------------------------------------------------------------------
# Crops and augmentation.


ZOOM = (0.5, 3.0)  # source window side / crop side, log-uniform: what the shipped model trained on


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, augment: bool = True,
                zoom: Tuple[float, float] = ZOOM) -> np.ndarray:
    """A random `size`x`size` crop of `img` (uint8 (H, W, 3)), augmented when `augment`.

    Args:
        img: source image, uint8 (H, W, 3); left untouched.
        size: side of the output crop in pixels.
        rng: the sample's own generator, so a crop is reproducible from (seed, index).
        augment: random scale, flips, rotations, colour and texture changes; without it, a plain
            crop (resized only when the image is smaller than `size`).
        zoom: (min, max) side of the source window as a multiple of `size`, drawn log-uniform
            when `augment`: below 1 the window is scaled up (the smooth pixels of a camera-size
            photo), above 1 scaled down.

    Returns:
        uint8 (size, size, 3).
    """
    h, w = img.shape[:2]
    short = min(h, w)
    if augment:
        # Source window side, log-uniform in `zoom` times the output: zooming in and out changes
        # the apparent scale of texture, which the photos alone don't vary.
        lo, hi = min(size * zoom[0], short), min(size * zoom[1], short)
        side = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi))))) if hi > lo else int(lo)
    else:
        side = min(size, short)
    side = max(1, side)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = img[y : y + side, x : x + side]  # (side, side, 3)
    if side != size:
        # PIL's resize filters with a support scaled to the ratio, so downscaling is antialiased.
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR))
    if not augment:
        return np.ascontiguousarray(crop, dtype=np.uint8)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    crop = np.rot90(crop, k=int(rng.integers(0, 4)))
    return colour_texture_jitter(np.ascontiguousarray(crop), rng)


def saturate(x: np.ndarray, gain: float) -> np.ndarray:
    """Float colours (H, W, 3) moved away from their grey (gain > 1) or towards it (gain < 1)."""
    gray = x.mean(axis=2, keepdims=True)  # (H, W, 1)
    return gray + gain * (x - gray)


def colour_texture_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random colour and texture changes of a uint8 (H, W, 3) image; returns a new uint8 array."""
    x = img.astype(np.float32)  # (H, W, 3) in 0..255
    if rng.random() < 0.5 and np.array_equal(img[..., 0], img[..., 2]):
        # A grey source: map black..white to a random dark..light colour pair, so grey
        # photos become coloured surfaces (a duotone) instead of only grey ones.
        lo, hi = rng.uniform(0, 90, size=3), rng.uniform(165, 255, size=3)
        x = lo + (x / 255.0) * (hi - lo)
    if rng.random() < 0.5:
        x = x[..., rng.permutation(3)]  # a cheap, large hue change
    if rng.random() < 0.8:
        x = saturate(x, 0.0 if rng.random() < 0.1 else rng.uniform(0.5, 1.5))
        mean = x.mean()
        x = mean + rng.uniform(0.7, 1.3) * (x - mean)  # contrast
        x = x * rng.uniform(0.85, 1.15, size=3).astype(np.float32)  # per-channel gain (white balance)
        x = x + rng.uniform(-25.0, 25.0)  # brightness
    if rng.random() < 0.15:
        # Over- or under-exposure: clipped highlights and crushed shadows are perfectly flat
        # in real photos (a lamp, a bright sky) and must not be mistaken for a drawn shape.
        x = x * rng.uniform(1.3, 2.2) if rng.random() < 0.6 else (x - rng.uniform(20, 80)) * 1.2
    x = np.clip(x, 0.0, 255.0)
    if rng.random() < 0.3:
        x = 255.0 * (x / 255.0) ** rng.uniform(0.7, 1.5)
    if rng.random() < 0.1:
        x = 255.0 - x
    out = np.round(x).astype(np.uint8)
    if rng.random() < 0.15:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5))))
    if rng.random() < 0.2:
        noise = rng.normal(0.0, rng.uniform(1.0, 8.0), size=out.shape)
        out = np.clip(np.round(out + noise), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out, dtype=np.uint8)


VIVID_GAIN = (1.6, 3.0)  # saturation gain of a vivid crop: many pixels clip to a pure hue


def vivid(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`img` (uint8 (H, W, 3)) with its saturation raised until colours clip, as a new array.

    Petals, lit signs and dark backgrounds of one pure hue have a channel at 0 or 255 over
    large areas. The bundled photos hold few such colours; these crops add them to training.
    """
    x = saturate(img.astype(np.float32), rng.uniform(*VIVID_GAIN))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def hue_rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`img` (uint8 (H, W, 3)) with every colour turned about the grey axis by one random angle.

    The channel permutations of `colour_texture_jitter` reach six hues of a photo; a turn by
    any angle reaches all of them, so no hue (a dark teal, say) is rarer than its neighbours.
    Greys stay grey and the brightness (the channel mean) is kept before clipping.
    """
    theta = rng.uniform(0.0, 2.0 * math.pi)
    k = np.full(3, 1.0 / math.sqrt(3.0))  # the grey axis, unit length
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    rot = np.eye(3) + math.sin(theta) * kx + (1.0 - math.cos(theta)) * (kx @ kx)  # Rodrigues
    x = img.astype(np.float32) @ rot.T.astype(np.float32)  # (H, W, 3)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
