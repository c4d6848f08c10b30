"""The record of a folder run: one entry per input, a summary, the JSON report and console lines.

Names are kept as the OS gives them. A name that is not UTF-8 holds lone surrogates (Python's
surrogateescape); the report writes each as a JSON `\\udcNN` escape, which JSON readers take
back (Python's `json` gives the same string, `os.fsencode` the original bytes), and console
lines show it as `\\xNN`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from restore_toolkit.fileio import atomic_write_bytes
from restore_toolkit.messages import flat, one_line
from runtime.graphic import is_graphic_note
from runtime.read_warnings import warned

REPORT_NAME = "restore-report.json"
REPORT_VERSION = 1
REPORT_HEAD = 64  # bytes that hold a report's version, its first key
ALREADY_THERE = "already there"
NOT_AN_IMAGE = "not an image (no image suffix)"


@dataclass
class Record:
    """What happened to one input file."""

    input: str  # path relative to INPUT (the file name for a single image); a folder's ends with /
    status: str = "pending"  # ok | skipped | failed
    output: Optional[str] = None  # the restored image's path
    mask: Optional[str] = None
    predicted: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    mode: Optional[str] = None  # the source's mode (after decoding)
    output_mode: Optional[str] = None  # the mode written
    seconds: Optional[float] = None  # read + this image's share of inference + write
    read_seconds: Optional[float] = None
    infer_seconds: Optional[float] = None
    write_seconds: Optional[float] = None
    masked_share: Optional[float] = None  # share of pixels the model replaced
    written: Optional[str] = None  # changed | copied (nothing found: the input's bytes) | rewritten (nothing found, re-encoded)
    kept_blocks: Optional[float] = None  # a JPEG written block by block: share of its coded blocks kept as they were
    tiles: int = 0  # 0 = one pass
    slow: Optional[str] = None  # why its tiles cost far more than they need to, and what would help
    error: Optional[str] = None
    reason: Optional[str] = None  # why it was skipped: "already there", "not an image", ...
    notes: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)  # what a lossy write left out (--allow-lossy)


@dataclass
class Summary:
    """Totals and speed of a run."""

    model: str
    device: str
    providers: List[str]
    batch_size: int
    input: str = ""  # INPUT, resolved: a rerun recognises its own earlier outputs by it
    total: int = 0
    ok: int = 0
    skipped: int = 0  # all skips: already_there, and entries that are not images this tool restores
    already_there: int = 0  # skipped because their outputs exist
    failed: int = 0
    wall_seconds: float = 0.0
    inference_seconds: float = 0.0  # time the session spent running batches
    pixels: int = 0  # pixels restored (ok images)
    images_per_second: float = 0.0  # end to end: ok images / wall time
    inference_images_per_second: float = 0.0  # ok images / inference time: the model alone
    model_busy_share: float = 0.0  # inference time / wall time: 1.0 means the model never waited on I/O
    lossy: int = 0  # ok images written with something left out (--allow-lossy, metadata a format cannot hold)
    changed: int = 0  # ok images in which the model replaced pixels
    copied: int = 0  # ok images in which it found nothing: the output is the input's bytes
    graphics: int = 0  # of the unchanged (copied or rewritten), those left as graphics, not photos (runtime/graphic.py)
    stale_temps_removed: int = 0  # temp files of a killed earlier run, swept before this one
    note: str = ""
    precision: str = ""  # the graph's compute precision: fp32, fp16 or int8
    model_choice: str = ""  # why this graph of the shipped model ran (precision auto / fp32 / int8)

    def finalize(self, records: List[Record]) -> "Summary":
        self._count(records)
        self._rates()
        return self

    def _count(self, records: List[Record]) -> None:
        ok = [r for r in records if r.status == "ok"]
        skipped = [r for r in records if r.status == "skipped"]
        self.total, self.ok, self.skipped = len(records), len(ok), len(skipped)
        self.already_there = sum(r.reason == ALREADY_THERE for r in skipped)
        self.failed = sum(r.status == "failed" for r in records)
        self.lossy = sum(bool(r.dropped) for r in ok)
        self.changed = sum(r.written == "changed" for r in ok)
        self.copied = sum(r.written == "copied" for r in ok)
        self.graphics = sum(_graphic(r) is not None for r in ok)
        self.pixels = sum((r.width or 0) * (r.height or 0) for r in ok)

    def _rates(self) -> None:
        if self.wall_seconds > 0:
            self.images_per_second = self.ok / self.wall_seconds
            self.model_busy_share = min(1.0, self.inference_seconds / self.wall_seconds)
        if self.inference_seconds > 0:
            self.inference_images_per_second = self.ok / self.inference_seconds


def report_dict(summary: Summary, records: List[Record]) -> Dict[str, Any]:
    return {"report_version": REPORT_VERSION, "summary": asdict(summary), "records": [asdict(r) for r in records]}


def report_json(summary: Summary, records: List[Record]) -> str:
    return json.dumps(report_dict(summary, records), indent=2, ensure_ascii=False) + "\n"


def report_bytes(summary: Summary, records: List[Record]) -> bytes:
    """The report as UTF-8; a lone surrogate (a non-UTF-8 byte of a name) as its JSON escape."""
    return report_json(summary, records).encode("utf-8", "backslashreplace")


def is_report(path: str | os.PathLike) -> bool:
    """Whether the file at `path` starts as a report of this tool does (`report_json`: its version
    first); reads REPORT_HEAD bytes. Raises OSError when it cannot be read."""
    with open(path, "rb") as f:
        return b'"report_version"' in f.read(REPORT_HEAD)


def write_report(path: str | os.PathLike, summary: Summary, records: List[Record]) -> None:
    """Write the JSON report atomically and durably."""
    atomic_write_bytes(path, report_bytes(summary, records))


def fail(record: Record, reason: str) -> None:
    """The record failed, for `reason` (one line); a record failed already keeps its first reason."""
    if record.status != "failed":
        record.status = "failed"
        record.error = flat(reason)


def _precision(restorer) -> Dict[str, str]:
    """The graph's precision and why it was chosen, for the summary (other runners may lack them)."""
    return {"precision": getattr(restorer, "precision", ""), "model_choice": getattr(restorer, "model_choice", "")}


