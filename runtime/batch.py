"""The folder pipeline behind `restore-run`: read, infer and write overlap, nothing is lost.

    plan ──► reader threads (read + decode + EXIF, ahead of time)
                 │ in input order
                 ▼
             main thread: group same-size images into batches ──► ONNX Runtime
                 │                     (large images: overlapping tiles)
                 ▼
             writer threads (back to the source's mode, encode, atomic write)

Decoding (Pillow) and inference (ONNX Runtime) both release the GIL, so plain threads keep the
model fed while files are read and written. Every input ends as one record: ok, skipped (its
outputs exist and --overwrite is off) or failed with the reason; a bad file never stops the rest.

Torch-free: onnxruntime, numpy, pillow, tqdm.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from runtime.fileio import atomic_write_bytes
from runtime.images import (
    DEFAULT_MAX_PIXELS,
    FORMAT_SUFFIX,
    FORMATS,
    SUFFIX_FORMAT,
    ImageError,
    Prepared,
    SourceInfo,
    encode_image,
    finish,
    prepare,
    read_image,
)
from runtime.report import REPORT_NAME, Record, Summary, summary_lines, write_report
from runtime.tiling import tile_size_for

MASKS_DIR = "masks"
PREDICTED_DIR = "predicted"


class PlanError(ValueError):
    """The run cannot start (missing input, OUTPUT that would overwrite inputs...); one line says why."""


@dataclass
class RunOptions:
    """How `run_folder` works; the `restore-run` options, one for one."""

    batch_size: int = 4  # same-size images per inference call
    save_mask: bool = False  # OUTPUT/masks/REL (.png added unless it is one), 0/255
    save_predicted: bool = False  # OUTPUT/predicted/REL likewise, the raw image-decoder output
    overwrite: bool = False  # rewrite outputs that already exist
    format: Optional[str] = None  # png | jpeg | webp | bmp | tiff; default: the input's
    tile: Optional[int] = None  # None = the Restorer's setting, 0 = never, N = tile size
    tile_budget: Optional[int] = None  # None = the Restorer's automatic-tiling threshold
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS  # refuse larger images (decompression bombs)
    report: Optional[str] = None  # default OUTPUT/restore-report.json
    quality: int = 95  # JPEG and lossy WebP
    progress: bool = True  # tqdm bar on stderr
    readers: int = 2  # decoding threads
    writers: int = 2  # encoding threads
    log: Optional[Callable[[str], None]] = None  # where summary lines go (default: nowhere)


@dataclass
class Job:
    source: Path
    output: Path
    format: str  # Pillow format name of the output
    mask: Optional[Path]
    predicted: Optional[Path]
    record: Record


@dataclass
class Loaded:
    job: Job
    prep: Prepared
    source: SourceInfo
    read_seconds: float


@dataclass
class RunResult:
    records: List[Record]
    summary: Summary
    report_path: Optional[Path]
    lines: List[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every input is restored or skipped, 3 when any failed (the rest still done)."""
        return 3 if self.summary.failed else 0


# ---------------------------------------------------------------------------------------------
# Planning: which files, where their outputs go, and what may not happen.


def _output_format(suffix: str, fmt: Optional[str]) -> Tuple[str, str]:
    """(Pillow format, output suffix) for an input suffix and the --format option."""
    if fmt is None:
        return SUFFIX_FORMAT[suffix.lower()], suffix
    pil = FORMATS[fmt.lower()]
    # Keep the input's own spelling (.jpeg, .tiff) when it already is that format.
    return pil, suffix if SUFFIX_FORMAT.get(suffix.lower()) == pil else FORMAT_SUFFIX[pil]


