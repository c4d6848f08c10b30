"""A dataset root in the reference design's layout, checked whole before training.

Layout: ROOT/{train,val}/{clean,corrupted,mask}/NAME.png, pairs matched by NAME, mask non-zero
(255 or 1) = corrupted. `check_dataset` reads every file's header and decodes it before training
starts, so a missing partner, a size mismatch or an unreadable file is named up front, not at
step 9000, and one run names every problem (up to `MAX_LISTED`, and how many more).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from PIL import Image

from restore_core.photos import IMAGE_SUFFIXES

SPLITS = ("train", "val")
KINDS = ("clean", "corrupted", "mask")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file or folder."""


def list_images(folder: Path) -> Dict[str, Path]:
    files: Dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in files:
                raise DatasetError(f"{p}: two files named {p.stem!r} in {folder} ({files[p.stem].name}, {p.name})")
            files[p.stem] = p
    return files


def _header(path: Path) -> Tuple[int, int]:
    """(width, height) of an image after checking that the whole file decodes."""
    try:
        with Image.open(path) as im:
            size = im.size
            im.load()  # decodes the data: a truncated or corrupt file fails here, not in training
    except Exception as e:
        raise DatasetError(f"{path}: unreadable image ({type(e).__name__}: {str(e)[:120]})") from None
    return size


MAX_LISTED = 10  # problems named in the one-line error; the count says how many more


def check_dataset(root: str | os.PathLike, splits: Sequence[str] = SPLITS,
                  min_size: int = 0) -> Dict[str, List[str]]:
    """Check a dataset root before training and return the sorted sample names of each split.

    Every sample is checked, so one run names every problem (up to `MAX_LISTED` of them, and how
    many more), not only the first.

    Args:
        root: dataset root in the reference design's layout.
        splits: which splits must be present.
        min_size: the training crop; every `train` image must be at least this large.

    Raises:
        DatasetError: naming each missing folder, empty folder, missing partner, unreadable
            file or size mismatch, on one line.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root does not exist")
    names: Dict[str, List[str]] = {}
    problems: List[str] = []
    for split in splits:
        files = {}
        for kind in KINDS:
            folder = root / split / kind
            if not folder.is_dir():
                problems.append(f"{folder}: missing folder (expected ROOT/{{train,val}}/{{clean,corrupted,mask}})")
                continue
            files[kind] = list_images(folder)
            if not files[kind]:
                problems.append(f"{folder}: no images")
        if len(files) != len(KINDS) or not all(files.values()):
            continue  # the pairs of a split with a missing folder cannot be checked
        all_names = sorted(set().union(*(f.keys() for f in files.values())))
        for name in all_names:
            problems.extend(_check_sample(root, split, name, files, min_size))
        names[split] = all_names
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = f" (and {len(problems) - MAX_LISTED} more)" if len(problems) > MAX_LISTED else ""
        head = f"{len(problems)} problems in {root}: " if len(problems) > 1 else ""
        raise DatasetError(head + listed + more)
    return names


def _check_sample(root: Path, split: str, name: str, files: Dict[str, Dict[str, Path]], min_size: int) -> List[str]:
    """The problems of one sample: a missing partner, an unreadable file, a size mismatch, too small."""
    have = [k for k in KINDS if name in files[k]]
    missing = [k for k in KINDS if k not in have]
    if missing:
        partner = files[have[0]][name]
        return [f"{root / split / kind / (name + '.png')}: missing (partner of {partner})" for kind in missing]
    sizes, problems = {}, []
    for kind in KINDS:
        try:
            sizes[kind] = _header(files[kind][name])
        except DatasetError as e:
            problems.append(str(e))
    if problems:
        return problems
    w, h = sizes["clean"]
    for kind in KINDS:
        if sizes[kind] != (w, h):
            ow, oh = sizes[kind]
            problems.append(f"{files[kind][name]}: size {ow}x{oh} differs from {files['clean'][name]} ({w}x{h})")
    if not problems and split == "train" and min(w, h) < min_size:
        problems.append(f"{files['clean'][name]}: {w}x{h} is smaller than the training crop {min_size}")
    return problems
