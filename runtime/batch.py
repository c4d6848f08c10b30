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
outputs exist and --overwrite is off) or failed with the reason; a bad file never stops the rest,
and neither does a full disk: each image that could not be written fails with that reason, and a
report that cannot be written is handed back in memory for the caller to print.

Torch-free: onnxruntime, numpy, pillow, pypng, tqdm.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from runtime.fileio import atomic_write_bytes, sweep_stale_temps
from runtime.images import (
    DEFAULT_MAX_PIXELS,
    FORMAT_SUFFIX,
    FORMATS,
    SUFFIX_FORMAT,
    WRITABLE_MODES,
    ImageError,
    Prepared,
    SourceInfo,
    encode_image,
    finish,
    prepare,
    read_image,
)
from runtime.memory import MemoryGate, Reservation
from runtime.messages import flat, one_line
from runtime.report import REPORT_NAME, Record, Summary, earlier_outputs, report_json, summary_lines, write_report

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
    max_memory: Optional[int] = None  # bytes the run may add to its process; None: runtime.memory's default
    allow_lossy: bool = False  # restore the first frame/page or 8 bits of files that cannot be kept whole
    sync_images: bool = True  # fsync each image before its rename (reports are always synced)
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
    reserved: Optional[Reservation] = None  # what it holds in the run's MemoryGate until it is written


@dataclass
class RunResult:
    records: List[Record]
    summary: Summary
    report_path: Optional[Path]
    lines: List[str] = field(default_factory=list)
    report_error: Optional[str] = None  # why the report could not be written, if it could not
    report_text: Optional[str] = None  # the report's JSON when it could not be written

    @property
    def exit_code(self) -> int:
        """0 when every input is restored or skipped, 3 when any failed (the rest still done)."""
        return 3 if self.summary.failed else 0


# ---------------------------------------------------------------------------------------------
# Planning: which files, where their outputs go, and what may not happen.

# (source, name relative to INPUT, output path, Pillow format of the output)
Pair = Tuple[Path, str, Path, str]


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


def _check_request(inp: Path, options: RunOptions) -> None:
    if options.format is not None and options.format.lower() not in FORMATS:
        raise PlanError(f"unknown --format {options.format!r}; choose png, jpeg, webp, bmp or tiff")
    if not inp.exists():
        raise PlanError(f"{flat(inp)}: no such file or folder")
    if inp.is_file() and inp.suffix.lower() not in SUFFIX_FORMAT:
        raise PlanError(f"{flat(inp)}: not a .png, .jpg, .webp, .bmp, .tif or .gif file")


def _plan_file(inp: Path, out: Path, fmt: Optional[str]) -> Tuple[Path, List[Pair]]:
    """One image in: OUTPUT is the restored file itself (an image suffix) or its folder."""
    if out.suffix.lower() in SUFFIX_FORMAT and not out.is_dir():
        # OUTPUT names the restored file itself; its suffix picks the format unless --format does.
        pil = FORMATS[fmt.lower()] if fmt else SUFFIX_FORMAT[out.suffix.lower()]
        return out.parent, [(inp, inp.name, out, pil)]
    pil, suffix = _output_format(inp.suffix, fmt)
    return out, [(inp, inp.name, out / (inp.stem + suffix), pil)]


def _plan_folder(inp: Path, out: Path, fmt: Optional[str], report: Path) -> List[Pair]:
    """Every image under INPUT, minus our own outputs when OUTPUT is INPUT or lies inside it."""
    inp_r, out_r = inp.resolve(), out.resolve()
    # OUTPUT inside INPUT: never read our own outputs back as inputs.
    exclude = out_r if inp_r in out_r.parents else None
    # OUTPUT is INPUT (or holds it): what the earlier run's report lists as written is ours, not
    # an input, so a rerun (or a resumed run) of the same command plans the same jobs.
    ours = earlier_outputs(report, inp_r) if inp_r == out_r or out_r in inp_r.parents else set()
    pairs = []
    for src in _scan(inp, exclude):
        if ours and src.resolve() in ours:
            continue
        rel = src.relative_to(inp)
        pil, suffix = _output_format(src.suffix, fmt)
        pairs.append((src, rel.as_posix(), out / rel.with_suffix(suffix), pil))
    return pairs


