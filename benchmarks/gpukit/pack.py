"""`prepare`, here: the wheels the GPU machine lacks, reduced, compressed and cut into pieces.

The GPU machine has torch, onnx and the CPU build of onnxruntime, but no `onnxruntime-gpu` and no
network, and one transfer to it carries at most 64 MiB with the project's own files. So the
wheels it lacks are fetched here with pip, the files it does not need are left out, the rest goes
into one tar archive compressed with xz, and the archive is cut into pieces of equal size that
each fit beside the project (`benchmarks.gpukit.plan` sizes them). A manifest records the sha256
of every piece and of the whole archive, so the machine can prove it reassembled the same bytes.

xz rather than zstd: Python's `lzma` decompresses it on the GPU machine with nothing installed.

Standard library only (pip runs as a subprocess).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import lzma
import math
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from restore_toolkit.fileio import atomic_path, atomic_write_text

SCHEMA = "gpukit/1"
# The ONNX Runtime build for the GPU machine: CUDA 13, like its torch 2.11 (cu130).
ORT_REQUIREMENT = "onnxruntime-gpu==1.31.1"
# Missing there too: runtime.image_read and image_write import pypng (a pure-Python module of 200 kB).
EXTRA_REQUIREMENTS = ("pypng==0.20220715.0",)
TARGET_PYTHON = "3.12"
# pip matches manylinux tags exactly; these are the ones an x86-64 glibc 2.28+ machine takes.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

# Files of the wheels left out, by path prefix, with the reason measured when it was decided.
# libonnxruntime.so is the C API library for C/C++ programs (29 MB, 11 MB compressed): the Python
# binding (onnxruntime_pybind11_state) holds the runtime itself and neither it nor the CUDA and
# TensorRT provider libraries name it (no DT_NEEDED entry, no dlopen string), and the package
# imports and runs a session without it. Everything else stays: onnxruntime.quantization imports
# onnxruntime.transformers, and the TensorRT provider is kept for the rows that use it.
DROP = {"onnxruntime/capi/libonnxruntime.so.": "the C API library; the Python binding does not load it"}

ARCHIVE = "site.tar.xz"
MANIFEST = "manifest.json"
XZ_PRESET = 9  # 64 MiB dictionary: preset 6 (8 MiB) misses repeats across the libraries


class PackError(RuntimeError):
    """Preparing failed; the message says which file or step and why."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(requirement: str, dest: Path, platform_specific: bool = True) -> Path:
    """Fetch one wheel for the GPU machine with pip (no dependencies: the machine has them)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary=:all:",
           "--python-version", TARGET_PYTHON, "--implementation", "cp", "--dest", str(dest), "--quiet"]
    if platform_specific:
        for tag in PLATFORMS:
            cmd += ["--platform", tag]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise PackError(f"pip download {requirement} failed: {tail[-1] if tail else f'exit {done.returncode}'}")
    name, version = requirement.split("==")
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise PackError(f"pip download {requirement} saved no wheel in {dest}")
    return found[-1]


def _dropped_why(path: str) -> Optional[str]:
    return next((why for prefix, why in DROP.items() if path.startswith(prefix)), None)


def _tar_info(member: zipfile.ZipInfo, size: int) -> tarfile.TarInfo:
    # Fixed owner and the zip's own dates: the same wheels always give the same archive bytes.
    info = tarfile.TarInfo(member.filename)
    info.size = size
    info.mtime = calendar.timegm(member.date_time + (0, 0, 0))
    executable = (member.external_attr >> 16) & 0o111
    info.mode = 0o755 if executable else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(wheels: Sequence[Path], archive: Path, preset: int = XZ_PRESET) -> Dict:
    """Write the kept files of `wheels` as one .tar.xz, laid out as `pip install --target` would.

    The wheels' RECORD files lose the lines of dropped files, so the installed folder describes
    itself truthfully. Returns what was kept and dropped.
    """
    kept_files, unpacked, dropped = 0, 0, []
    with atomic_path(archive) as tmp, open(tmp, "wb") as raw:
        with lzma.LZMAFile(raw, "wb", format=lzma.FORMAT_XZ, preset=preset) as xz, \
                tarfile.open(fileobj=xz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf:
                    members = sorted((m for m in zf.infolist() if not m.is_dir()), key=lambda m: m.filename)
                    gone = {m.filename for m in members if _dropped_why(m.filename)}
                    for m in members:
                        if m.filename in gone:
                            dropped.append({"path": m.filename, "bytes": m.file_size, "why": _dropped_why(m.filename)})
                            continue
                        if m.filename.endswith(".dist-info/RECORD") and gone:
                            lines = zf.read(m).decode("utf-8").splitlines(keepends=True)
                            data = "".join(ln for ln in lines if ln.split(",", 1)[0] not in gone).encode("utf-8")
                            tar.addfile(_tar_info(m, len(data)), io.BytesIO(data))
                            size = len(data)
                        else:
                            with zf.open(m) as src:  # streamed: the CUDA library alone is 284 MB
                                tar.addfile(_tar_info(m, m.file_size), src)
                            size = m.file_size
                        kept_files += 1
                        unpacked += size
    return {"files": kept_files, "unpacked_bytes": unpacked, "dropped": dropped}


def split(archive: Path, kit_dir: Path, max_piece: int) -> List[Dict]:
    """Cut `archive` into the fewest pieces of at most `max_piece` bytes, all of about equal size
    (every transfer then keeps the same headroom), one per folder `transfer-K/`."""
    size = archive.stat().st_size
    count = max(1, math.ceil(size / max_piece))
    step = math.ceil(size / count)
    pieces = []
    with open(archive, "rb") as f:
        for k in range(1, count + 1):
            name = f"{ARCHIVE}.part{k}"
            folder = kit_dir / f"transfer-{k}"
            folder.mkdir(parents=True, exist_ok=True)
            data = f.read(step)
            with atomic_path(folder / name) as tmp:
                tmp.write_bytes(data)
            pieces.append({"name": name, "folder": folder.name, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
    return pieces


def pack(wheels: Sequence[Path], kit_dir: Path, max_piece: int, preset: int = XZ_PRESET) -> Dict:
    """Archive, split and describe `wheels` in `kit_dir`; returns the manifest (also written there
    and into every transfer folder)."""
    for stale in kit_dir.glob("transfer-*"):  # an earlier preparation's pieces must not travel
        shutil.rmtree(stale)
    archive = kit_dir / ARCHIVE
    t0 = time.perf_counter()
    contents = write_archive(wheels, archive, preset)
    seconds = time.perf_counter() - t0
    manifest = {
        "schema": SCHEMA,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"python": TARGET_PYTHON, "platforms": list(PLATFORMS)},
        "wheels": [{"file": w.name, "bytes": w.stat().st_size, "sha256": sha256_file(w)} for w in wheels],
        "archive": {"name": ARCHIVE, "bytes": archive.stat().st_size, "sha256": sha256_file(archive),
                    "xz_preset": preset, "compress_s": round(seconds, 1), **contents},
        "pieces": split(archive, kit_dir, max_piece),
    }
    archive.unlink()  # the pieces hold it; install reassembles and checks it against the sha256
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write_text(kit_dir / MANIFEST, text)
    for piece in manifest["pieces"]:
        atomic_write_text(kit_dir / piece["folder"] / MANIFEST, text)
    return manifest


def load_manifest(path: Path) -> Dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PackError(f"{path}: cannot read the manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise PackError(f"{path}: not a {SCHEMA} manifest")
    return manifest


def fetch_wheels(kit_dir: Path, wheel: Optional[Path], extras: Optional[Sequence[Path]]) -> Tuple[List[Path], List[str]]:
    """The wheels to pack: the given files, or those pip downloads into `kit_dir/download`."""
    notes = []
    if wheel is None:
        wheel = download(ORT_REQUIREMENT, kit_dir / "download")
        notes.append(f"downloaded {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)")
    if extras is None:
        extras = [download(r, kit_dir / "download", platform_specific=False) for r in EXTRA_REQUIREMENTS]
        notes += [f"downloaded {w.name}" for w in extras]
    wheels = [Path(wheel), *map(Path, extras)]
    for w in wheels:
        if not zipfile.is_zipfile(w):
            raise PackError(f"{w}: not a wheel (zip) file")
    return wheels, notes


def describe(manifest: Dict) -> List[str]:
    """Console lines: what the archive holds and the pieces."""
    a = manifest["archive"]
    dropped = sum(d["bytes"] for d in a["dropped"])
    lines = [f"archive {a['name']}: {a['files']} files, {a['unpacked_bytes'] / 1e6:.1f} MB unpacked -> "
             f"{a['bytes'] / 1e6:.1f} MB (xz -{a['xz_preset']}, {a['compress_s']:.0f} s); "
             f"left out {len(a['dropped'])} file(s), {dropped / 1e6:.1f} MB",
             f"{len(manifest['pieces'])} piece(s): " + ", ".join(f"{p['bytes'] / 2**20:.1f} MiB" for p in manifest["pieces"])]
    return lines
