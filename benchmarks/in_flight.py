"""What one image costs in flight, by what it is: the figures the memory gate counts, measured.

    python -m benchmarks.in_flight --report benchmarks/results/in-flight-cpu.json \
        --markdown benchmarks/results/in-flight-cpu.md

`runtime/memory.py` counts each image in flight (decoded, waiting, restored, being written) at
bytes per pixel that depend on what it decodes to and how it is written back
(`in_flight_bytes`). This measures them. Each kind of file is made at two sizes from one painted
photo (a shipped sample scaled up, the held-out set's shapes painted on it, as
`benchmarks.memory.make_photo` paints) and restored by `restore-run` in a process of its own,
with the graph's calls held to one size (`--tile 512 --batch-size 1`) and a budget that never
squeezes them: the process, the model and the graph's working set are then the same at both
sizes, and the rise of the peak resident memory (from the kernel, `wait4`) over the rise in
pixels is what each further pixel costs. Reported per kind beside the figure the gate counts for
it: a measured slope above the counted one means the budget can be overrun.

The photos are smooth (a small sample scaled up), so their files are small: a camera's JPEG file
is larger per pixel, and the gate counts a JPEG's file bytes on top (three copies at its write).
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import click
import numpy as np
from PIL import Image

from benchmarks.memory import SAMPLE, apart, run_measured, sensor_noise, write_result
from restore_toolkit.console import NamedPath

MIB = 1 << 20


def painted_photo(megapixels: float, noise: float = 0.0) -> np.ndarray:
    """(H, W, 3) uint8, 4:3: the sample photo scaled to `megapixels`, with sensor noise of `noise`
    levels (sigma) as a camera's, shapes painted on it."""
    return photo_and_paint(megapixels, noise)[1]


def photo_and_paint(megapixels: float, noise: float = 0.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the photo, the photo painted, where the paint changed a pixel): `painted_photo` with what
    it painted over."""
    from restore_core.heldout import HELDOUT_CORRUPTION
    from restore_toolkit.corruption import corrupt, sample_rng

    w = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    with Image.open(SAMPLE) as src:
        photo = np.asarray(src.convert("RGB").resize((w, h), Image.Resampling.BICUBIC))
    if noise:
        photo = sensor_noise(photo.copy(), noise, seed=w)
    painted, mask = corrupt(photo, sample_rng(20261204, w, h), HELDOUT_CORRUPTION)
    return photo, painted, mask


def _alpha(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8: opaque but for a sparse grid of half-transparent pixels (an alpha channel
    that is all 255 an encoder may drop)."""
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[::7, ::7] = 128
    return alpha


def _png16(rgb: np.ndarray, path: Path, alpha: bool) -> None:
    import png

    values = rgb.astype(np.uint16) * 257
    if alpha:
        values = np.dstack([values, _alpha(rgb).astype(np.uint16) * 257])
    with open(path, "wb") as f:
        png.Writer(rgb.shape[1], rgb.shape[0], greyscale=False, alpha=alpha, bitdepth=16,
                   compression=1).write(f, values.reshape(rgb.shape[0], -1))


def _rgba(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.dstack([rgb, _alpha(rgb)]))