def planned_summary(restorer, batch_size: int, input_root: str) -> Summary:
    """The summary of the report written before any image, replaced by the final one."""
    return Summary(model=restorer.info.source, device=restorer.info.describe(), providers=restorer.info.providers,
                   batch_size=batch_size, input=input_root, **_precision(restorer),
                   note="in progress: the run's final report replaces this one")


def run_summary(restorer, batch_size: int, records: List[Record], start: float, infer_before: float,
                swept: int, input_root: str) -> Summary:
    """The final summary of a run begun at `start` (`time.perf_counter`), the restorer's time inside
    its session since `infer_before`; a record still pending fails."""
    for rec in records:  # anything left pending was cut short by an error we did not foresee
        if rec.status == "pending":
            fail(rec, "not processed (internal error)")
    info = restorer.info
    return Summary(
        model=info.source, device=info.describe(), providers=info.providers, batch_size=batch_size,
        input=input_root, **_precision(restorer), wall_seconds=time.perf_counter() - start,
        inference_seconds=restorer.inference_seconds - infer_before, stale_temps_removed=swept,
    ).finalize(records)


def save_report(path: Path, summary: Summary, records: List[Record]) -> Tuple[Optional[str], Optional[str]]:
    """Write the report; on failure (a full disk) return (reason, its JSON) so it is not lost."""
    try:
        write_report(path, summary, records)
        return None, None
    except OSError as e:
        return e.strerror or one_line(e), report_bytes(summary, records).decode("utf-8")  # names escaped