def _make_job(pair: Pair, root: Path, options: RunOptions) -> Job:
    src, rel, target, fmt = pair
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
    return job


def _job_outputs(job: Job) -> List[Path]:
    return [p for p in (job.output, job.mask, job.predicted) if p is not None]


def _claim_outputs(jobs: List[Job], pairs: List[Pair], report: Path) -> Dict[Path, List[Job]]:
    """Who writes each output path; refuses outputs that land on an input or on the report.

    Raises:
        PlanError: an output (or the report) would overwrite an input.
    """
    inputs = {src.resolve(): rel for src, rel, _, _ in pairs}
    claims: Dict[Path, List[Job]] = {}
    for job in jobs:
        for path in _job_outputs(job):
            resolved = path.resolve()
            if resolved in inputs:
                raise PlanError(
                    f"{flat(path)} would overwrite the input {flat(inputs[resolved])}: OUTPUT may not be INPUT "
                    f"(or hold inputs) unless the output names cannot collide; choose another OUTPUT"
                )
            claims.setdefault(resolved, []).append(job)
    if report.resolve() in inputs or report.resolve() in claims:
        raise PlanError(f"the report {flat(report)} would overwrite an input or an output; pass --report elsewhere")
    return claims


def _fail_collisions(claims: Dict[Path, List[Job]]) -> None:
    """Two inputs mapping onto one output name (a.png and a.jpg with --format png): both fail."""
    for path, owners in claims.items():
        if len(owners) > 1:
            names = [j.record.input for j in owners]
            for j in owners:
                others = ", ".join(n for n in names if n != j.record.input)
                _fail(j.record, f"output {path.name} would also be written for {others}; rename one or drop --format")


def _fail_unwritable(jobs: List[Job]) -> None:
    """Formats we read but do not write (GIF) fail before any work, with the way out."""
    for job in jobs:
        if job.format not in WRITABLE_MODES:
            _fail(job.record, f"{job.format} is read but not written back (Pillow's writer may reorder the "
                              f"palette and frames); pass --format png to restore it into a PNG")


def _mark_skipped(jobs: List[Job], overwrite: bool) -> None:
    for job in jobs:
        if job.record.status == "pending" and not overwrite and all(p.exists() for p in _job_outputs(job)):
            job.record.status = "skipped"


def plan_run(input_path, output_path, options: RunOptions) -> Tuple[List[Job], Path]:
    """List the jobs of a run and where the report goes.

    Raises:
        PlanError: INPUT missing or unsupported, or outputs that would overwrite inputs.
    """
    inp, out = Path(input_path), Path(output_path)
    _check_request(inp, options)
    if inp.is_file():
        root, pairs = _plan_file(inp, out, options.format)
        report = Path(options.report) if options.report else root / REPORT_NAME
    else:
        root, report = out, Path(options.report) if options.report else out / REPORT_NAME
        pairs = _plan_folder(inp, out, options.format, report)
    jobs = [_make_job(pair, root, options) for pair in pairs]
    _fail_collisions(_claim_outputs(jobs, pairs, report))
    _fail_unwritable(jobs)
    _mark_skipped(jobs, options.overwrite)
    return jobs, report


def _fail(record: Record, reason: str) -> None:
    if record.status != "failed":  # keep the first reason
        record.status = "failed"
        record.error = flat(reason)


# ---------------------------------------------------------------------------------------------
# The three stages.


def _read(job: Job, options: RunOptions, gate: Optional[MemoryGate] = None, ticket: int = 0,
          graph_pixels: Optional[Callable[[int, int, int], int]] = None) -> Optional[Loaded]:
    """Read and decode one input on a reader thread; a failure becomes the record's reason.

    With a `gate`, the image is decoded only once the gate admits it under job number `ticket`,
    from its header: its own bytes and its largest graph call, `graph_pixels(width, height,
    window)` input pixels when its tiles may be up to `window` pixels.
    """
    start = time.perf_counter()
    reserved: Optional[Reservation] = None

    def admit(width: int, height: int, held: int) -> None:
        nonlocal reserved
        reserved = gate.admit(ticket, width, height, held, lambda window: graph_pixels(width, height, window))

    loaded = None
    try:
        loaded = _decode(job, options, start, admit if gate is not None else None)
    finally:
        if gate is not None:
            if reserved is None:
                gate.skip(ticket)  # failed before its size was known: the next job's turn
            elif loaded is None:
                gate.release(reserved)
    if loaded is not None:
        loaded.reserved = reserved
    return loaded


