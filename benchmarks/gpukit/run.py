"""`check`'s run: the five steps of `steps.STEPS` in order, each recorded, then one report.

Kept apart from `check.py` (the kit the steps and the report use) so the modules import one way.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from benchmarks.gpukit import report, steps
from benchmarks.gpukit.check import CHECK_BUDGET_S, EXIT_FAILED, EXIT_OK, NO_CUDA_EXIT, REPORT_FILES, Kit, Step


def run_check(out: Path, work: Optional[Path] = None, site: Optional[Path] = None,
              budget_s: float = CHECK_BUDGET_S) -> int:
    """The five steps; returns the exit code (0 all passed, 1 a step failed, NO_CUDA_EXIT)."""
    out.mkdir(parents=True, exist_ok=True)
    work = work or Path(tempfile.mkdtemp(prefix="gpukit-work-"))
    work.mkdir(parents=True, exist_ok=True)
    kit = Kit(out, work, site, budget_s)
    started = time.time()
    kit.say(f"gpukit check: budget {budget_s:.0f} s, out {out}, work {work}, private site "
            f"{site if site and site.is_dir() else 'none'}")
    records = [Step(n, name, proves) for n, name, proves, _ in steps.STEPS]
    for record, (_, _, _, body) in zip(records, steps.STEPS):
        if kit.no_cuda:
            record.reason = f"no CUDA device: {kit.no_cuda}"
        else:
            t0 = time.monotonic()
            try:
                body(kit, record)
            except Exception as e:  # a step's own bug must not cost the report or the next steps
                record.fail(f"{type(e).__name__}: {e}")
            record.seconds = round(time.monotonic() - t0, 1)
        kit.say(f"step {record.number} {record.name}: {record.status.upper()} {record.reason}")
    code = NO_CUDA_EXIT if kit.no_cuda else EXIT_FAILED if any(r.status == "fail" for r in records) else EXIT_OK
    written = Step(5, "report", "the JSON and Markdown reports and the log, in one folder of at most 8 files")
    written.ok(f"{', '.join(REPORT_FILES[:3])}{' and the bench reports' if kit.bench_reports else ''} in {out}")
    records.append(written)
    report.write(out, report.build(kit, [asdict(r) for r in records], code, time.time() - started))
    kit.say(f"step 5 report: PASS wrote {', '.join(sorted(p.name for p in out.iterdir()))} (exit {code})")
    return code
