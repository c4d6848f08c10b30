"""One image's way through a run: read and decoded past the memory gate, then written back.

`read_job` runs on a reader thread: the file is read and decoded (runtime/image_read.py) once
the run's memory gate admits it from its header, and split into the model's view
(runtime/image_pixels.py); a failure becomes the record's reason. `write_job` runs on a writer
thread: the result goes back into the source's mode and is encoded in its terms
(runtime/image_write.py), or, where nothing was found, the input file itself is the output; the
image, mask and prediction are then written as one group, landing together or not at all.
runtime/batch.py runs both around the model.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

import numpy as np
from PIL import Image

from restore_toolkit.fileio import atomic_write_group
from restore_toolkit.messages import one_line
from runtime import jpeg_blocks, read_warnings
from runtime.image_metadata import digest
from runtime.image_pixels import Prepared, finish, prepare
from runtime.image_read import read_image
from runtime.image_write import encode_image
from runtime.images import SUFFIX_FORMAT, WRITABLE_MODES, Header, ImageError, SourceInfo, TooManyPixels
from runtime.memory import MemoryGate, Reservation
from runtime.plan import Job
from runtime.report import fail as _fail

if TYPE_CHECKING:  # annotations only: runtime.batch imports this module
    from runtime.batch import RunOptions


@dataclass
class Loaded:
    """One input decoded and waiting for the model, then for its writer."""

    job: Job
    prep: Optional[Prepared]  # None once its output is encoded (`write_job`)
    source: SourceInfo
    read_seconds: float
    mode: Optional[int] = None  # the input's permission bits, kept by its outputs
    reserved: Optional[Reservation] = None  # what it holds in the run's MemoryGate until it is written
    box: Optional[Tuple[slice, slice]] = None  # the photo inside its frame, which the graph reads (Restorer.graph_box)


def read_job(job: Job, options: RunOptions, gate: Optional[MemoryGate] = None, ticket: int = 0,
             graph_pixels: Optional[Callable[[int, int, int], int]] = None) -> Optional[Loaded]:
    """Read and decode one input on a reader thread; a failure becomes the record's reason.

    With a `gate`, the image is decoded only once the gate admits it under job number `ticket`,
    from its header: its own bytes and its largest graph call, `graph_pixels(width, height,
    window)` input pixels when its tiles may be up to `window` pixels.
    """
    start = time.perf_counter()
    reserved: Optional[Reservation] = None

    def calls(header: Header):
        return lambda window: graph_pixels(header.width, header.height, window)

    def admit(header: Header) -> None:
        nonlocal reserved
        reserved = gate.admit(ticket, header, calls(header), predicted=job.predicted is not None)

    def refusal(header: Header) -> Optional[str]:
        return gate.refusal(header, calls(header), predicted=job.predicted is not None)

    loaded = None
    try:
        loaded = _decode(job, options, start, *((admit, refusal) if gate is not None else (None, None)))
    finally:
        if gate is not None:
            if reserved is None:
                gate.skip(ticket)  # failed before its size was known: the next job's turn
            elif loaded is None:
                gate.release(reserved)
    if loaded is not None:
        loaded.reserved = reserved
    return loaded


def _decode(job: Job, options: RunOptions, start: float, admit, refusal=None) -> Optional[Loaded]:
    """`read_job` past the memory gate: read_image (which calls `admit` from the header), then prepare.
    An image over --max-pixels that the memory budget could not hold either is told both at once
    (`refusal`: the gate's verdict, without waiting), so one more command is enough."""
    rec = job.record
    try:
        img, source = read_image(job.source, options.max_pixels, options.allow_lossy,
                                 job.format if _format_asked(job, options) else None, admit)
        rec.width, rec.height, rec.mode = img.width, img.height, img.mode
        prep = prepare(img, source.deep)
        if source.deep is not None:  # a 16-bit colour PNG: its values now live in `prep`
            rec.mode, source.deep = source.deep.mode, None
    except TooManyPixels as e:
        also = refusal(e.header) if refusal is not None else None
        _fail(rec, f"{e}, and {also}" if also else str(e))
        return None
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
    return Loaded(job, prep, source, rec.read_seconds, source.permissions)


def write_job(item: Loaded, outs: list, infer_seconds: float, tiles: int, options: RunOptions) -> None:
    """Put one result back into the source's mode and write its files (writer thread).

    `outs`: [restored, mask, predicted], emptied here, so that the pixels the encoder no longer
    needs (the model's view and the restored array, once in the source's mode) are freed before
    it runs: a JPEG written block by block holds its coefficients beside the image.
    Everything is encoded first, then the image, mask and prediction are written as one group:
    they land together or not at all.
    """
    start = time.perf_counter()
    job, rec = item.job, item.job.record
    restored, mask, predicted = outs
    outs.clear()
    corrupted = mask > 0  # (H, W) bool
    fmt = _write_format(job, item.source, options)
    try:
        # Nothing found: the output is the input itself, byte for byte, when it keeps its format.
        data = _unchanged_input(job, item.source) if not corrupted.any() and fmt == _real_format(item.source) else None
        if data is not None:
            rec.written, rec.output_mode = "copied", rec.mode
            rec.dropped = []  # the whole file, extra frames and bits included (--allow-lossy read less)
        else:
            original = _blockwise_source(job, item.source, fmt, corrupted, options)
            image = finish(item.prep, restored, corrupted, array=original is not None)
            item.prep = restored = None  # the model's view and the restored array: `image` holds the pixels now
            with read_warnings.collected(rec.notes):  # Pillow reading the source's EXIF again warns as the read did
                encoded = encode_image(image, fmt, item.source, options.quality, original=original, changed=corrupted)
            data, rec.output_mode, rec.kept_blocks = encoded.data, encoded.mode, encoded.kept_blocks
            rec.notes.extend([encoded.note] if encoded.note else [])
            rec.dropped.extend(encoded.lost)  # metadata the output cannot hold, named
            rec.written = "changed" if corrupted.any() else "rewritten"
        files = [(job.output, data)]
        if job.mask is not None:
            files.append((job.mask, _png(Image.fromarray(mask, "L"))))
        if job.predicted is not None:
            files.append((job.predicted, _png(Image.fromarray(predicted, "RGB"))))
        _put(files, item.mode, options)
    except OSError as e:  # a full disk, a read-only folder: the reason, not the temp file's name
        _fail(rec, f"not written: {e.filename or job.output}: {e.strerror or one_line(e)}")
        return
    except Exception as e:
        _fail(rec, f"not written: {job.output}: {one_line(e)}")
        return
    rec.status = "ok"
    rec.masked_share = float(corrupted.mean())
    rec.tiles = tiles
    rec.infer_seconds = infer_seconds
    rec.write_seconds = time.perf_counter() - start
    rec.seconds = item.read_seconds + infer_seconds + rec.write_seconds


def _format_asked(job: Job, options: RunOptions) -> bool:
    """True when the user chose the output format (--format, or an OUTPUT file of another suffix)."""
    return options.format is not None or \
        SUFFIX_FORMAT.get(job.output.suffix.lower()) != SUFFIX_FORMAT.get(job.source.suffix.lower())


def _real_format(source: SourceInfo) -> Optional[str]:
    return "JPEG" if source.format == "MPO" else source.format  # a camera's multi-picture JPEG


def _write_format(job: Job, source: SourceInfo, options: RunOptions) -> str:
    """The job's format, or the file's real one when its suffix lies (a PNG named .jpg) and no
    format was asked for: restored into what it holds, under its own name, never flattened."""
    real = _real_format(source)
    if real == job.format or real not in WRITABLE_MODES or _format_asked(job, options):
        return job.format
    job.record.notes.append(f"the {job.source.suffix} file holds a {real} image: written back as {real} under its name")
    return real


def _blockwise_source(job: Job, source: SourceInfo, fmt: str, corrupted: np.ndarray,
                      options: RunOptions) -> Optional[bytes]:
    """The source JPEG's bytes when its result is written back block by block, keeping the coded
    blocks the restoration did not touch (runtime/jpeg_blocks.py); None when it is encoded whole
    (another format or quality asked for, nothing changed, no jpeglib here): not read then."""
    if fmt != "JPEG" or source.jpeg is None or options.quality is not None or not jpeg_blocks.available():
        return None
    return _unchanged_input(job, source) if corrupted.any() else None


def _unchanged_input(job: Job, source: SourceInfo) -> Optional[bytes]:
    """The input's bytes, when they are still those that were decoded; None when the file cannot be
    read again or changed since (the caller encodes the result instead)."""
    try:
        data = job.source.read_bytes()
    except OSError:
        return None
    return data if source.digest is not None and digest(data) == source.digest else None


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def _put(files: List[Tuple[Path, bytes]], mode: Optional[int], options: RunOptions) -> None:
    # Without --overwrite an existing file is kept: a resumed run only adds what is missing.
    todo = [(path, data) for path, data in files if options.overwrite or not os.path.lexists(path)]
    if todo:
        atomic_write_group(todo, durable=options.sync_images, mode=mode)