def earlier_outputs(path: str | os.PathLike, input_root: Path) -> Set[Path]:
    """The files an earlier run of the same INPUT lists in its report at `path` as written.

    Used when OUTPUT is INPUT: those files (outputs, masks, predictions, resolved) are the job's
    own results, not new inputs. A missing, unreadable or foreign report, or one of another
    INPUT, lists nothing.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        same_job = data.get("report_version") == REPORT_VERSION and data["summary"]["input"] == str(input_root)
        records = data["records"] if same_job else []
        return {Path(os.path.realpath(r[key])) for r in records for key in ("output", "mask", "predicted")
                if isinstance(r, dict) and isinstance(r.get(key), str)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def summary_lines(summary: Summary, records: List[Record], report_path: Optional[str] = None,
                  report_error: Optional[str] = None, max_listed: int = 20) -> List[str]:
    """Human-readable end-of-run lines: counts, speed, each failure, each skip other than "already
    there" and each lossy write with its reason.

    Every line is one line: names and reasons have their line breaks flattened.
    """
    lossy = f" ({summary.lossy} lossy, see below)" if summary.lossy else ""
    others = summary.skipped - summary.already_there
    other_skips = f", {others} skipped (see SKIPPED below)" if others else ""
    lines = [
        f"{summary.ok} restored{lossy}, {summary.already_there} skipped (already there){other_skips}, "
        f"{summary.failed} failed, of {summary.total} in {summary.wall_seconds:.1f} s on {summary.device}"
    ]
    lines += _written_line(summary)
    if summary.precision:
        lines.append(f"model: {flat(summary.model)}, {summary.model_choice or summary.precision}")
    if summary.ok:
        lines.append(
            f"speed: {summary.images_per_second:.2f} images/s end to end, "
            f"{summary.inference_images_per_second:.2f} images/s inference only "
            f"(model busy {summary.model_busy_share:.0%} of the run)"
        )
    if summary.stale_temps_removed:
        lines.append(f"removed {summary.stale_temps_removed} temp file(s) an interrupted earlier run left behind")
    lines += _record_lines(records, max_listed)
    if report_error:
        lines.append(f"report NOT written to {flat(report_path)} ({flat(report_error)}); it follows on stderr")
    elif report_path:
        lines.append(f"report: {flat(report_path)}")
    return lines


def _record_lines(records: List[Record], limit: int) -> List[str]:
    """The images named one per line: each lossy write, each image the memory budget slowed down,
    each skip but "already there", each failure (the first `limit` of each)."""
    done = [r for r in records if r.status == "ok"]
    lines = _listed("LOSSY", [(r.input, "; ".join(r.dropped)) for r in done if r.dropped], limit, "lossy writes")
    lines += _listed("SLOW", [(r.input, r.slow) for r in done if r.slow], limit, "slow images")
    lines += _listed("LEFT", [(r.input, note) for r in done if (note := _graphic(r))], limit, "graphics left")
    lines += _listed("WARNED", [(r.input, note) for r in done if (note := warned(r.notes))], limit, "warnings")
    lines += _skipped_lines(records, limit)
    return lines + _listed("FAILED", [(r.input, r.error or "") for r in records if r.status == "failed"],
                           limit, "failures")


def _graphic(record: Record) -> Optional[str]:
    """The note of an image left as it was because it is a graphic, else None."""
    return next((n for n in record.notes if is_graphic_note(n)), None)


def _skipped_lines(records: List[Record], limit: int) -> List[str]:
    """A SKIPPED line for each skip but "already there"; files that are not images share one line."""
    skips = [r for r in records if r.status == "skipped" and r.reason != ALREADY_THERE]
    named = [(r.input, r.reason or "") for r in skips if r.reason != NOT_AN_IMAGE]
    lines = _listed("SKIPPED", named, limit, "skips")
    plain = Counter(Path(r.input).suffix.lower() or "no suffix" for r in skips if r.reason == NOT_AN_IMAGE)
    if plain:
        kinds = ", ".join(f"{n} {flat(suffix)}" for suffix, n in plain.most_common(5))
        more = ", ..." if len(plain) > 5 else ""
        lines.append(f"SKIPPED {sum(plain.values())} file(s) that are not images ({kinds}{more}; each named in "
                     f"the report)")
    return lines


def _written_line(summary: Summary) -> List[str]:
    """How many restored images were changed and how many copied unchanged (nothing found)."""
    if not summary.ok:
        return []
    rewritten = summary.ok - summary.changed - summary.copied
    extra = f", {rewritten} rewritten (nothing found, re-encoded)" if rewritten else ""
    left = f"; {summary.graphics} of those graphics, not photos, each LEFT below" if summary.graphics else ""
    return [f"of the {summary.ok} restored: {summary.changed} changed, {summary.copied} copied as they were "
            f"(nothing found){extra}{left}"]


def _listed(tag: str, items: List[tuple], limit: int, what: str) -> List[str]:
    lines = [f"{tag} {flat(name)}: {flat(reason)}" for name, reason in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more {what} (all in the report)")
    return lines