def _turned_jpeg(rgb: np.ndarray, path: Path, subsampling: int) -> None:
    """A JPEG tagged with EXIF orientation 6, as a phone held upright writes it: shown turned,
    and written back block by block on its own grid (the pixels turned back first)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(path, "JPEG", quality=92, subsampling=subsampling, exif=exif.tobytes())


# name -> (suffix, writer of the painted photo); what the gate's Header says of each is read
# back from the file itself.
KINDS: Dict[str, tuple] = {
    "JPEG 4:2:0": (".jpg", lambda a, p: Image.fromarray(a).save(p, "JPEG", quality=92, subsampling=2)),
    "JPEG 4:2:2": (".jpg", lambda a, p: Image.fromarray(a).save(p, "JPEG", quality=92, subsampling=1)),
    "JPEG 4:4:4": (".jpg", lambda a, p: Image.fromarray(a).save(p, "JPEG", quality=92, subsampling=0)),
    "JPEG 4:2:0 progressive": (".jpg", lambda a, p: Image.fromarray(a).save(p, "JPEG", quality=92, subsampling=2,
                                                                            progressive=True)),
    "JPEG 4:2:0 turned by EXIF": (".jpg", lambda a, p: _turned_jpeg(a, p, 2)),
    "JPEG 4:4:4 turned by EXIF": (".jpg", lambda a, p: _turned_jpeg(a, p, 0)),
    "JPEG grey": (".jpg", lambda a, p: Image.fromarray(a).convert("L").save(p, "JPEG", quality=92)),
    "PNG RGB": (".png", lambda a, p: Image.fromarray(a).save(p, "PNG", compress_level=1)),
    "PNG grey": (".png", lambda a, p: Image.fromarray(a).convert("L").save(p, "PNG", compress_level=1)),
    "PNG palette": (".png", lambda a, p: Image.fromarray(a).quantize(256).save(p, "PNG", compress_level=1)),
    "PNG grey+alpha": (".png", lambda a, p: Image.fromarray(a).convert("LA").save(p, "PNG", compress_level=1)),
    "PNG RGBA": (".png", lambda a, p: _rgba(a).save(p, "PNG", compress_level=1)),
    "PNG 16-bit RGB": (".png", lambda a, p: _png16(a, p, alpha=False)),
    "PNG 16-bit RGBA": (".png", lambda a, p: _png16(a, p, alpha=True)),
    "WebP lossy": (".webp", lambda a, p: Image.fromarray(a).save(p, "WEBP", quality=90)),
    "WebP lossless RGBA": (".webp", lambda a, p: _rgba(a).save(p, "WEBP", lossless=True)),
    "TIFF RGB": (".tif", lambda a, p: Image.fromarray(a).save(p, "TIFF")),
    "JPEG 4:2:0 with --save-predicted --save-mask": (".jpg", lambda a, p: Image.fromarray(a).save(p, "JPEG", quality=92)),
}
OPTIONS = {"JPEG 4:2:0 with --save-predicted --save-mask": ("--save-predicted", "--save-mask")}  # beside the defaults


def counted(path: Path, predicted: bool = False) -> float:
    """The bytes per pixel the memory gate counts for this file (runtime.memory.in_flight_bytes),
    with its raw prediction written too when `predicted`."""
    from runtime.image_read import read_image
    from runtime.images import ImageError
    from runtime.memory import in_flight_bytes

    seen: List = []

    def admit(header) -> None:
        seen.append(header)
        raise ImageError("the header is all that is wanted")

    try:
        read_image(path, max_pixels=None, admit=admit)
    except ImageError:
        pass
    h = seen[0]
    return in_flight_bytes(h, predicted) / (h.width * h.height)


def peak(path: Path, out: Path, options: tuple = ()) -> Dict[str, float]:
    """One restore-run of `path`, the graph's calls held to 512² tiles; its peak and wall time."""
    cmd = [sys.executable, "-m", "runtime.cli", str(path), str(out), "--device", "cpu", "--quiet", "--overwrite",
           "--tile", "512", "--batch-size", "1", "--max-memory", "100000", *options]
    res = run_measured(cmd)
    if res["exit"] != 0:
        raise click.ClickException(f"restore-run on {path.name} exited {res['exit']}: {res['output'].strip()[-300:]}")
    return {"peak_mib": round(res["peak_rss_mb"], 1), "wall_s": round(res["wall_s"], 2)}


def make_files(kinds: List[str], sizes: List[float], work: Path,
               noise: float = 0.0) -> Dict[str, List[Tuple[Path, float]]]:
    """{kind: [(file, megapixels) per size]}: the painted photo (with `noise`) written as each kind."""
    files: Dict[str, List[Tuple[Path, float]]] = {kind: [] for kind in kinds}
    for mp in sizes:
        photo = painted_photo(mp, noise)
        for kind in kinds:
            suffix, write = KINDS[kind]
            path = work / f"{''.join(c if c.isalnum() else '-' for c in kind)}-{mp:g}{suffix}"
            write(photo, path)
            files[kind].append((path, photo.shape[0] * photo.shape[1] / 1e6))
    return files


