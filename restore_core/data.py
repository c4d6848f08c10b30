"""Training data: paired folders in the reference design's layout, on-the-fly synthesis, and the sampler.

Layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png, pairs matched by NAME, mask non-zero
(255 or 1) = corrupted; restore_core/dataset_check.py checks a root whole before training.

Every sample is drawn from its own generator, `sample_rng(seed, stream, epoch, index)`, and the
sampler's order from (seed, epoch): a sample does not depend on which worker or rank makes it,
so DataLoader workers, DDP ranks and `--resume` all see the same data.

Datasets return uint8 tensors (corrupted (3, H, W), clean (3, H, W), mask bool (1, H, W)); the
training step normalizes on the device (a quarter of the bytes to move).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from restore_core.dataset_check import KINDS, SPLITS, DatasetError, list_images
from restore_core.degrade import DegradeConfig, degrade_pair, source_side
from restore_core.fileio import atomic_save_png
from restore_core.photos import (
    BUNDLED_GREY,
    ZOOM,
    bundled_grey_photos,
    bundled_photos,
    hue_rotate,
    load_folder_images,
    random_crop,
    split_sources,
    vivid,
)
from restore_core.scenes import jpeg, render_scene
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng

TRAIN_STREAM, VAL_STREAM = 0, 1  # independent random streams for the two splits

Sample = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # corrupted, clean, mask


def _to_tensors(corrupted: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> Sample:
    chw = lambda a: torch.from_numpy(np.array(a)).permute(2, 0, 1).contiguous()  # noqa: E731
    return chw(corrupted), chw(clean), torch.from_numpy(np.array(mask))[None]  # (3,H,W) x2, (1,H,W)


def _augment_pair(arrays: Sequence[np.ndarray], crop: Optional[int], rng: np.random.Generator,
                  flips: bool = True) -> List[np.ndarray]:
    """The same random crop (and flips and 90-degree rotation) applied to every array of a sample."""
    h, w = arrays[0].shape[:2]
    if crop is not None and (h > crop or w > crop):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        arrays = [a[y : y + crop, x : x + crop] for a in arrays]
    if not flips:
        return list(arrays)
    hflip, vflip, k = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(0, 4))
    out = []
    for a in arrays:
        a = a[:, ::-1] if hflip else a
        a = a[::-1] if vflip else a
        out.append(np.rot90(a, k=k))
    return out


# ---------------------------------------------------------------------------------------------
# Paired folders.


class PairedFolderDataset(Dataset):
    """Samples of one split of a dataset root, matched by name.

    Args:
        root: dataset root (run `check_dataset` first; this class assumes a sound layout).
        split: "train" or "val".
        crop: random crop side for training (None: whole images).
        augment: random crop, flips and 90-degree rotations, identical for the three images.
        seed: with the epoch and index, picks each sample's augmentation.
    """

    def __init__(self, root: str | os.PathLike, split: str, crop: Optional[int] = None,
                 augment: bool = False, seed: int = 0):
        self.dir = Path(root) / split
        self.files = {k: list_images(self.dir / k) for k in KINDS}
        self.names = sorted(self.files["clean"])
        self.crop, self.augment, self.seed, self.epoch = crop, augment, seed, 0
        self.stream = TRAIN_STREAM if split == "train" else VAL_STREAM

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.names)

    def read(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample `i` as numpy: corrupted, clean uint8 (H, W, 3) and mask bool (H, W)."""
        name = self.names[i]
        with Image.open(self.files["corrupted"][name]) as im:
            corrupted = np.asarray(im.convert("RGB"))
        with Image.open(self.files["clean"][name]) as im:
            clean = np.asarray(im.convert("RGB"))
        with Image.open(self.files["mask"][name]) as im:
            mask = np.asarray(im.convert("L")) > 0  # 255 or 1 = corrupted
        return corrupted, clean, mask

    def __getitem__(self, i: int) -> Sample:
        corrupted, clean, mask = self.read(i)
        if self.augment or self.crop is not None:
            rng = sample_rng(self.seed, self.stream, self.epoch, i)
            corrupted, clean, mask = _augment_pair([corrupted, clean, mask], self.crop, rng, flips=self.augment)
        return _to_tensors(corrupted, clean, mask)


# ---------------------------------------------------------------------------------------------
# On-the-fly synthesis.


