"""The check's report: one JSON document with every step's record, and the Markdown a reader (and
the commit that records the first GPU run) needs: the machine, the steps, and the table of CUDA
rows it fills (ms per image at 256² and 1024², batch 1 and 16)."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

from restore_core.cpu import cpu_model
from restore_toolkit.fileio import atomic_write_text

SCHEMA = "gpukit-report/1"
CELLS = [(256, 1), (256, 16), (1024, 1), (1024, 16)]


def _version(name: str) -> Optional[str]:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def build(kit, steps: List[Dict], exit_code: int, seconds: float) -> Dict:
    from benchmarks.gpukit.check import gpu_names

    probe = next((s["details"] for s in steps if s["name"] == "provider"), {})
    return {
        "schema": SCHEMA,
        # Every committed result names the command that made it; the check is always run as a module.
        "command": "python -m benchmarks.gpukit " + " ".join(sys.argv[1:]),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "exit_code": exit_code,
        "seconds": round(seconds, 1),
        "machine": {"gpus": gpu_names(), "cpu": cpu_model(), "platform": platform.platform()},
        "versions": {"python": platform.python_version(), "torch": _version("torch"),
                     "onnxruntime": (probe.get("onnxruntime") or {}).get("version"),
                     "onnxruntime_from": (probe.get("onnxruntime") or {}).get("file"), "onnx": _version("onnx")},
        "environment": kit.environment,
        "install": kit.install_state,
        "steps": steps,
        "table": table_rows(kit.bench_reports),
    }


def table_rows(bench_reports: Dict[str, Dict]) -> List[Dict]:
    """One entry per CUDA backend: ms per image in each cell, or the row's status and reason."""
    out = []
    for part in ("ort", "eager", "compile"):
        report = bench_reports.get(part)
        if not report:
            continue
        by_backend: Dict[str, Dict] = {}
        for r in report["rows"]:
            entry = by_backend.setdefault(r["backend"], {"backend": r["backend"], "precision": r["precision"],
                                                         "cells": {}, "notes": []})
            key = f"{r['height']}x{r['batch']}"
            if r["status"] == "ok":
                bad = r["parity"].get("violations") or []
                entry["cells"][key] = {"ms_per_image": r["ms_per_image"], "images_per_s": r["images_per_s"],
                                       "parity_ok": not bad}
                entry["notes"] += [f"{r['height']}², batch {r['batch']}: {v}" for v in bad]
            else:
                entry["cells"][key] = {"status": r["status"]}
                if r["reason"] not in entry["notes"]:
                    entry["notes"].append(f"{r['status']}: {r['reason']}")
        out += by_backend.values()
    return out


def _cell(cell: Optional[Dict]) -> str:
    if not cell:
        return "—"
    if "ms_per_image" not in cell:
        return cell["status"]
    return f"{cell['ms_per_image']:.2f}" + ("" if cell["parity_ok"] else " ⚠")


def markdown(doc: Dict) -> str:
    m, v = doc["machine"], doc["versions"]
    verdict = {0: "every step passed", 1: "a step failed", 4: "no CUDA device: stopped at step 1"}
    lines = [
        "# GPU proof kit: report",
        "",
        f"{doc['created_utc']} · exit {doc['exit_code']} ({verdict.get(doc['exit_code'], '?')}) · {doc['seconds']:.0f} s",
        "",
        f"- GPU: {'; '.join(m['gpus']) or 'none found (nvidia-smi)'}",
        f"- CPU: {m['cpu']}; {m['platform']}",
        f"- Python {v['python']}, torch {v['torch']}, onnxruntime {v['onnxruntime']} ({v['onnxruntime_from']}), onnx {v['onnx']}",
        "",
        "| step | proves | result | s | reason |",
        "| ---: | --- | --- | ---: | --- |",
    ]
    for s in doc["steps"]:
        lines.append(f"| {s['number']} | {s['proves']} | **{s['status']}** | {s['seconds']:.0f} | {s['reason']} |")
    lines += ["", "## CUDA rows of restore-bench (ms per image; ⚠ parity outside its tolerance)", ""]
    lines += _bench_table(doc)
    lines += ["", "Full figures: bench-{ort,eager,compile}.json (restore-bench reports) and gpukit-report.json; "
              "every command and its output: gpukit.log.", ""]
    return "\n".join(lines)


def _bench_table(doc: Dict) -> List[str]:
    """The bench's CUDA rows, one column per (size, batch), and what it has no row for."""
    bench = next((s for s in doc["steps"] if s["name"] == "bench"), {})
    if not doc["table"]:
        return [f"Not measured: {bench.get('reason') or 'no bench step'}."]
    head = " | ".join(f"{size}², batch {batch}" for size, batch in CELLS)
    lines = [f"| backend | precision | {head} |", "| --- | --- |" + " ---: |" * len(CELLS)]
    for row in doc["table"]:
        cells = " | ".join(_cell(row["cells"].get(f"{size}x{batch}")) for size, batch in CELLS)
        lines.append(f"| `{row['backend']}` | {row['precision']} | {cells} |")
    notes = [f"- `{row['backend']}`: {n}" for row in doc["table"] for n in row["notes"]]
    lines += ["", *notes] if notes else []
    missing = (bench.get("details") or {}).get("not_in_restore_bench")
    if missing:
        lines += ["", "No restore-bench row exists for: " + "; ".join(missing) + "."]
    return lines


def write(out: Path, doc: Dict) -> None:
    atomic_write_text(out / "gpukit-report.json", json.dumps(doc, indent=2, default=str) + "\n")
    atomic_write_text(out / "gpukit-report.md", markdown(doc))