def measure(kinds: List[str], sizes: List[float], work: Path, repeats: int = 1, log: Callable = click.echo,
            noise: float = 0.0) -> List[Dict]:
    """One row per kind: the peak at each size (the largest of `repeats` runs: where the
    allocator returns freed memory varies from run to run), the slope in bytes per pixel, the
    counted figure.

    The photos are made in a process of their own (`benchmarks.memory.apart`), so that this one
    stays small."""
    files = apart(make_files, kinds, sizes, work, noise)
    rows = []
    for kind in kinds:
        runs = []
        for path, megapixels in files[kind]:
            got = [peak(path, work / "out", OPTIONS.get(kind, ())) for _ in range(repeats)]
            runs.append({"megapixels": round(megapixels, 3), "file_mb": round(path.stat().st_size / 1e6, 2),
                         "peak_mib": max(g["peak_mib"] for g in got), "peaks_mib": [g["peak_mib"] for g in got],
                         "wall_s": max(g["wall_s"] for g in got)})
            counts = counted(path, "--save-predicted" in OPTIONS.get(kind, ()))
            path.unlink()
            log(f"{kind}: {runs[-1]}", err=True)
        lo, hi = runs[0], runs[-1]
        slope = (hi["peak_mib"] - lo["peak_mib"]) * MIB / ((hi["megapixels"] - lo["megapixels"]) * 1e6)
        rows.append({"kind": kind, "runs": runs, "measured_bytes_per_pixel": round(slope, 1),
                     "counted_bytes_per_pixel": round(counts, 1)})
    return rows


def to_markdown(result: Dict) -> str:
    m = result["machine"]
    sizes = " and ".join(f"{s:g}" for s in result["sizes"])
    noise = f" with σ {result['noise']:g} sensor noise" if result.get("noise") else ""
    lines = [
        "## What one image costs in flight, by kind",
        "",
        f"Machine: {m['cpu']} ({m['cpu_features']}; {m['usable_cpus']} usable CPUs). Each kind: one painted photo"
        f"{noise} at {sizes} Mpx, {result['repeats']} `restore-run --tile 512 --batch-size 1` processes each, the largest peak "
        "resident memory kept; the slope is its rise over the rise in pixels. Counted: what `runtime/memory.py` "
        "reserves for it.",
        "",
        "| kind | peak MiB, small / large | file MB, large | measured bytes / pixel | counted bytes / pixel |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lo, hi = r["runs"][0], r["runs"][-1]
        lines.append(f"| {r['kind']} | {lo['peak_mib']:,.0f} / {hi['peak_mib']:,.0f} | {hi['file_mb']:.1f} | "
                     f"{r['measured_bytes_per_pixel']:.1f} | {r['counted_bytes_per_pixel']:.1f} |")
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


@click.command()
@click.option("--sizes", default="6,24", help="Two comma-separated sizes in megapixels.")
@click.option("--kinds", default=",".join(KINDS), help="Comma-separated kinds (default: all).")
@click.option("--repeats", default=2, type=click.IntRange(min=1), help="Runs per file; the largest peak counts.")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--markdown", "md_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--noise", default=0.0, show_default=True, help="Sensor noise (sigma, levels) on the photo, as a camera's.")
def main(sizes: str, kinds: str, repeats: int, report_path: str, md_path: str, noise: float) -> None:
    """Measure what each kind of image costs in flight and set it beside what the gate counts."""
    from benchmarks.report import environment

    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kinds {unknown}; known: {', '.join(KINDS)}", param_hint="--kinds")
    size_list = [float(s) for s in sizes.split(",") if s]
    if len(size_list) != 2 or size_list[0] >= size_list[1]:
        raise click.BadParameter("two sizes, the smaller first", param_hint="--sizes")
    result: Dict = {"command": shlex.join(["python", "-m", "benchmarks.in_flight", *sys.argv[1:]]),
                    "machine": environment()["machine"], "sizes": size_list, "repeats": repeats, "noise": noise, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="restore-in-flight-") as tmp:
        result["rows"] = measure(chosen, size_list, Path(tmp), repeats, noise=noise)
    result["load_after"] = os.getloadavg()[0]
    write_result(result, report_path, md_path, to_markdown(result))


if __name__ == "__main__":
    main()
