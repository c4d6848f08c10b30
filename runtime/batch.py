"""The folder pipeline behind `restore-run`: read, infer and write overlap, nothing is lost.

    plan ──► reader threads (read + decode + EXIF, ahead of time)
                 │ in input order
                 ▼
             main thread: group same-size images into batches ──► ONNX Runtime
                 │                     (large images: overlapping tiles)
                 ▼
             writer threads (back to the source's mode, encode, atomic write)

Decoding (Pillow) and inference (ONNX Runtime) both release the GIL, so plain threads keep the
model fed while files are read and written. Every entry of INPUT ends as one record (planning,
runtime/plan.py): ok, skipped (its outputs exist and --overwrite is off, or it is not an image
this tool restores) or failed with the reason; a bad file never stops the rest, and neither does
a full disk: an image whose files (image, mask, prediction) could not all be written fails with
that reason and leaves none of them, and a report that cannot be written is handed back in
memory for the caller to print. Ctrl-C stops at once: reads in flight are abandoned (they write
nothing), writes in flight finish.

Torch-free: onnxruntime, numpy, pillow, pypng, tqdm.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np

from restore_toolkit.fileio import sweep_stale_temps
from restore_toolkit.messages import one_line
from runtime.images import DEFAULT_MAX_PIXELS, chroma_subsampling
from runtime.job_io import Loaded, read_job, write_job
from runtime.memory import ROOM_SHARE, MemoryGate
from runtime.plan import MASKS_DIR, PREDICTED_DIR, Job, PlanError, check_format, job_outputs, plan_run  # noqa: F401
from runtime.report import Record, Summary, planned_summary, run_summary, save_report, summary_lines
from runtime.report import fail as _fail
from runtime.tiling import plan_tiles

# An image whose tiles compute more than this many times the pixels that calls of the fastest
# size would is named at the end of the run (SLOW), with the --max-memory that gives it those calls.
SQUEEZED = 2.0


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
    room_share: float = ROOM_SHARE  # with max_memory None, the share of the machine's free memory it may add
    allow_lossy: bool = False  # restore the first frame/page or 8 bits of files that cannot be kept whole
    sync_images: bool = True  # fsync each image before its rename (reports are always synced)
    report: Optional[str] = None  # default OUTPUT/restore-report.json
    quality: Optional[int] = None  # JPEG and lossy WebP; None: a JPEG keeps its own tables, others 95
    progress: bool = True  # tqdm bar on stderr
    readers: int = 2  # decoding threads
    writers: int = 2  # encoding threads
    log: Optional[Callable[[str], None]] = None  # where summary lines go (default: nowhere)


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


class _Readers:
    """Reader threads that never hold up an exit (daemon threads, unlike ThreadPoolExecutor's).

    A read writes nothing, so on Ctrl-C one stuck on a slow or hung file system is abandoned
    rather than waited for; `submit` returns a standard Future.
    """

    def __init__(self, threads: int):
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = max(1, threads)
        for i in range(self.threads):
            threading.Thread(target=self._work, name=f"restore-read-{i}", daemon=True).start()

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self.tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (task := self.tasks.get()) is not None:
            future, fn, args = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as e:  # handed to the consumer, as ThreadPoolExecutor does
                    future.set_exception(e)

    def shutdown(self) -> None:
        """Cancel what has not started; the threads end after the read they are in."""
        while True:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        for _ in range(self.threads):
            self.tasks.put(None)


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
        self.plan = restorer.plan_memory(options.max_memory, options.tile_budget, options.room_share)
        self.window = self.plan.window_pixels  # the most input pixels of a call, for images decoded elsewhere (Ray)
        self.gate = MemoryGate(self.plan)
        self.buckets: "OrderedDict[Tuple[int, int], List[Loaded]]" = OrderedDict()
        self.max_pending = 2 * options.batch_size  # images waiting for same-size partners
        self.writes: deque = deque()
        self.max_writes = 4 * max(1, options.writers) + options.batch_size  # bounds results held in memory
        self.readers = _Readers(options.readers)
        self.writers = ThreadPoolExecutor(max(1, options.writers), thread_name_prefix="restore-write")

    def run(self, todo: List[Job]) -> None:
        interrupted = False
        try:
            window = 2 * max(1, self.options.readers) + self.options.batch_size
            for _job, item in _read_ahead(self.readers, todo, self._read, window, self._free_memory):
                if item is None:
                    self.bar.update(1)
                else:
                    self.take(item)
            self.drain()
        except KeyboardInterrupt:
            interrupted = True  # stop now: writes already running finish (whole), the rest is dropped
            raise
        finally:
            self.close(wait=not interrupted)

    def _read(self, ticket: int, job: Job) -> Optional[Loaded]:
        return read_job(job, self.options, self.gate, ticket, self._graph_pixels)

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

    def close(self, wait: bool = True) -> None:
        self.gate.close()  # readers waiting for memory give up instead of holding up the shutdown
        self.readers.shutdown()
        self.writers.shutdown(wait=wait, cancel_futures=True)

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
        item.box = self.restorer.graph_box(item.prep.rgb)  # a framed photo runs without its frame
        if item.box is not None:
            h, w = item.prep.rgb[item.box].shape[:2]
        bucket = self.buckets.setdefault((h, w), [])
        bucket.append(item)
        if len(bucket) >= max(1, min(self.options.batch_size, window // (h * w))):
            self._run_batch(self.buckets.pop((h, w)))
        elif sum(len(b) for b in self.buckets.values()) > self.max_pending:
            self._run_oldest()  # the oldest size waits no longer

    def _run_batch(self, items: List[Loaded]) -> None:
        batch = np.stack([it.prep.rgb if it.box is None else it.prep.rgb[it.box] for it in items])  # (N, h, w, 3)
        t0 = time.perf_counter()
        try:
            # The image decoder's raw output only when it is written (--save-predicted): without
            # it, a batch in which nothing is found skips that decoder.
            restored, mask, predicted = self.restorer.infer(batch, predicted=self.options.save_predicted,
                                                            grow=[self._grows(it) for it in items])
        except Exception as e:  # e.g. out of memory on a huge batch: fail these, keep going
            for it in items:
                self._failed(it, e)
            return
        finally:
            del batch
        share = (time.perf_counter() - t0) / len(items)
        for j, it in enumerate(items):
            t1 = time.perf_counter()
            try:  # large marks from smaller copies, the fill evened out (Restorer.after_graph)
                window = it.reserved.window if it.reserved else self.window
                image, found, raw = self.restorer.in_picture(it.prep.rgb, it.box, restored[j], mask[j, ..., 0],
                                                             None if predicted is None else predicted[j])
                image, found = self.restorer.after_graph(it.prep.rgb, image, found, window,
                                                         it.source.jpeg, it.source.orientation, self._exact(it),
                                                         it.source.lossless, it.job.record.notes)
            except Exception as e:
                self._failed(it, e)
                continue
            self._submit_write(it, (image, found, raw), share + time.perf_counter() - t1, 0)

    def _run_tiled(self, item: Loaded, size: int, window: int) -> None:
        t0 = time.perf_counter()
        item.job.record.slow = self._squeezed(item, size, window)
        try:
            restored, mask, predicted, tiles = self.restorer.run_rgb(item.prep.rgb, size, window,
                                                                     predicted=self.options.save_predicted,
                                                                     grow=self._grows(item), jpeg=item.source.jpeg,
                                                                     orientation=item.source.orientation,
                                                                     exact=self._exact(item),
                                                                     lossless=item.source.lossless,
                                                                     notes=item.job.record.notes)
        except Exception as e:
            self._failed(item, e)
            return
        self._submit_write(item, (restored, mask, predicted), time.perf_counter() - t0, tiles)

    def _squeezed(self, item: Loaded, size: int, window: int) -> Optional[str]:
        """Why an image's tiles cost more than twice the pixels that calls of the fastest size would
        compute (the memory budget left small calls beside the image), and what would help; else None."""
        h, w = item.prep.rgb.shape[:2]
        fastest = self.restorer.tile_for(h, w, None, self.plan.fastest_window)
        r = self.restorer
        computed, needed = ((1 if t is None else len(plan_tiles(h, w, t, r.halo, r.stride))) * r.call_pixels(h, w, t)
                            for t in (size, fastest))
        if self.tile is not None or not item.reserved or computed <= SQUEEZED * needed:
            return None
        return (f"the memory budget left calls of {window / 1e6:.2f} Mpx beside it: {computed / (h * w):.1f} times its "
                f"pixels computed, against {needed / (h * w):.1f} in calls of {self.plan.fastest_window / 1e6:.1f} Mpx "
                f"(--max-memory {self.plan.budget_for_fastest(item.reserved.image_bytes)})")

    def _grows(self, item: Loaded) -> bool:
        """Whether this image's mask is grown by a pixel: a JPEG with subsampled chroma, or a lossy
        WebP (Restorer.grows)."""
        src = item.source
        return self.restorer.grows(chroma_subsampling(src.format, src.lossless, src.jpeg and src.jpeg.subsampling))

    def _exact(self, item: Loaded) -> bool:
        """Whether this image's colours are exact at full resolution (Restorer.exact)."""
        return self.restorer.exact(item.source.lossless, item.source.jpeg)

    def _failed(self, item: Loaded, error: Exception) -> None:
        _fail(item.job.record, f"inference failed: {one_line(error)}")
        self.gate.release(item.reserved)
        self.bar.update(1)

    def _submit_write(self, item: Loaded, outs, infer_seconds: float, tiles: int) -> None:
        future = self.writers.submit(write_job, item, list(outs), infer_seconds, tiles, self.options)

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


def _output_folders(jobs: List[Job], report: Path) -> set:
    return {p.parent for job in jobs for p in job_outputs(job)} | {report.parent}


def run_folder(restorer, input_path, output_path, options: Optional[RunOptions] = None,
               plan: Optional[Tuple[List[Job], Path]] = None) -> RunResult:
    """Restore a folder (recursively, relative paths mirrored) or a single image.

    Args:
        restorer: a `runtime.Restorer` (its session and tiling parameters are used).
        input_path: a folder or an image file.
        output_path: a folder; for a single image also a file name with an image suffix.
        options: RunOptions.
        plan: what `plan_run(input_path, output_path, options)` returned, when the caller planned
            already (restore-run plans before the model loads, so a wrong argument costs nothing).

    Returns:
        RunResult: one record per input, the summary (with end-to-end and inference-only
        images/s), where the report was written, or why it was not and its text.

    Raises:
        PlanError: the run could not start; nothing was written.
    """
    from tqdm import tqdm

    options = options or RunOptions()
    start, infer_before = time.perf_counter(), restorer.inference_seconds
    jobs, report_path = plan or plan_run(input_path, output_path, options)
    records = [j.record for j in jobs]
    # Temp files a killed run left between write and rename: only ours, only of dead processes.
    swept = len(sweep_stale_temps(_output_folders(jobs, report_path)))
    # The report first lists what this run will write, so a rerun after a kill knows its outputs.
    input_root = str(Path(input_path).resolve())
    save_report(report_path, planned_summary(restorer, options.batch_size, input_root), records)
    todo = [j for j in jobs if j.record.status == "pending"]
    with tqdm(total=len(jobs), unit="img", desc="restoring", disable=not options.progress, dynamic_ncols=True) as bar:
        bar.update(len(jobs) - len(todo))  # skipped and refused at planning are done already
        _Pipeline(restorer, options, bar).run(todo)
    summary = run_summary(restorer, options.batch_size, records, start, infer_before, swept, input_root)
    report_error, report_text = save_report(report_path, summary, records)
    lines = summary_lines(summary, records, str(report_path), report_error)
    if options.log:
        for line in lines:
            options.log(line)
    return RunResult(records, summary, report_path, lines, report_error, report_text)