def _scan(root: Path, exclude: Optional[Path]) -> List[Path]:
    """Image files under `root` by suffix, sorted, not descending into `exclude`."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if exclude is None or (here / d).resolve() != exclude)
        for name in sorted(filenames):
            if Path(name).suffix.lower() in SUFFIX_FORMAT:
                found.append(here / name)
    return found


def plan_run(input_path, output_path, options: RunOptions) -> Tuple[List[Job], Path]:
    """List the jobs of a run and where the report goes.

    Raises:
        PlanError: INPUT missing or unsupported, or outputs that would overwrite inputs.
    """
    inp, out = Path(input_path), Path(output_path)
    if options.format is not None and options.format.lower() not in FORMATS:
        raise PlanError(f"unknown --format {options.format!r}; choose png, jpeg, webp, bmp or tiff")
    if not inp.exists():
        raise PlanError(f"{inp}: no such file or folder")
    pairs: List[Tuple[Path, str, Path, str]] = []  # (source, relative name, output, format)
    if inp.is_file():
        if inp.suffix.lower() not in SUFFIX_FORMAT:
            raise PlanError(f"{inp}: not a .png, .jpg, .webp, .bmp or .tif file")
        if out.suffix.lower() in SUFFIX_FORMAT and not out.is_dir():
            # OUTPUT names the restored file itself; its suffix picks the format unless --format does.
            fmt = FORMATS[options.format.lower()] if options.format else SUFFIX_FORMAT[out.suffix.lower()]
            root, target = out.parent, out
        else:
            fmt, suffix = _output_format(inp.suffix, options.format)
            root, target = out, out / (inp.stem + suffix)
        pairs.append((inp, inp.name, target, fmt))
    else:
        root = out
        inp_r, out_r = inp.resolve(), out.resolve()
        # OUTPUT inside INPUT: never read our own outputs back as inputs.
        exclude = out_r if inp_r in out_r.parents else None
        for src in _scan(inp, exclude):
            rel = src.relative_to(inp)
            fmt, suffix = _output_format(src.suffix, options.format)
            pairs.append((src, rel.as_posix(), out / rel.with_suffix(suffix), fmt))

    report = Path(options.report) if options.report else root / REPORT_NAME
    inputs = {p[0].resolve(): p[1] for p in pairs}
    jobs: List[Job] = []
    claims: Dict[Path, List[Job]] = {}
    for src, rel, target, fmt in pairs:
        # Masks and predictions are PNG (lossless) named after the output: a.png → masks/a.png,
        # a.jpg → masks/a.jpg.png, so a.png and a.jpg never share a mask.
        rel_out = target.relative_to(root)
        side = rel_out if rel_out.suffix.lower() == ".png" else rel_out.with_name(rel_out.name + ".png")
        job = Job(
            source=src, output=target, format=fmt,
            mask=root / MASKS_DIR / side if options.save_mask else None,
            predicted=root / PREDICTED_DIR / side if options.save_predicted else None,
            record=Record(input=rel, output=str(target)),
        )
        job.record.mask = str(job.mask) if job.mask else None
        job.record.predicted = str(job.predicted) if job.predicted else None
        for path in (job.output, job.mask, job.predicted):
            if path is None:
                continue
            resolved = path.resolve()
            if resolved in inputs:
                raise PlanError(
                    f"{path} would overwrite the input {inputs[resolved]}: OUTPUT may not be INPUT "
                    f"(or hold inputs) unless the output names cannot collide; choose another OUTPUT"
                )
            claims.setdefault(resolved, []).append(job)
        jobs.append(job)
    if report.resolve() in inputs or report.resolve() in claims:
        raise PlanError(f"the report {report} would overwrite an input or an output; pass --report elsewhere")

    # Two inputs mapping onto one output name (a.png and a.jpg with --format png): both fail.
    for path, owners in claims.items():
        if len(owners) > 1:
            names = [j.record.input for j in owners]
            for j in owners:
                others = ", ".join(n for n in names if n != j.record.input)
                _fail(j.record, f"output {path.name} would also be written for {others}; rename one or drop --format")

    for job in jobs:
        wanted = [p for p in (job.output, job.mask, job.predicted) if p is not None]
        if job.record.status == "pending" and not options.overwrite and all(p.exists() for p in wanted):
            job.record.status = "skipped"
    return jobs, report


def _fail(record: Record, reason: str) -> None:
    if record.status != "failed":  # keep the first reason
        record.status = "failed"
        record.error = reason


# ---------------------------------------------------------------------------------------------
# The three stages.


def _read(job: Job, options: RunOptions) -> Optional[Loaded]:
    """Read and decode one input on a reader thread; a failure becomes the record's reason."""
    start = time.perf_counter()
    rec = job.record
    try:
        img, source = read_image(job.source, options.max_pixels)
        rec.width, rec.height, rec.mode = img.width, img.height, img.mode
        prep = prepare(img)
    except ImageError as e:
        _fail(rec, str(e))
        return None
    except MemoryError:
        _fail(rec, "out of memory while decoding (lower --max-pixels)")
        return None
    except Exception as e:  # a decoder bug must not end the run
        _fail(rec, f"cannot decode ({type(e).__name__}: {e})")
        return None
    rec.notes.extend(source.notes + prep.notes)
    rec.read_seconds = time.perf_counter() - start
    return Loaded(job, prep, source, rec.read_seconds)


