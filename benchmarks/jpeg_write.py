"""What writing a restored JPEG back costs, step by step, beside the whole write.

    python -m benchmarks.jpeg_write --sizes 12,48 --repeats 5 \
        --report benchmarks/results/jpeg-write.json --markdown benchmarks/results/jpeg-write.md

Each size: the sample photo with a camera's noise, shapes painted on it, saved as a JPEG of
quality 92 at 4:2:0 (sequential, and progressive), and restored perfectly (the photo's own pixels
where the paint was), so that what is timed is the writer alone. Steps, each the median of
`--repeats` runs in turn (min and max beside it), in one process:

- the block-by-block write (`jpeg_blocks.rewrite`) of the sequential and of the progressive file;
- inside it, the entropy coding of the same coefficients with libjpeg's standard Huffman tables and
  with tables made for them (libjpeg's second pass), and a progressive file's lossless transcoding;
- the search for the photo's end (what follows it is kept: `jpeg_pictures.read`);
- a camera's 1920×1440 preview and a 160×120 EXIF thumbnail made again from the written photo.
"""

from __future__ import annotations

import io
import shlex
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List

import click
import numpy as np
from PIL import Image

from benchmarks.in_flight import photo_and_paint
from benchmarks.memory import write_result
from restore_toolkit.console import NamedPath


def timed(fn: Callable, repeats: int) -> Dict[str, float]:
    """Median, least and most seconds of `repeats` calls of `fn`, and what the last returned (bytes: its size)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    row = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    if isinstance(out, (bytes, bytearray)):
        row["bytes"] = len(out)
    return row


def _jpeg(image: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save)
    return buf.getvalue()


def measure(megapixels: float, noise: float, repeats: int, work: Path) -> Dict:
    """One size's steps."""
    from runtime import jpeg_blocks

    photo, painted, mask = photo_and_paint(megapixels, noise)
    header = _jpeg(Image.new("RGB", (8, 8)))
    rows: Dict[str, Dict] = {}
    written = b""
    for kind, progressive in (("sequential", False), ("progressive", True)):
        source = _jpeg(Image.fromarray(painted), quality=92, subsampling=2, progressive=progressive)
        restored = np.asarray(Image.open(io.BytesIO(source)).convert("RGB")).copy()
        restored[mask] = photo[mask]  # a perfect restoration: the writer is what is timed
        rows[f"source, {kind}"] = {"bytes": len(source)}
        write = partial(lambda *args: jpeg_blocks.rewrite(*args)[0], source, restored, mask, header)
        rows[f"block-by-block write, {kind}"] = timed(write, repeats)
        if not progressive:
            written = write()
            (work / "source.jpg").write_bytes(source)
    rows.update(_steps(written, painted, work, repeats))
    return {"megapixels": photo.shape[0] * photo.shape[1] / 1e6, "width": photo.shape[1], "height": photo.shape[0],
            "painted_share": float(mask.mean()), "steps": rows}


def _steps(written: bytes, painted: np.ndarray, work: Path, repeats: int) -> Dict[str, Dict]:
    """The steps inside and after the write, on the sequential file `written` (its source in
    `work / "source.jpg"`)."""
    import jpeglib

    from runtime import jpeg_blocks, jpeg_pictures

    (work / "written.jpg").write_bytes(written)
    coefficients = jpeglib.read_dct(str(work / "written.jpg"))

    def code(flags: List[str]) -> bytes:
        coefficients.write_dct(str(work / "coded.jpg"), flags=flags)
        return (work / "coded.jpg").read_bytes()

    def stream_end() -> None:
        with open(work / "source.jpg", "rb") as f:
            jpeg_pictures._stream_end(f)

    rows = {"entropy coding, standard tables": timed(partial(code, []), repeats),
            "entropy coding, tables made for them": timed(partial(code, ["+OPTIMIZE_CODING"]), repeats)}
    rows["lossless transcoding to progressive"] = timed(partial(jpeg_blocks.as_progressive, code([])), repeats)
    rows["the photo's end found"] = timed(stream_end, repeats)
    for name, size in (("a 1920×1440 preview", (1920, 1440)), ("a 160×120 EXIF thumbnail", (160, 120))):
        old = _jpeg(Image.fromarray(painted).resize(size), quality=92)
        rows[f"{name} made again"] = timed(lambda old=old: jpeg_pictures.previews_of(written, [old])[0], repeats)
    return rows


def to_markdown(result: Dict) -> str:
    m = result["machine"]
    lines = [
        "## What writing a restored JPEG back costs",
        "",
        f"Machine: {m['cpu']} ({m['cpu_features']}; {m['usable_cpus']} usable CPUs). The sample photo "
        f"with σ {result['noise']:g} sensor noise, painted, saved at quality 92, 4:2:0, and restored perfectly; "
        f"each step the median of {result['repeats']} runs in turn (least and most beside it).",
        "",
    ]
    for size in result["sizes"]:
        lines += [f"### {size['megapixels']:.3g} Mpx ({size['width']}×{size['height']}, "
                  f"{size['painted_share']:.1%} painted)", "",
                  "| step | median ms | least – most ms | bytes |", "| --- | ---: | ---: | ---: |"]
        for step, row in size["steps"].items():
            secs = f"{row['median_s'] * 1e3:,.1f}" if "median_s" in row else "–"
            spread = f"{row['min_s'] * 1e3:,.1f} – {row['max_s'] * 1e3:,.1f}" if "median_s" in row else "–"
            lines.append(f"| {step} | {secs} | {spread} | {row['bytes']:,} |" if "bytes" in row
                         else f"| {step} | {secs} | {spread} | – |")
        lines.append("")
    lines += [f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


@click.command()
@click.option("--sizes", default="12,48", help="Comma-separated sizes in megapixels.")
@click.option("--repeats", default=5, type=click.IntRange(min=1), help="Runs of each step.")
@click.option("--noise", default=2.0, show_default=True, help="Sensor noise (sigma, levels) on the photo.")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--markdown", "md_path", type=NamedPath(dir_okay=False), required=True)
def main(sizes: str, repeats: int, noise: float, report_path: str, md_path: str) -> None:
    """Time each step of writing a restored JPEG back."""
    from benchmarks.report import environment

    size_list: List[float] = [float(s) for s in sizes.split(",") if s]
    result: Dict = {"command": shlex.join(["python", "-m", "benchmarks.jpeg_write", *sys.argv[1:]]),
                    "machine": environment()["machine"], "repeats": repeats, "noise": noise}
    with tempfile.TemporaryDirectory(prefix="restore-jpeg-write-") as tmp:
        result["sizes"] = [measure(mp, noise, repeats, Path(tmp)) for mp in size_list]
    write_result(result, report_path, md_path, to_markdown(result))


if __name__ == "__main__":
    main()
