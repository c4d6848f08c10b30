"""Walking INPUT: every entry of the tree is looked at on its own, and every one is accounted for.

An entry becomes one of three things:

- an image to restore: a regular file (or a link to one) with a suffix the runner restores;
- skipped, with the reason: a file that is not an image, an image format the runner does not
  restore (`.heic`, `.psd`, ...), a symlinked folder that leads to a folder already walked (a loop
  back to a parent, or a second way into the same folder);
- failed, with the reason: an entry named like an image that cannot be one (a FIFO, socket or
  device: never opened, so a FIFO cannot hang the run; a broken link; a symlink loop), and a
  folder that cannot be read (its images would otherwise be missed without a word).

Names are carried as the OS gives them (`os.scandir` on a str path: bytes that are not UTF-8
become lone surrogates, and `os.fsencode` gives them back); messages show them escaped.

Symlinked folders are followed, like links to files, but each folder is walked once: the real
tree is walked first, then the links, so a link to a folder INPUT already holds is named and not
followed (its images are restored under their real path), and a loop cannot recurse. The walk
holds a stack, not recursion, so no depth of folders can end it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from runtime.images import SUFFIX_FORMAT
from runtime.report import NOT_AN_IMAGE

# Image formats the runner does not restore: named when skipped, and a broken entry with one of
# these suffixes fails (it was meant to be an image). Not exhaustive; anything else is "not an image".
OTHER_IMAGE_SUFFIXES = frozenset(
    ".apng .avif .heic .heif .jxl .jp2 .j2k .jpx .ico .cur .icns .psd .psb .xcf .tga .pcx .ppm .pgm .pbm "
    ".pnm .pfm .qoi .dds .exr .hdr .svg .svgz .eps .dib .xbm .xpm .sgi .ras .raw .dng .cr2 .cr3 .crw .nef .nrw "
    ".arw .srf .sr2 .orf .rw2 .raf .pef .srw .x3f .kdc .erf .mos .3fr .iiq".split()
)
RESTORED = ", ".join(sorted(SUFFIX_FORMAT))
_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"))

Identity = Tuple[int, int]  # (st_dev, st_ino): one folder, however it is reached


@dataclass
class Entry:
    path: Path  # as the OS names it
    rel: str  # relative to the walked folder, '/'-separated; a folder's ends with '/'
    status: str = "image"  # image | skipped | failed
    reason: str = ""


def restorable(name: str) -> bool:
    return Path(name).suffix.lower() in SUFFIX_FORMAT


def image_like(name: str) -> bool:
    suffix = Path(name).suffix.lower()
    return suffix in SUFFIX_FORMAT or suffix in OTHER_IMAGE_SUFFIXES


def skip_reason(name: str) -> str:
    """Why a regular file that is not restorable is skipped."""
    if image_like(name):
        return f"{Path(name).suffix.lower()} images are not restored (only {RESTORED})"
    return NOT_AN_IMAGE


def file_kind(mode: int) -> Optional[str]:
    """'FIFO', 'socket', ... for a special file; None for a regular file or a folder."""
    return next((name for test, name in _KINDS if test(mode)), None)


def walk_order(rel: str):
    """The order of `os.walk` (top-down, sorted): a folder's files before its sub-folders' entries."""
    parts = rel.rstrip("/").split("/") if rel.endswith("/") else rel.split("/")
    if rel.endswith("/"):  # a folder's own record comes first among its entries
        return tuple(parts), ""
    return tuple(parts[:-1]), parts[-1]


def identity(path: os.PathLike | str) -> Optional[Identity]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def scan(root: Path, exclude: Iterable[Path] = ()) -> List[Entry]:
    """Every entry under the folder `root`, in walk order, never entering or listing `exclude`
    (OUTPUT inside INPUT, the report)."""
    walker = _Walker(root, exclude)
    walker.run()
    return sorted(walker.entries, key=lambda e: walk_order(e.rel))


class _Walker:
    def __init__(self, root: Path, exclude: Iterable[Path]):
        self.root = root
        self.excluded = {i for i in map(identity, exclude) if i is not None}
        self.walked: Dict[Identity, str] = {}  # folder → the relative name it was walked as
        self.entries: List[Entry] = []
        self.links: List[Tuple[Path, str]] = []  # symlinked folders, followed after the real tree

    def run(self) -> None:
        self._walk(self.root, "")
        while self.links:
            self._walk(*self.links.pop(0))

    def _walk(self, top: Path, top_rel: str) -> None:
        stack = [(top, top_rel)]
        while stack:
            folder, rel = stack.pop()
            if self._seen(folder, rel):
                continue
            try:
                with os.scandir(folder) as it:
                    children = sorted(it, key=lambda e: e.name)
            except OSError as e:
                self._add(folder, rel or "./", "failed", f"folder not read ({e.strerror or e}): the images in it "
                                                         f"are not restored")
                continue
            for child in children:
                sub = self._entry(child, rel + child.name)
                if sub is not None:
                    stack.append((sub, rel + child.name + "/"))

    def _seen(self, folder: Path, rel: str) -> bool:
        """True (with a line where it matters) for a folder not to walk: excluded, or walked already."""
        ident = identity(folder)
        if ident is None or ident in self.excluded:
            return True
        earlier = self.walked.get(ident)
        if earlier is None:
            self.walked[ident] = rel
            return False
        if rel.startswith(earlier):
            self._add(folder, rel, "skipped", f"symlink loop back to {earlier or './'}: not followed")
        else:
            self._add(folder, rel, "skipped", f"the same folder as {earlier}, restored there: not followed again")
        return True

    def _entry(self, child: os.DirEntry, rel: str) -> Optional[Path]:
        """Record one entry; a real sub-folder is returned to be walked."""
        path = Path(child.path)
        try:
            st = os.stat(path)  # follows links; a FIFO's stat does not open it
        except FileNotFoundError:
            if child.is_symlink():
                self._broken(path, rel, "broken symbolic link (its target does not exist)")
            return None  # removed while its folder was read: nothing there to restore
        except OSError as e:
            self._broken(path, rel, "symlink loop" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror or e})")
            return None
        if stat.S_ISDIR(st.st_mode):
            if child.is_symlink():
                self.links.append((path, rel + "/"))
                return None
            return path
        if (st.st_dev, st.st_ino) in self.excluded:
            return None
        if not stat.S_ISREG(st.st_mode):
            self._broken(path, rel, f"a {file_kind(st.st_mode) or 'special file'}, not a regular file: not opened")
        elif restorable(rel):
            self._add(path, rel, "image")
        else:
            self._add(path, rel, "skipped", skip_reason(rel))
        return None

    def _broken(self, path: Path, rel: str, reason: str) -> None:
        """An entry that cannot be read: a failure when it is named like an image, else a skip."""
        self._add(path, rel, "failed" if image_like(rel) else "skipped", reason)

    def _add(self, path: Path, rel: str, status: str, reason: str = "") -> None:
        self.entries.append(Entry(path, rel, status, reason))