def _write(item: Loaded, restored: np.ndarray, mask: np.ndarray, predicted: np.ndarray, infer_seconds: float,
           tiles: int, options: RunOptions) -> None:
    """Put one result back into the source's mode and write its files atomically (writer thread)."""
    start = time.perf_counter()
    job, rec = item.job, item.job.record
    corrupted = mask > 0  # (H, W) bool
    current = job.output
    try:
        image = finish(item.prep, restored, corrupted)
        data, rec.output_mode, note = encode_image(image, job.format, item.source, options.quality)
        if note:
            rec.notes.append(note)
        _put(job.output, data, options.overwrite)
        if job.mask is not None:
            current = job.mask
            _put(job.mask, _png(Image.fromarray(mask, "L")), options.overwrite)
        if job.predicted is not None:
            current = job.predicted
            _put(job.predicted, _png(Image.fromarray(predicted, "RGB")), options.overwrite)
    except Exception as e:
        _fail(rec, f"cannot write {current}: {type(e).__name__}: {e}")
        return
    rec.status = "ok"
    rec.masked_share = float(corrupted.mean())
    rec.tiles = tiles
    rec.infer_seconds = infer_seconds
    rec.write_seconds = time.perf_counter() - start
    rec.seconds = item.read_seconds + infer_seconds + rec.write_seconds


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def _put(path: Path, data: bytes, overwrite: bool) -> None:
    # Without --overwrite an existing file is kept: a resumed run only adds what is missing.
    if overwrite or not path.exists():
        atomic_write_bytes(path, data)


def _read_ahead(pool: ThreadPoolExecutor, jobs: List[Job], options: RunOptions, window: int) -> Iterator[Tuple[Job, Optional[Loaded]]]:
    """Decoded inputs in order, with up to `window` reads in flight ahead of the consumer."""
    queue: deque = deque()
    it = iter(jobs)
    for job in it:
        queue.append((job, pool.submit(_read, job, options)))
        if len(queue) >= window:
            break
    while queue:
        job, future = queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(_read, nxt, options)))
        yield job, future.result()


