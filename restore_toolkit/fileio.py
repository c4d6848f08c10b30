"""Atomic, durable file writes: every artifact appears complete or not at all.

The one implementation for the whole project. It lives in the torch-free runtime and uses the
standard library only, so the deployment install has it and `restore_core` re-exports it
(`restore_core.fileio`) without anything heavy being imported on either side.

A write goes to a hidden temp file beside the target, is flushed to the disk (`fsync`), and is
renamed over the target; the folder is then synced so the rename itself survives a power cut.
The temp name carries the writer's process id, so a later run can tell a temp file orphaned by
a killed process (remove it) from one another live run is still writing (leave it). It is kept
within the file system's name limit (a legal 255-byte name gets a shortened temp name).

Files that belong together (an image and its mask) are written as a group: every temp file is
written in full first, and only then are they renamed, so they land together or not at all.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

# .NAME.PID.XXXXXXXX.tmp: mkstemp's random part is 8 characters of [a-z0-9_].
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")


NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems; asked where possible


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or the folder is not there yet
        return NAME_MAX


def _temp_prefix(path: Path) -> str:
    """`.NAME.PID.`, NAME shortened so that the whole temp name fits the folder's name limit."""
    tail = f".{os.getpid()}."
    room = _name_max(path.parent) - len(os.fsencode(f".{tail}XXXXXXXX.tmp"))
    name = path.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{tail}"


def _new_temp(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _file_mode(mode: Optional[int]) -> int:
    """The final file's permission bits: `mode` (e.g. an input's) within the umask, else the umask's default."""
    return (0o666 if mode is None else mode & 0o666) & ~_UMASK


def _fsync_dir(folder: Path) -> None:
    # Makes the rename durable. Not every platform or file system lets a folder be opened or
    # synced (Windows, some network mounts): the data itself is already synced then.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True, mode: Optional[int] = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`.

    The temp file is created in the destination folder (same file system, so `os.replace` is an
    atomic rename); on any exception it is removed and `path` is left as it was. The final file
    gets the usual umask-derived permissions rather than mkstemp's 0600, so a model written by
    one user can be served by another (or `mode`'s read/write bits, within the umask).

    Args:
        path: the file to write.
        durable: fsync the data before the rename and the folder after it (a rename alone is
            atomic but not durable: after a power cut the file may be there and empty).
        mode: permission bits to keep (an input's, so a private input gives a private output).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_temp(path)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode(mode))
        if durable:
            _fsync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    # The writer inside the `with` block may have used any API (torch.save, onnx.save, Pillow),
    # so the data is synced through a fresh descriptor; fsync covers the file, not the descriptor.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is unsafe while writer
# threads create files.
_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` atomically (and durably unless `durable=False`)."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_group(files: Sequence[Tuple[str | os.PathLike, bytes]], durable: bool = True,
                       mode: Optional[int] = None) -> None:
    """Write several files so that they all appear, or none of them (an image and its mask).

    Every file is written in full to its temp file (and synced) before the first rename, so a
    full disk or a write error leaves nothing. A rename that fails after others succeeded (rare:
    the data is already on disk) takes those back: files they replaced are put back from a hard
    link kept until the end, new ones are removed.

    Raises:
        OSError: naming the file (not its temp file) that could not be written.
    """
    staged: List[Tuple[Path, Path]] = []  # (temp, target)
    try:
        for target, data in files:
            target = Path(target)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                staged.append((_new_temp(target), target))
                staged[-1][0].write_bytes(data)
                os.chmod(staged[-1][0], _file_mode(mode))
                if durable:
                    _fsync_file(staged[-1][0])
            except OSError as e:
                raise OSError(e.errno, e.strerror or str(e), str(target)) from None
        _rename_all(staged)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    if durable:
        for folder in {target.parent for _, target in staged}:
            _fsync_dir(folder)


def _rename_all(staged: List[Tuple[Path, Path]]) -> None:
    done: List[Tuple[Path, Optional[Path]]] = []  # (target, hard link to the file it replaced)
    backups = []
    try:
        for tmp, target in staged:
            backup = _link_aside(target) if len(staged) > 1 else None
            backups.append(backup)
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise OSError(e.errno, e.strerror or str(e), str(target)) from None
            done.append((target, backup))
    except BaseException:
        for target, backup in reversed(done):  # take the group back
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            except OSError:
                pass
        raise
    finally:
        for backup in backups:
            if backup is not None:
                backup.unlink(missing_ok=True)


def _link_aside(target: Path) -> Optional[Path]:
    """A hard link to the file `target` is about to replace, so a failed group can put it back."""
    if not os.path.lexists(target):
        return None
    backup = _new_temp(target)
    backup.unlink()
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:  # no hard links on this file system: a failed group then loses the old file
        return None
    return backup


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process, or we cannot tell: keep its file
    return True


def sweep_stale_temps(folders: Iterable[str | os.PathLike]) -> List[Path]:
    """Remove temp files of our own naming whose writer process is gone; return what was removed.

    A process killed between writing a temp file and renaming it leaves the hidden temp behind.
    Only names of the exact form `atomic_path` makes are touched, and only when the process id
    in the name no longer runs, so a concurrent run's file in flight is never removed. (Process
    ids are of this machine: on a folder shared by several hosts a foreign writer's temp is
    removed only if its id happens not to run here, and that writer then fails that one file.)
    """
    removed = []
    for folder in {Path(f) for f in folders}:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = _TEMP_NAME.match(name)
            if match is None or _pid_alive(int(match["pid"])):
                continue
            path = folder / name
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    return sorted(removed)