class SyntheticDataset(Dataset):
    """Clean crops of source photos, corrupted as they are loaded: endless variety, no disk.

    Args:
        images: source images, uint8 (H, W, 3).
        size: crop side.
        length: samples per epoch.
        seed: with (stream, epoch, index) determines every sample.
        corruption: what to draw.
        augment: scale, flips, rotations, colour and texture changes of the crops.
        stream: separates the train and val streams of one seed.
        fixed: the same samples every epoch (a validation set).
        weights: relative odds of drawing each image (None: uniform).
        scenes: share of samples that are procedural man-made scenes (`scenes.render_scene`)
            instead of photo crops.
        sky: share of those scenes that are mostly open sky.
        jpeg: share of photo crops re-compressed as JPEG (quality 40-95) before corruption,
            as most photos a user restores are.
        vivid: share of photo crops with their saturation raised until colours clip
            (`photos.vivid`), before any JPEG step.
        hue: share of photo crops turned to a random hue (`photos.hue_rotate`), before `vivid`.
        degraded: share of samples put through `degrade`'s save chain after painting (the mask
            becomes the damage in the saved file, the clean target the clean image saved alike).
        unpainted: share of samples with nothing painted (corrupted = clean, empty mask).
        degrade: the save chain's odds and ranges (`DegradeConfig()` when None).
        zoom: (min, max) source window side per crop side of an augmented photo crop
            (`photos.random_crop`).
    """

    def __init__(self, images: Sequence[np.ndarray], size: int, length: int, seed: int,
                 corruption: CorruptionConfig | None = None, augment: bool = True,
                 stream: int = TRAIN_STREAM, fixed: bool = False,
                 weights: Optional[Sequence[float]] = None, scenes: float = 0.0, sky: float = 0.0,
                 jpeg: float = 0.0, vivid: float = 0.0, hue: float = 0.0, degraded: float = 0.0,
                 unpainted: float = 0.0, degrade: DegradeConfig | None = None,
                 zoom: Tuple[float, float] = ZOOM):
        if not images:
            raise DatasetError("no source images to synthesize from")
        if weights is not None and (len(weights) != len(images) or min(weights) < 0 or sum(weights) <= 0):
            raise DatasetError(f"need one non-negative weight per source image, got {list(weights)}")
        shares = (("scenes", scenes), ("sky", sky), ("jpeg", jpeg), ("vivid", vivid), ("hue", hue),
                  ("degraded", degraded), ("unpainted", unpainted))
        for name, share in shares:
            if not 0.0 <= share <= 1.0:
                raise DatasetError(f"the share {name} must lie in [0, 1], got {share}")
        self.images = list(images)
        self.p = None if weights is None else np.asarray(weights, np.float64) / float(sum(weights))
        self.size, self.length, self.seed = size, length, seed
        self.scenes, self.sky, self.jpeg, self.vivid, self.hue = scenes, sky, jpeg, vivid, hue
        self.degraded, self.unpainted, self.degrade = degraded, unpainted, degrade or DegradeConfig()
        self.corruption = corruption or CorruptionConfig()
        self.zoom = tuple(zoom)
        self.augment, self.stream, self.fixed, self.epoch = augment, stream, fixed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def sample(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample `i` as numpy: corrupted, clean uint8 (size, size, 3) and mask bool (size, size)."""
        rng = sample_rng(self.seed, self.stream, 0 if self.fixed else self.epoch, i)
        # Each share draws from the generator only when set, so configs without it reproduce
        # the samples they always had.
        saved = bool(self.degraded) and rng.random() < self.degraded
        side = source_side(self.size, rng, self.degrade) if saved else self.size  # painted at, before any resize
        clean = self._clean(side, rng)
        if self.unpainted and rng.random() < self.unpainted:
            corrupted, mask = clean.copy(), np.zeros(clean.shape[:2], bool)
        else:
            corrupted, mask = corrupt(clean, rng, self.corruption)
        if saved:
            clean, corrupted, mask = degrade_pair(clean, corrupted, mask, self.size, rng, self.degrade)
        return corrupted, clean, mask

    def _clean(self, side: int, rng: np.random.Generator) -> np.ndarray:
        """The clean image of a sample, uint8 (side, side, 3): a procedural scene or a varied photo crop."""
        if self.scenes and rng.random() < self.scenes:
            return render_scene(side, rng, sky=self.sky)
        k = int(rng.integers(len(self.images))) if self.p is None else int(rng.choice(len(self.images), p=self.p))
        clean = random_crop(self.images[k], side, rng, augment=self.augment, zoom=self.zoom)
        if self.hue and rng.random() < self.hue:
            clean = hue_rotate(clean, rng)
        if self.vivid and rng.random() < self.vivid:
            clean = vivid(clean, rng)
        if self.jpeg and rng.random() < self.jpeg:
            clean = jpeg(clean, int(rng.integers(40, 96)))
        return clean

    def __getitem__(self, i: int) -> Sample:
        return _to_tensors(*self.sample(i))


GREY_WEIGHT = 0.5  # odds of one grey photo against one colour photo when training on the bundled set


def source_images(source: str | os.PathLike | None, grey: bool = False) -> Tuple[list, list]:
    """(train, val) lists of (name, image) from a folder or the bundled photos, val held out.

    With `grey` (bundled photos only), scikit-image's grey photos join the training list after
    the colour ones; validation stays on the held-out colour photos.
    """
    if source is None:
        train, val = split_sources(list(bundled_photos().items()), bundled=True)
        if grey:
            train = train + list(bundled_grey_photos().items())
        return train, val
    return split_sources(load_folder_images(source), bundled=False)


def source_weights(names: Sequence[str]) -> List[float]:
    """Sampling odds per source image: grey bundled photos count `GREY_WEIGHT` of a colour one."""
    return [GREY_WEIGHT if n in BUNDLED_GREY else 1.0 for n in names]


def _save_sample(split_root: Path, name: str, clean, corrupted, mask) -> None:
    """Write one sample's three files, or none: a sample stopped between its files (Ctrl-C, a
    full disk) would otherwise leave a clean image without its mask, which the dataset check
    refuses only when training starts."""
    files = {split_root / "clean" / name: clean, split_root / "corrupted" / name: corrupted,
             split_root / "mask" / name: mask}
    try:
        for path, pixels in files.items():
            atomic_save_png(pixels, path)
    except BaseException:
        for path in files:  # an earlier run's files of this name too: they belong to another draw
            path.unlink(missing_ok=True)
        raise


def synthesize_dataset(out_root: str | os.PathLike, count: int, size: int, seed: int,
                       source: str | os.PathLike | None = None, val_count: Optional[int] = None,
                       corruption: CorruptionConfig | None = None, overwrite: bool = False,
                       progress: bool = False) -> Dict[str, int]:
    """Write a synthetic dataset in the reference design's layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png.

    Validation samples come from photos held out of training (see `photos.split_sources`).
    Every file is written atomically; the same arguments give the same bytes.

    Args:
        out_root: dataset root to create.
        count: training samples.
        size: side of the square samples.
        seed: makes the dataset reproducible.
        source: folder of clean images (default: scikit-image's bundled photos).
        val_count: validation samples (default: a tenth of `count`, at least 1).
        corruption: what to draw.
        overwrite: allow writing into a root whose splits already hold files.
        progress: show a progress bar.

    Returns:
        {"train": n_train, "val": n_val}.
    """
    if count < 1 or size < 1:
        raise DatasetError(f"count and size must be positive, got count={count} size={size}")
    val_count = max(1, count // 10) if val_count is None else val_count
    if val_count < 1:
        raise DatasetError(f"val count must be positive, got {val_count}")
    out_root = Path(out_root)
    for split in SPLITS:
        d = out_root / split
        if not overwrite and d.is_dir() and any(d.rglob("*.png")):
            raise DatasetError(f"{d}: already holds images; use an empty folder or --overwrite")
    train_imgs, val_imgs = source_images(source)
    plan = [
        ("train", SyntheticDataset([a for _, a in train_imgs], size, count, seed, corruption,
                                   augment=True, stream=TRAIN_STREAM, fixed=True)),
        ("val", SyntheticDataset([a for _, a in val_imgs], size, val_count, seed, corruption,
                                 augment=False, stream=VAL_STREAM, fixed=True)),
    ]
    from tqdm import tqdm

    width = max(6, len(str(max(count, val_count) - 1)))
    for split, ds in plan:
        for i in tqdm(range(len(ds)), desc=split, disable=not progress, unit="img"):
            corrupted, clean, mask = ds.sample(i)
            _save_sample(out_root / split, f"{i:0{width}d}.png", clean, corrupted, mask.astype(np.uint8) * 255)
    return {"train": count, "val": val_count}


# ---------------------------------------------------------------------------------------------
# Sampling and worker seeding.


class EpochBatchSampler(Sampler[List[int]]):
    """Batches of a fixed shuffle per (seed, epoch), sharded across DDP ranks, resumable mid-epoch.

    Each step takes `batch_size * world_size` consecutive indices of the epoch's permutation,
    rank r the r-th slice. The permutation is padded by wrapping around so every rank sees the
    same number of full batches (BatchNorm and DDP both want that).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool = True, rank: int = 0,
                 world_size: int = 1):
        if n < 1:
            raise DatasetError("the training set is empty")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0
        self.steps_per_epoch = math.ceil(n / (batch_size * world_size))

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Start `epoch`, leaving out its first `skip` steps (already taken before a resume)."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.steps_per_epoch - self.skip

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        glob = self.batch_size * self.world_size
        total = self.steps_per_epoch * glob
        perm = (perm * math.ceil(total / self.n))[:total]
        for step in range(self.skip, self.steps_per_epoch):
            start = step * glob + self.rank * self.batch_size
            yield perm[start : start + self.batch_size]


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed numpy and random from the worker's torch seed.

    Samples draw from their own generators, so this only guards code that uses the global
    generators; the worker's torch seed comes from the loader's seeded generator.
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