def _decode(job: Job, options: RunOptions, start: float, admit) -> Optional[Loaded]:
    """`_read` past the memory gate: read_image (which calls `admit` from the header), then prepare."""
    rec = job.record
    try:
        img, source = read_image(job.source, options.max_pixels, options.allow_lossy, job.format, admit)
        rec.width, rec.height, rec.mode = img.width, img.height, img.mode
        prep = prepare(img, source.deep)
        if source.deep is not None:  # a 16-bit colour PNG: its values now live in `prep`
            rec.mode, source.deep = source.deep.mode, None
    except ImageError as e:
        _fail(rec, str(e))
        return None
    except MemoryError:
        _fail(rec, "out of memory while decoding (lower --max-pixels)")
        return None
    except Exception as e:  # a decoder bug must not end the run
        _fail(rec, f"cannot decode ({one_line(e)})")
        return None
    rec.notes.extend(source.notes + prep.notes)
    rec.dropped = list(source.dropped)
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
        _put(job.output, data, options)
        if job.mask is not None:
            current = job.mask
            _put(job.mask, _png(Image.fromarray(mask, "L")), options)
        if job.predicted is not None:
            current = job.predicted
            _put(job.predicted, _png(Image.fromarray(predicted, "RGB")), options)
    except OSError as e:  # a full disk, a read-only folder: the reason, not the temp file's name
        _fail(rec, f"not written: {current}: {e.strerror or one_line(e)}")
        return
    except Exception as e:
        _fail(rec, f"not written: {current}: {one_line(e)}")
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


def _put(path: Path, data: bytes, options: RunOptions) -> None:
    # Without --overwrite an existing file is kept: a resumed run only adds what is missing.
    if options.overwrite or not path.exists():
        atomic_write_bytes(path, data, durable=options.sync_images)


def _read_ahead(pool: ThreadPoolExecutor, jobs: List[Job], read: Callable[[int, Job], Optional[Loaded]], window: int,
                idle: Callable[[], None] = lambda: None) -> Iterator[Tuple[Job, Optional[Loaded]]]:
    """Decoded inputs in order, with up to `window` reads in flight ahead of the consumer.

    `read(number, job)` runs on the pool; while the next input is not ready, `idle()` is called
    every 50 ms (the pipeline runs waiting batches then if that read waits for the memory they hold).
    """
    queue: deque = deque()
    numbered = enumerate(jobs)
    for n, job in numbered:
        queue.append((job, pool.submit(read, n, job)))
        if len(queue) >= window:
            break
    while queue:
        job, future = queue.popleft()
        nxt = next(numbered, None)
        if nxt is not None:
            queue.append((nxt[1], pool.submit(read, *nxt)))
        while not wait([future], timeout=0.05).done:
            idle()
        yield job, future.result()


