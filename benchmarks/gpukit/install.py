"""`install`, on the GPU machine: gather the pieces, prove the bytes, unpack into a private folder.

Each call finds the repository copied afresh, so the piece it carried is copied out of the
checkout into the stash (/tmp/gpukit), which lasts as long as the machine is held. Every piece is
checked against the manifest's sha256 as it arrives; once all are there, their concatenation is
checked against the archive's sha256 and only then unpacked, into `site/` beside them. That
folder is private: nothing is installed into the machine's Python; the check puts it first on
PYTHONPATH for its own processes only.

Standard library only: this runs before anything else is known to work there.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

from benchmarks.gpukit.pack import MANIFEST, load_manifest, sha256_file
from restore_toolkit.fileio import atomic_path, atomic_write_text

DEFAULT_STASH = Path("/tmp/gpukit")
INSTALLED = ".gpukit-installed.json"  # in site/: which archive it holds


class InstallError(RuntimeError):
    """A piece or the archive is not what the manifest says, or cannot be unpacked safely."""


def _find_manifest(source: Path) -> Path:
    found = sorted(source.rglob(MANIFEST))
    if not found:
        raise InstallError(f"{source}: no {MANIFEST} (was a transfer folder carried?)")
    shas = {load_manifest(p)["archive"]["sha256"] for p in found}
    if len(shas) > 1:
        raise InstallError(f"{source}: manifests of {len(shas)} different preparations; carry one preparation's folders")
    return found[0]


def stash(source: Path, stash_dir: Path = DEFAULT_STASH) -> Dict:
    """Copy the pieces found under `source` into `stash_dir`, each checked against the manifest.

    A stash holding another preparation's pieces is emptied first. Returns {"have": [...],
    "missing": [...], "manifest": {...}}.

    Raises:
        InstallError: a piece whose bytes differ from its sha256 (named), or no manifest.
    """
    manifest = load_manifest(_find_manifest(source))
    stash_dir.mkdir(parents=True, exist_ok=True)
    held = stash_dir / MANIFEST
    if held.exists() and load_manifest(held)["archive"]["sha256"] != manifest["archive"]["sha256"]:
        for old in stash_dir.glob("*.part*"):
            old.unlink()
        shutil.rmtree(stash_dir / "site", ignore_errors=True)
    atomic_write_text(held, json.dumps(manifest, indent=2) + "\n")
    have, missing = [], []
    for piece in manifest["pieces"]:
        dest = stash_dir / piece["name"]
        if dest.exists() and dest.stat().st_size == piece["bytes"]:
            have.append(piece["name"])  # checked when it was stashed
            continue
        carried = next(iter(sorted(source.rglob(piece["name"]))), None)
        if carried is None:
            missing.append(piece["name"])
            continue
        if sha256_file(carried) != piece["sha256"]:
            raise InstallError(f"{carried}: sha256 differs from the manifest's; this piece is damaged (send it again)")
        with atomic_path(dest) as tmp:
            shutil.copyfile(carried, tmp)
        have.append(piece["name"])
    return {"have": have, "missing": missing, "manifest": manifest}


class _Chain(io.RawIOBase):
    """The pieces read as one stream, in order, without writing the archive out."""

    def __init__(self, paths: Sequence[Path]):
        self.paths, self.index, self.current = list(paths), 0, None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.index < len(self.paths):
            if self.current is None:
                self.current = open(self.paths[self.index], "rb")
            n = self.current.readinto(buffer)
            if n:
                return n
            self.current.close()
            self.current, self.index = None, self.index + 1
        return 0

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()


def _safe_members(tar: tarfile.TarFile, dest: Path):
    # The archive's sha256 was checked, but the unpacking stays inside `dest` regardless: no
    # absolute paths, no '..', no links, regular files and folders only.
    for member in tar:
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(dest.resolve()):
            raise InstallError(f"archive member {member.name!r} would land outside {dest} or is not a plain file")
        yield member


def _checked_pieces(stash_dir: Path, manifest: Dict) -> List[Path]:
    """The stashed pieces in order, once all are there and together hash to the manifest's sha256.

    Raises:
        InstallError: pieces missing (named), or the archive's sha256 differs (the damaged pieces
            are removed, so that sending them again helps).
    """
    archive = manifest["archive"]
    paths = [stash_dir / p["name"] for p in manifest["pieces"]]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise InstallError(f"pieces missing in {stash_dir}: {', '.join(missing)}")
    h = hashlib.sha256()
    with _Chain(paths) as chain:
        while block := chain.read(1 << 20):
            h.update(block)
    if h.hexdigest() != archive["sha256"]:
        bad = [p.name for p, piece in zip(paths, manifest["pieces"]) if sha256_file(p) != piece["sha256"]]
        for name in bad:
            (stash_dir / name).unlink()
        raise InstallError(f"the reassembled archive's sha256 is {h.hexdigest()}, the manifest says "
                           f"{archive['sha256']}: nothing was unpacked; damaged and removed: {', '.join(bad) or 'none'}")
    return paths


def install(stash_dir: Path = DEFAULT_STASH) -> Dict:
    """Reassemble the stashed pieces, check the archive's sha256 and unpack it into stash/site.

    Returns {"site": path, "files": n, "archive_sha256": ..., "reused": bool}. Nothing is
    unpacked from bytes that fail the check; an earlier install of the same archive is reused.

    Raises:
        InstallError: pieces missing (named) or the reassembled archive's sha256 differs.
    """
    manifest = load_manifest(stash_dir / MANIFEST)
    archive = manifest["archive"]
    site = stash_dir / "site"
    marker = site / INSTALLED
    if marker.exists() and json.loads(marker.read_text()).get("archive_sha256") == archive["sha256"]:
        return {"site": str(site), "files": archive["files"], "archive_sha256": archive["sha256"], "reused": True}
    paths = _checked_pieces(stash_dir, manifest)
    fresh = stash_dir / "site.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    files = 0
    checked = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python's own checks too, where it has them
    with _Chain(paths) as chain, lzma.open(io.BufferedReader(chain), "rb") as xz, \
            tarfile.open(fileobj=xz, mode="r|") as tar:
        for member in _safe_members(tar, fresh):
            tar.extract(member, fresh, set_attrs=False, **checked)
            if member.isfile():
                os.chmod(fresh / member.name, member.mode & 0o755 | 0o644)
                files += 1
    atomic_write_text(fresh / INSTALLED, json.dumps({"archive_sha256": archive["sha256"], "files": files}) + "\n")
    shutil.rmtree(site, ignore_errors=True)
    fresh.rename(site)
    return {"site": str(site), "files": files, "archive_sha256": archive["sha256"], "reused": False}


def installed_state(stash_dir: Path = DEFAULT_STASH) -> Dict:
    """What the stash holds, for the check's report: pieces present and whether site/ is installed."""
    state: Dict = {"stash": str(stash_dir), "installed": False}
    held = stash_dir / MANIFEST
    if not held.exists():
        state["note"] = f"no manifest in {stash_dir}: no piece was ever staged on this machine"
        return state
    manifest = load_manifest(held)
    names: List[str] = [p["name"] for p in manifest["pieces"]]
    state["missing"] = [n for n in names if not (stash_dir / n).exists()]
    marker = stash_dir / "site" / INSTALLED
    state["installed"] = marker.exists() and json.loads(marker.read_text()).get("archive_sha256") == \
        manifest["archive"]["sha256"]
    state["archive_sha256"] = manifest["archive"]["sha256"]
    return state
