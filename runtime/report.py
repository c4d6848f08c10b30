"""The record of a folder run: one entry per input, a summary, the JSON report and console lines."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from runtime.fileio import atomic_write_text

REPORT_NAME = "restore-report.json"
REPORT_VERSION = 1


@dataclass
class Record:
    """What happened to one input file."""

    input: str  # path relative to INPUT (the file name for a single image)
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
    tiles: int = 0  # 0 = one pass
    error: Optional[str] = None
    notes: List[str] = field(default_factory=list)


@dataclass
class Summary:
    """Totals and speed of a run."""

    model: str
    device: str
    providers: List[str]
    batch_size: int
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    wall_seconds: float = 0.0
    inference_seconds: float = 0.0  # time the session spent running batches
    pixels: int = 0  # pixels restored (ok images)
    images_per_second: float = 0.0  # end to end: ok images / wall time
    inference_images_per_second: float = 0.0  # ok images / inference time: the model alone
    model_busy_share: float = 0.0  # inference time / wall time: 1.0 means the model never waited on I/O
    note: str = ""

    def finalize(self, records: List[Record]) -> "Summary":
        self.total = len(records)
        self.ok = sum(r.status == "ok" for r in records)
        self.skipped = sum(r.status == "skipped" for r in records)
        self.failed = sum(r.status == "failed" for r in records)
        self.pixels = sum((r.width or 0) * (r.height or 0) for r in records if r.status == "ok")
        if self.wall_seconds > 0:
            self.images_per_second = self.ok / self.wall_seconds
            self.model_busy_share = min(1.0, self.inference_seconds / self.wall_seconds)
        if self.inference_seconds > 0:
            self.inference_images_per_second = self.ok / self.inference_seconds
        return self


def report_dict(summary: Summary, records: List[Record]) -> Dict[str, Any]:
    return {"report_version": REPORT_VERSION, "summary": asdict(summary), "records": [asdict(r) for r in records]}


def write_report(path: str | os.PathLike, summary: Summary, records: List[Record]) -> None:
    """Write the JSON report atomically."""
    atomic_write_text(path, json.dumps(report_dict(summary, records), indent=2, ensure_ascii=False) + "\n")


def summary_lines(summary: Summary, records: List[Record], report_path: Optional[str] = None, max_failures: int = 20) -> List[str]:
    """Human-readable end-of-run lines: counts, speed, and each failure with its reason."""
    lines = [
        f"{summary.ok} restored, {summary.skipped} skipped (already there), {summary.failed} failed, "
        f"of {summary.total} in {summary.wall_seconds:.1f} s on {summary.device}"
    ]
    if summary.ok:
        lines.append(
            f"speed: {summary.images_per_second:.2f} images/s end to end, "
            f"{summary.inference_images_per_second:.2f} images/s inference only "
            f"(model busy {summary.model_busy_share:.0%} of the run)"
        )
    failed = [r for r in records if r.status == "failed"]
    for r in failed[:max_failures]:
        lines.append(f"FAILED {r.input}: {r.error}")
    if len(failed) > max_failures:
        lines.append(f"... and {len(failed) - max_failures} more failures")
    if report_path:
        lines.append(f"report: {report_path}")
    return lines
