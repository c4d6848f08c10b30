"""Where a command will write, checked before any slow work: nothing of the user's is replaced.

Every command that writes (a checkpoint folder, a report, an exported model, a folder of
results) asks here first, with the names it was given:

- `check_file`: a file the command writes is refused when it is given as an empty path, is a
  folder, is one of the command's inputs or one of its other outputs (even with `--overwrite`:
  replacing the checkpoint a run reads, or a JSON report with its own Markdown, loses one of
  them), exists and is not this tool's own earlier output (unless `--overwrite`), or lies in a
  folder that cannot be written.
- `check_folder`: a folder the command writes into is refused when it is given as an empty path,
  is a file, already holds what the command writes (unless `--overwrite`), or cannot be written.

Each refusal is a `TargetError`, which `restore_toolkit.console.handle_errors` prints as one line
naming the option, the path and the way out, with exit code 1.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional


class TargetError(Exception):
    """A place a command would write that it must not or cannot write."""


def _probe(folder: Path, what: str, path: os.PathLike) -> None:
    """Make `folder` (and its parents) and write a throwaway file there, or say why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe.", suffix=".tmp"):
            pass
    except OSError as e:
        raise TargetError(f"{what} {path}: cannot write there ({e.strerror or type(e).__name__})") from None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_file(path: Optional[os.PathLike | str], option: str, overwrite: bool = False,
               inputs: Iterable[os.PathLike | str] = (), outputs: Iterable[os.PathLike | str] = (),
               ours: Optional[Callable[[Path], bool]] = None) -> Path:
    """`path` as a Path once it may be written (see the module docstring).

    Args:
        option: how the user named it (`--report`, `OUTPUT`), for the message.
        overwrite: the command's --overwrite: an existing file may be replaced.
        inputs, outputs: the files the command reads and its other outputs (None entries skipped).
        ours: says whether an existing file is this tool's own output of the same kind (replaced
            without --overwrite, as a rerun's report is).
    """
    if path is None or str(path).strip() == "":
        raise TargetError(f"{option}: an empty path; give a file name")
    target = Path(path)
    if target.is_dir():
        raise TargetError(f"{option} {target}: is a folder; give a file name")
    for kind, others in (("an input", inputs), ("another output", outputs)):
        for other in others:
            if other is not None and str(other) != "" and _same(target, Path(other)):
                raise TargetError(f"{option} {target}: is also {kind} of this command ({other}); give another name")
    if target.exists() and not overwrite and not (ours is not None and ours(target)):
        raise TargetError(f"{option} {target}: already exists; pass --overwrite to replace it, or give another name")
    _probe(target.parent, option, target)
    return target


def check_folder(path: Optional[os.PathLike | str], option: str, overwrite: bool = False,
                 writes: Iterable[str] = ()) -> Path:
    """`path` as a Path once the command may write into it: not empty text, not a file, holding
    none of the names in `writes` (the files and folders the command puts there) unless
    `overwrite`, and writable (made if missing)."""
    if path is None or str(path).strip() == "":
        raise TargetError(f"{option}: an empty path; give a folder")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise TargetError(f"{option} {folder}: is a file; give a folder")
    held = sorted(name for name in writes if (folder / name).exists())
    if held and not overwrite:
        raise TargetError(f"{option} {folder}: already holds {', '.join(held)}; pass --overwrite to replace "
                          "them, or give another folder")
    _probe(folder, option, folder)
    return folder