def _first_line(e: BaseException) -> str:
    """`Type: first line of the message`, also for exceptions with an empty message (MemoryError())."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def run_folder(restorer, input_path, output_path, options: Optional[RunOptions] = None) -> RunResult:
    """Restore a folder (recursively, relative paths mirrored) or a single image.

    Args:
        restorer: a `runtime.Restorer` (its session and tiling parameters are used).
        input_path: a folder or an image file.
        output_path: a folder; for a single image also a file name with an image suffix.
        options: RunOptions.

    Returns:
        RunResult: one record per input, the summary (with end-to-end and inference-only
        images/s), and where the report was written.

    Raises:
        PlanError: the run could not start; nothing was written.
    """
    from tqdm import tqdm

    options = options or RunOptions()
    if options.batch_size < 1:
        raise PlanError("--batch-size must be at least 1")
    if options.max_pixels and options.max_pixels > (Image.MAX_IMAGE_PIXELS or 0):
        # Our header check against max_pixels replaces Pillow's global bomb limit, which would
        # otherwise refuse (or warn about) images the caller allowed.
        Image.MAX_IMAGE_PIXELS = options.max_pixels
    start = time.perf_counter()
    infer_before = restorer.inference_seconds
    jobs, report_path = plan_run(input_path, output_path, options)
    records = [j.record for j in jobs]
    todo = [j for j in jobs if j.record.status == "pending"]

    bar = tqdm(total=len(jobs), unit="img", desc="restoring", disable=not options.progress, dynamic_ncols=True)
    bar.update(len(jobs) - len(todo))  # skipped and collisions are done already
    writes: deque = deque()
    max_writes = 4 * max(1, options.writers) + options.batch_size  # bounds results held in memory
    buckets: "OrderedDict[Tuple[int, int], List[Loaded]]" = OrderedDict()
    max_pending = 2 * options.batch_size  # images waiting for same-size partners

    def submit_write(item: Loaded, outs, infer_seconds: float, tiles: int) -> None:
        future = writers.submit(_write, item, outs[0], outs[1], outs[2], infer_seconds, tiles, options)
        future.add_done_callback(lambda _: bar.update(1))
        writes.append(future)
        while len(writes) > max_writes:
            writes.popleft().result()

    def run_batch(items: List[Loaded]) -> None:
        batch = np.stack([it.prep.rgb for it in items])  # (N, H, W, 3)
        t0 = time.perf_counter()
        try:
            restored, mask, predicted = restorer.infer(batch)
        except Exception as e:  # e.g. out of memory on a huge batch: fail these, keep going
            for it in items:
                _fail(it.job.record, f"inference failed: {_first_line(e)}")
                bar.update(1)
            return
        share = (time.perf_counter() - t0) / len(items)
        for j, it in enumerate(items):
            submit_write(it, (restored[j], mask[j, ..., 0], predicted[j]), share, 0)

    def run_tiled_image(item: Loaded, size: int) -> None:
        t0 = time.perf_counter()
        try:
            restored, mask, predicted, tiles = restorer.run_rgb(item.prep.rgb, size)
        except Exception as e:
            _fail(item.job.record, f"inference failed: {_first_line(e)}")
            bar.update(1)
            return
        submit_write(item, (restored, mask, predicted), time.perf_counter() - t0, tiles)

    readers = ThreadPoolExecutor(max(1, options.readers), thread_name_prefix="restore-read")
    writers = ThreadPoolExecutor(max(1, options.writers), thread_name_prefix="restore-write")
    try:
        window = 2 * max(1, options.readers) + options.batch_size
        for _job, item in _read_ahead(readers, todo, options, window):
            if item is None:
                bar.update(1)
                continue
            h, w = item.prep.rgb.shape[:2]
            size = tile_size_for(h, w, restorer.tile if options.tile is None else options.tile,
                                 restorer.tile_budget if options.tile_budget is None else options.tile_budget)
            if size is not None:
                run_tiled_image(item, size)
                continue
            buckets.setdefault((h, w), []).append(item)
            if len(buckets[(h, w)]) >= options.batch_size:
                run_batch(buckets.pop((h, w)))
            elif sum(len(b) for b in buckets.values()) > max_pending:
                run_batch(buckets.pop(next(iter(buckets))))  # the oldest size waits no longer
        while buckets:
            run_batch(buckets.pop(next(iter(buckets))))
        for future in writes:
            future.result()
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)
        bar.close()

    for rec in records:  # anything left pending was cut short by an error we did not foresee
        if rec.status == "pending":
            _fail(rec, "not processed (internal error)")
    info = restorer.info
    summary = Summary(
        model=info.source, device=info.describe(), providers=info.providers, batch_size=options.batch_size,
        wall_seconds=time.perf_counter() - start, inference_seconds=restorer.inference_seconds - infer_before,
    ).finalize(records)
    write_report(report_path, summary, records)
    lines = summary_lines(summary, records, str(report_path))
    if options.log:
        for line in lines:
            options.log(line)
    return RunResult(records, summary, report_path, lines)