class _Pipeline:
    """The main thread's loop: take decoded images in order, batch same sizes, infer, hand to writers.

    Holds what the loop shares: the thread pools, images waiting for same-size partners, and
    the writes in flight. Memory is bounded twice over (runtime/memory.py): no graph call gets
    more than `window` input pixels (larger images are tiled, batches stop at it), and an image
    is decoded only when the MemoryGate has room for it until it is written; one that could
    never fit is refused from its header. The Ray engine feeds it images decoded elsewhere
    through `take` and `drain` (runtime/ray_engine.py).
    """

    def __init__(self, restorer, options: RunOptions, bar):
        self.restorer, self.options, self.bar = restorer, options, bar
        self.tile = restorer.tile if options.tile is None else options.tile
        self.plan = restorer.plan_memory(options.max_memory, options.tile_budget)
        self.window = self.plan.window_pixels  # the most input pixels of a call, for images decoded elsewhere (Ray)
        self.gate = MemoryGate(self.plan)
        self.buckets: "OrderedDict[Tuple[int, int], List[Loaded]]" = OrderedDict()
        self.max_pending = 2 * options.batch_size  # images waiting for same-size partners
        self.writes: deque = deque()
        self.max_writes = 4 * max(1, options.writers) + options.batch_size  # bounds results held in memory
        self.readers = ThreadPoolExecutor(max(1, options.readers), thread_name_prefix="restore-read")
        self.writers = ThreadPoolExecutor(max(1, options.writers), thread_name_prefix="restore-write")

    def run(self, todo: List[Job]) -> None:
        try:
            window = 2 * max(1, self.options.readers) + self.options.batch_size
            for _job, item in _read_ahead(self.readers, todo, self._read, window, self._free_memory):
                if item is None:
                    self.bar.update(1)
                else:
                    self.take(item)
            self.drain()
        finally:
            self.close()

    def _read(self, ticket: int, job: Job) -> Optional[Loaded]:
        return _read(job, self.options, self.gate, ticket, self._graph_pixels)

    def _graph_pixels(self, width: int, height: int, window: int) -> int:
        """The largest graph call of an image whose calls may be up to `window` pixels: its tiles, the
        batch it may join (--batch-size images, up to the window), or all of it (--tile 0)."""
        tile = self.restorer.tile_for(height, width, self.tile, window)
        if tile is None and width * height <= window:
            return min(window, max(1, self.options.batch_size) * width * height)
        return self.restorer.call_pixels(height, width, tile)

    def _free_memory(self) -> None:
        """While the next image is not decoded: if its reader waits for memory, run the images
        waiting for partners (they hold it), so that the run never waits on itself."""
        if self.gate.starved:
            self._run_oldest()

    def _run_oldest(self) -> bool:
        """Run the oldest waiting bucket; False when none waits."""
        if not self.buckets:
            return False
        self._run_batch(self.buckets.pop(next(iter(self.buckets))))
        return True

    def drain(self) -> None:
        """Run the images still waiting for same-size partners and wait for every write."""
        while self._run_oldest():
            pass
        while self.writes:
            self.writes.popleft().result()

    def close(self) -> None:
        self.gate.close()  # readers waiting for memory give up instead of holding up the shutdown
        self.readers.shutdown(wait=True, cancel_futures=True)
        self.writers.shutdown(wait=True, cancel_futures=True)

    def take(self, item: Loaded) -> None:
        """Tile a large image at once; put others in their size's bucket, run buckets that are full.

        A bucket is full at --batch-size images or at `window` pixels, whichever comes first.
        """
        h, w = item.prep.rgb.shape[:2]
        window = item.reserved.window if item.reserved else self.window  # the gate sized it beside the image
        size = self.restorer.tile_for(h, w, self.tile, window)
        if size is not None:
            self._run_tiled(item, size, window)
            return
        bucket = self.buckets.setdefault((h, w), [])
        bucket.append(item)
        if len(bucket) >= max(1, min(self.options.batch_size, window // (h * w))):
            self._run_batch(self.buckets.pop((h, w)))
        elif sum(len(b) for b in self.buckets.values()) > self.max_pending:
            self._run_oldest()  # the oldest size waits no longer

    def _run_batch(self, items: List[Loaded]) -> None:
        batch = np.stack([it.prep.rgb for it in items])  # (N, H, W, 3)
        t0 = time.perf_counter()
        try:
            restored, mask, predicted = self.restorer.infer(batch)
        except Exception as e:  # e.g. out of memory on a huge batch: fail these, keep going
            for it in items:
                self._failed(it, e)
            return
        finally:
            del batch
        share = (time.perf_counter() - t0) / len(items)
        for j, it in enumerate(items):
            self._submit_write(it, (restored[j], mask[j, ..., 0], predicted[j]), share, 0)

    def _run_tiled(self, item: Loaded, size: int, window: int) -> None:
        t0 = time.perf_counter()
        try:
            restored, mask, predicted, tiles = self.restorer.run_rgb(item.prep.rgb, size, window)
        except Exception as e:
            self._failed(item, e)
            return
        self._submit_write(item, (restored, mask, predicted), time.perf_counter() - t0, tiles)

    def _failed(self, item: Loaded, error: Exception) -> None:
        _fail(item.job.record, f"inference failed: {one_line(error)}")
        self.gate.release(item.reserved)
        self.bar.update(1)

    def _submit_write(self, item: Loaded, outs, infer_seconds: float, tiles: int) -> None:
        future = self.writers.submit(_write, item, outs[0], outs[1], outs[2], infer_seconds, tiles, self.options)

        held = [item.reserved]  # not the item: the future keeps this callback, and must not keep the image

        def done(_):
            self.gate.release(held.pop())
            self.bar.update(1)

        future.add_done_callback(done)
        self.writes.append(future)
        while len(self.writes) > self.max_writes:
            self.writes.popleft().result()


# ---------------------------------------------------------------------------------------------
# A whole run.


def _check_options(options: RunOptions) -> None:
    if options.batch_size < 1:
        raise PlanError("--batch-size must be at least 1")


def _output_folders(jobs: List[Job], report: Path) -> set:
    return {p.parent for job in jobs for p in _job_outputs(job)} | {report.parent}


def _planned_summary(restorer, options: RunOptions, input_root: str) -> Summary:
    """The summary of the report written before any image, replaced by the final one."""
    return Summary(model=restorer.info.source, device=restorer.info.describe(), providers=restorer.info.providers,
                   batch_size=options.batch_size, input=input_root, **_precision(restorer),
                   note="in progress: the run's final report replaces this one")


def _precision(restorer) -> Dict[str, str]:
    """The graph's precision and why it was chosen, for the summary (other runners may lack them)."""
    return {"precision": getattr(restorer, "precision", ""), "model_choice": getattr(restorer, "model_choice", "")}


def _summarize(restorer, options: RunOptions, records: List[Record], start: float, infer_before: float,
               swept: int, input_root: str) -> Summary:
    for rec in records:  # anything left pending was cut short by an error we did not foresee
        if rec.status == "pending":
            _fail(rec, "not processed (internal error)")
    info = restorer.info
    return Summary(
        model=info.source, device=info.describe(), providers=info.providers, batch_size=options.batch_size,
        input=input_root, **_precision(restorer), wall_seconds=time.perf_counter() - start, inference_seconds=restorer.inference_seconds - infer_before,
        stale_temps_removed=swept,
    ).finalize(records)


def _save_report(path: Path, summary: Summary, records: List[Record]) -> Tuple[Optional[str], Optional[str]]:
    """Write the report; on failure (a full disk) return (reason, its JSON) so it is not lost."""
    try:
        write_report(path, summary, records)
        return None, None
    except OSError as e:
        return e.strerror or one_line(e), report_json(summary, records)


def run_folder(restorer, input_path, output_path, options: Optional[RunOptions] = None) -> RunResult:
    """Restore a folder (recursively, relative paths mirrored) or a single image.

    Args:
        restorer: a `runtime.Restorer` (its session and tiling parameters are used).
        input_path: a folder or an image file.
        output_path: a folder; for a single image also a file name with an image suffix.
        options: RunOptions.

    Returns:
        RunResult: one record per input, the summary (with end-to-end and inference-only
        images/s), where the report was written, or why it was not and its text.

    Raises:
        PlanError: the run could not start; nothing was written.
    """
    from tqdm import tqdm

    options = options or RunOptions()
    _check_options(options)
    start, infer_before = time.perf_counter(), restorer.inference_seconds
    jobs, report_path = plan_run(input_path, output_path, options)
    records = [j.record for j in jobs]
    # Temp files a killed run left between write and rename: only ours, only of dead processes.
    swept = len(sweep_stale_temps(_output_folders(jobs, report_path)))
    # The report first lists what this run will write, so a rerun after a kill knows its outputs.
    input_root = str(Path(input_path).resolve())
    _save_report(report_path, _planned_summary(restorer, options, input_root), records)
    todo = [j for j in jobs if j.record.status == "pending"]
    with tqdm(total=len(jobs), unit="img", desc="restoring", disable=not options.progress, dynamic_ncols=True) as bar:
        bar.update(len(jobs) - len(todo))  # skipped and refused at planning are done already
        _Pipeline(restorer, options, bar).run(todo)
    summary = _summarize(restorer, options, records, start, infer_before, swept, input_root)
    report_error, report_text = _save_report(report_path, summary, records)
    lines = summary_lines(summary, records, str(report_path), report_error)
    if options.log:
        for line in lines:
            options.log(line)
    return RunResult(records, summary, report_path, lines, report_error, report_text)
