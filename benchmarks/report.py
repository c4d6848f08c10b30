"""The benchmark report: its JSON schema, the Markdown a README shows, the printed table, --compare.

The JSON holds every figure the run produced (machine, versions, providers, settings, the fp32
matmul peak, and one row per backend x batch size x image size, skipped rows with their reason);
the Markdown and the printed table are views of it, so a stored JSON can be re-rendered.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

from restore_core.fileio import atomic_write_text

SCHEMA = "restore-bench/1"

TOP_KEYS = ("schema", "command", "created_utc", "machine", "versions", "providers_available", "providers_used", "settings",
            "model", "reference", "matmul_peak", "artifacts_s", "tolerances", "rows", "total_s")
ROW_KEYS = ("backend", "description", "device", "precision", "batch", "height", "width", "status", "reason")
OK_ROW_KEYS = ("setup_s", "shape_setup_s", "first_call_ms", "runs", "timed_s", "median_ms", "p90_ms", "p99_ms",
               "min_ms", "ms_per_image", "images_per_s", "megapixels_per_s", "flops_per_image", "gflops_per_s",
               "fraction_of_peak", "peak_rss_mb", "rss_rise_mb", "cuda_max_allocated_mb", "parity")
PARITY_KEYS = ("differing_share", "max_level_diff", "mask_disagreement", "outside_mask_exact", "float_parity",
               "tolerance", "violations")
FLOAT_PARITY_KEYS = ("predicted_max_abs_diff", "predicted_mean_abs_diff", "mask_prob_max_abs_diff",
                     "mask_prob_mean_abs_diff", "composite_max_abs_diff", "composite_mean_abs_diff")


class ReportError(ValueError):
    """A report file that is not a restore-bench report (or not this schema)."""


# ---------------------------------------------------------------------------------------------
# Environment.


def _memory_gb() -> Optional[float]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def environment() -> Dict:
    """machine, versions and available providers, for the report."""
    import numpy
    import onnx
    import onnxruntime as ort
    import torch

    from runtime.session import available_cpus

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    from restore_core.cpu import cpu_model, instruction_sets

    isa = instruction_sets()
    cpu_flags = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                         if isa.get(f))
    return {
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpu_features": cpu_flags, "cpu_isa": isa,
                    "logical_cpus": os.cpu_count(), "usable_cpus": available_cpus(), "memory_gb": _memory_gb(),
                    "gpus": gpus},
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                     "onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": numpy.__version__},
        "providers_available": ort.get_available_providers(),
    }


# ---------------------------------------------------------------------------------------------
# Schema.


def _row_problem(row: Dict) -> str:
    """What a row lacks or gets wrong ('' when nothing)."""
    need = ROW_KEYS + (OK_ROW_KEYS if row.get("status") == "ok" else ())
    lacking = [k for k in need if k not in row]
    if lacking:
        return f"lacks {', '.join(lacking)}"
    if row["status"] == "ok":
        lacking = [k for k in PARITY_KEYS if k not in row["parity"]]
        if row["parity"].get("float_parity"):
            lacking += [k for k in FLOAT_PARITY_KEYS if k not in row["parity"]]
        return f"parity lacks {', '.join(lacking)}" if lacking else ""
    if row["status"] in ("skipped", "failed"):
        return "" if row.get("reason") else f"is {row['status']} but has no reason"
    return f"has unknown status {row['status']!r}"


def check_report(report: Dict, source: str = "report") -> None:
    """Raise ReportError naming the first missing piece; a check tests and --compare share."""
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ReportError(f"{source}: not a {SCHEMA} report (schema={report.get('schema') if isinstance(report, dict) else None!r})")
    missing = [k for k in TOP_KEYS if k not in report]
    if missing:
        raise ReportError(f"{source}: report lacks {', '.join(missing)}")
    for i, row in enumerate(report["rows"]):
        problem = _row_problem(row)
        if problem:
            raise ReportError(f"{source}: row {i} ({row.get('backend')}) {problem}")


def load_report(path: str | os.PathLike) -> Dict:
    try:
        report = json.loads(Path(path).read_text())
    except OSError as e:
        raise ReportError(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    check_report(report, str(path))
    return report


def write_json(report: Dict, path: str | os.PathLike, default: Optional[Callable] = None) -> None:
    """A report as compact JSON, without indentation: the result files travel with every GPU call
    (benchmarks/gpukit), and indentation was a fifth of their bytes. The Markdown written beside
    each report is the one to read."""
    atomic_write_text(path, json.dumps(report, separators=(",", ":"), default=default) + "\n")


def write_study(output: str, module: str, report: Dict, markdown: Callable[[Dict], str]) -> None:
    """A file-by-file study's report (benchmarks.graphic_shares, gutter_shares, solid_marks, and
    the mark studies of benchmarks/marks_common.py) as OUTPUT.json and OUTPUT.md, the command that
    made it and the machine first; the table printed."""
    report = {"command": shlex.join(["python", "-m", module, *sys.argv[1:]]), "machine": environment()["machine"], **report}
    write_json(report, output + ".json")
    atomic_write_text(output + ".md", markdown(report))
    print(markdown(report))


# ---------------------------------------------------------------------------------------------
# Views.


def _f(v, fmt: str, none: str = "–") -> str:
    return none if v is None else format(v, fmt)


def _share(x: float) -> str:
    """A share as a percentage, without rounding a few differing values to '0.00%'."""
    if x == 0:
        return "0"
    return f"{x:.2%}" if x >= 1e-4 else f"{100 * x:.1e}%"


def _parity_cell(p: Dict) -> str:
    """Short parity summary: levels, share, mask flips, outside exact, float max diff."""
    text = (f"≤{p['max_level_diff']} lvl, {_share(p['differing_share'])} values differ, "
            f"mask {_share(p['mask_disagreement'])}, "
            f"outside {'exact' if p['outside_mask_exact'] else 'DIFFERS'}")
    if p.get("float_parity"):
        text += f", float ≤{max(p['predicted_max_abs_diff'], p['mask_prob_max_abs_diff']):.1e}"
    return text


def _load_note(report: Dict) -> str:
    load = report.get("load_average") or {}
    start, end = load.get("start"), load.get("end")
    if not start or not end:
        return ""
    return (f" 1-minute load average {start[0]:.1f} at the start, {end[0]:.1f} at the end "
            f"({report['machine']['usable_cpus']} CPUs): above the CPU count, neighbours were competing for them.")


def _verdict(p: Dict, precision: str = "") -> str:
    if p.get("violations") is None:
        if precision == "int8":
            return "no parity tolerance for int8; see its held-out quality"
        return "no tolerance stated"
    return "within " + p["tolerance"] if not p["violations"] else "OUT: " + "; ".join(p["violations"])


def _isa_note(m: Dict) -> str:
    """'CPU instruction sets: AVX2 yes, AVX-512 yes, VNNI yes, bf16 native, AMX no.'"""
    isa = m.get("cpu_isa")
    if not isa:
        return f"CPU features: {m.get('cpu_features') or 'unknown'}."

    def yn(v):
        return "unknown" if v is None else ("yes" if v else "no")

    bf16 = "unknown" if isa.get("native_bf16") is None else ("native" if isa["native_bf16"] else "emulated")
    return (f"CPU instruction sets: AVX2 {yn(isa.get('avx2'))}, AVX-512 {yn(isa.get('avx512f'))}, "
            f"VNNI {yn(isa.get('vnni'))}, bf16 {bf16}, AMX {yn(isa.get('amx'))}.")


def _quality_cells(r: Dict) -> List[str]:
    """mask IoU, PSNR in mask, and the verdict against the int8 bounds, for one row."""
    q = r.get("quality")
    if not q:
        return ["–", "–", "–"]
    if q.get("status") != "ok":
        return ["–", "–", f"not measured: {q.get('reason')}"]
    verdict = "ok" if q["within_bounds"] else "LOSES QUALITY"
    return [f"{q['mask_iou']:.4f} ({-q['mask_iou_drop'] or 0.0:+.4f})", f"{q['psnr_inside']:.2f} ({-q['psnr_inside_drop'] or 0.0:+.2f})",
            verdict]


def _peak_note(peak: Dict) -> str:
    """The measured peak; with its rounds (reports since the peak has them), their spread."""
    def one(d, v):
        if "rounds_gflops" not in v:
            return f"{d} {v['gflops']:.0f} GFLOP/s"
        return (f"{d} {v['gflops']:.0f} GFLOP/s (best of {len(v['rounds_gflops'])} rounds before and after the rows "
                f"at {v['threads']} threads; the rounds' bests {min(v['rounds_gflops']):.0f}-"
                f"{max(v['rounds_gflops']):.0f}, spread {100 * v['spread']:.0f} %)")

    text = "Measured fp32 matmul peak in the same run: " + ", ".join(one(d, v) for d, v in peak.items()) + "."
    if any("rounds_gflops" in v for v in peak.values()):
        text += " % of peak is given for fp32 rows only: bf16, fp16 and int8 kernels have other ceilings."
    low = [d for d, v in peak.items() if v.get("under_measured")]
    if low:
        text += (f" An fp32 row ran faster than the {', '.join(low)} peak, so it was measured while neighbours "
                 "held the cores: no % of peak for that device.")
    return text


def _peak_cell(r: Dict) -> str:
    return _f(r["fraction_of_peak"] and 100 * r["fraction_of_peak"], ".0f") + "%"


def _speed_ratio(rows: List[Dict]) -> Dict:
    """median per-image time of eager fp32 at each (size, batch), for the 'vs eager' column."""
    return {(r["height"], r["batch"]): r["ms_per_image"] for r in rows if r["backend"] == "eager" and r["status"] == "ok"}


def _header_lines(report: Dict) -> List[str]:
    """Machine, model, peak, instruction sets, timing rules and the quality reference."""
    m, s, model = report["machine"], report["settings"], report["model"]
    gpus = ", " + ", ".join(m["gpus"]) if m["gpus"] else ", no GPU"
    lines = [
        f"Machine: {m['cpu']} ({m['usable_cpus']} usable CPUs{gpus}); "
        f"torch {report['versions']['torch']}, onnxruntime {report['versions']['onnxruntime']}; "
        f"torch threads {s['torch_threads']}, ORT CPU threads {s['ort_cpu_threads'] or '–'}.",
        f"Model: {model['note']}; {model['parameters'] / 1e6:.2f} M parameters, "
        + ", ".join(f"{int(f) / 1e9:.1f} GFLOP per {k}² image" for k, f in model["flops_per_image"].items())
        + ("; the flip ensemble: two passes per image" if model.get("flip_ensemble") else "; one view per image")
        + ".",
        _peak_note(report["matmul_peak"]),
        _isa_note(m),
        f"Timing: first call and {s['timing']['warmup_runs']} warm-up run(s) untimed, then at least "
        f"{s['timing']['min_runs']} runs and {s['timing']['min_seconds']:g} s; latency is per batch."
        + _load_note(report),
    ]
    qref = report.get("quality_reference")
    if qref:
        lines.insert(1, f"Quality: mask IoU and PSNR inside the true mask on {qref['images']} held-out images "
                        f"({qref['per_photo']} seeded crops of each of {', '.join(qref['sources'])}; seed {qref['seed']}); "
                        f"the reference ({report['reference']}) scores {qref['mask_iou']:.4f} and {qref['psnr_inside']:.2f} dB. "
                        "Δ is against it; a row losing more than 0.005 IoU or 0.3 dB is flagged LOSES QUALITY.")
    return lines


def _memory_cell(r: Dict) -> str:
    mem = f"{r['peak_rss_mb']:.0f} ({_f(r['rss_rise_mb'], '+.0f')})"
    if r.get("cuda_max_allocated_mb") is not None:
        mem += f", CUDA {r['cuda_max_allocated_mb']:.0f}"
    return mem


def _speed_lines(rows: List[Dict]) -> List[str]:
    """The speed table: one line per measured row."""
    eager = _speed_ratio(rows)
    lines = [
        "| backend | precision | batch | size | median ms | p90 ms | p99 ms | ms/image | vs eager | images/s | MP/s "
        "| GFLOP/s | % of peak | first call ms | setup s | peak RSS MB (rise) | mask IoU (Δ) | PSNR in mask dB (Δ) | quality |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | --- |",
    ]
    for r in (r for r in rows if r["status"] == "ok"):
        base = eager.get((r["height"], r["batch"]))
        cells = [r["backend"], r["precision"], r["batch"], f"{r['height']}²", f"{r['median_ms']:.1f}",
                 f"{r['p90_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['ms_per_image']:.1f}",
                 f"{base / r['ms_per_image']:.2f}×" if base else "–", f"{r['images_per_s']:.2f}",
                 f"{r['megapixels_per_s']:.2f}", f"{r['gflops_per_s']:.0f}", _peak_cell(r),
                 f"{r['first_call_ms']:.0f}", f"{r['setup_s']:.2f}", _memory_cell(r), *_quality_cells(r)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _parity_lines(report: Dict) -> List[str]:
    lines = [f"Parity against {report['reference']} on the same inputs (uint8 levels, share of differing "
             "output values, share of mask pixels that disagree, whether every outside-mask pixel is the input byte, "
             "and through the tensor signature where the backend has one the largest float |diff| of the "
             "prediction and mask probability):", "",
             "| backend | batch | size | parity | verdict |", "| --- | ---: | ---: | --- | --- |"]
    for r in (r for r in report["rows"] if r["status"] == "ok"):
        lines.append(f"| {r['backend']} | {r['batch']} | {r['height']}² | {_parity_cell(r['parity'])} | "
                     f"{_verdict(r['parity'], r['precision'])} |")
    return lines


def _not_run_lines(rows: List[Dict]) -> List[str]:
    """One line per backend and reason, in first-seen order, however many shapes it skipped."""
    not_run = dict.fromkeys((r["backend"], r["status"], r["reason"]) for r in rows if r["status"] != "ok")
    if not not_run:
        return []
    return ["", "| backend | not run |", "| --- | --- |"] + [f"| {n} | {st}: {why} |" for n, st, why in not_run]


def _footer_lines(report: Dict) -> List[str]:
    """What each backend is, export times, and the command that made the report."""
    described = {}
    for r in report["rows"]:
        described.setdefault(r["backend"], r["description"])
    lines = ["", "Backends:", ""] + [f"- `{name}`: {text}" for name, text in described.items()]
    if report["artifacts_s"]:
        lines += ["", "Export time (made once, not in any row): "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in report["artifacts_s"].items()) + "."]
    if report.get("command"):
        lines += ["", f"Command: `{report['command']}` ({report['total_s'] / 60:.1f} min)."]
    return lines


def markdown(report: Dict) -> str:
    """The tables a README shows: speed, parity, skipped backends, and how they were made."""
    lines = (["## Benchmark", ""] + _header_lines(report) + [""] + _speed_lines(report["rows"]) + [""]
             + _parity_lines(report) + _not_run_lines(report["rows"]) + _footer_lines(report))
    return "\n".join(lines) + "\n"


def write_markdown(report: Dict, path: str | os.PathLike) -> None:
    atomic_write_text(path, markdown(report))


def table(report: Dict) -> str:
    """The compact table printed at the end of a run."""
    eager = _speed_ratio(report["rows"])
    head = f"{'backend':<24} {'prec':<5} {'batch':>5} {'size':>5} {'median ms':>10} {'p90 ms':>8} {'ms/img':>8} " \
           f"{'vs eager':>8} {'img/s':>7} {'%peak':>6} {'first ms':>9} {'IoU':>7} {'PSNRm':>6}  parity"
    out = [head, "-" * len(head)]
    for r in report["rows"]:
        lead = f"{r['backend']:<24} {r['precision']:<5} {r['batch']:>5} {r['height']:>5} "
        if r["status"] != "ok":
            out.append(lead + f"{r['status']}: {r['reason']}")
            continue
        base = eager.get((r["height"], r["batch"]))
        ratio = f"{base / r['ms_per_image']:.2f}x" if base else "–"
        pct = _f(r["fraction_of_peak"] and 100 * r["fraction_of_peak"], ".0f")
        q = r.get("quality") or {}
        iou, psnr = ((f"{q['mask_iou']:.4f}", f"{q['psnr_inside']:.2f}") if q.get("status") == "ok" else ("–", "–"))
        flag = "  LOSES QUALITY" if q.get("status") == "ok" and not q["within_bounds"] else ""
        out.append(lead + f"{r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} {r['ms_per_image']:>8.1f} {ratio:>8} "
                   f"{r['images_per_s']:>7.2f} {pct:>6} {r['first_call_ms']:>9.0f} {iou:>7} {psnr:>6}  "
                   f"{_verdict(r['parity'], r['precision'])}{flag}")
    return "\n".join(out)


def compare(old: Dict, new: Dict) -> str:
    """Per row (backend, batch, size): old and new median latency and the change."""
    def key(r):
        return (r["backend"], r["batch"], r["height"], r["width"])

    before = {key(r): r for r in old["rows"]}
    out = []
    if old["machine"].get("cpu") != new["machine"].get("cpu") or old["machine"].get("gpus") != new["machine"].get("gpus"):
        out.append(f"note: different machines ({old['machine'].get('cpu')} {old['machine'].get('gpus')} -> "
                   f"{new['machine'].get('cpu')} {new['machine'].get('gpus')}); compare fractions of peak")
    head = f"{'backend':<24} {'batch':>5} {'size':>5} {'old ms':>9} {'new ms':>9} {'change':>8} {'old %peak':>9} {'new %peak':>9}"
    out += [head, "-" * len(head)]
    for r in new["rows"]:
        o = before.pop(key(r), None)
        lead = f"{r['backend']:<24} {r['batch']:>5} {r['height']:>5} "
        if o is None:
            out.append(lead + "new row")
        elif r["status"] != "ok" or o["status"] != "ok":
            out.append(lead + f"{o['status']} -> {r['status']}" + (f" ({r['reason']})" if r["status"] != "ok" else ""))
        else:
            change = r["median_ms"] / o["median_ms"] - 1
            pct = lambda x: _f(x and 100 * x, ".0f")  # noqa: E731
            out.append(lead + f"{o['median_ms']:>9.1f} {r['median_ms']:>9.1f} {change:>+8.1%} "
                       f"{pct(o['fraction_of_peak']):>9} {pct(r['fraction_of_peak']):>9}")
    for k in before:
        out.append(f"{k[0]:<24} {k[1]:>5} {k[2]:>5} not in the new run")
    return "\n".join(out)
