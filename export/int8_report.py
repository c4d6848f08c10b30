"""The int8 export's report, read back from a graph's metadata and shown as lines.

`export_int8` (export/int8.py) stores its proof in the graph's `restore.int8` metadata: the
held-out figures of both graphs, the deltas against the bounds, the calibration, what stayed in
float. `restore-export int8` prints it when the export ends and `restore-export inspect` when a
file is read; both read it here.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional


def int8_summary(metadata_extra: Dict[str, str]) -> Optional[Dict[str, Any]]:
    """The parsed `restore.int8` report of a file's metadata (None for a float graph)."""
    text = metadata_extra.get("int8")
    return json.loads(text) if text else None


def format_int8(report: Dict[str, Any]) -> str:
    """Lines for `restore-export inspect` and the CLI: figures, deltas, bounds, what stayed float."""
    d, b, h = report["deltas"], report["bounds"], report["heldout"]
    lines = [
        f"int8 quality on {h['images']} held-out images (seed {h['seed']}; {', '.join(h['sources'])}), against the fp32 graph:",
        f"  mask IoU      fp32 {report['fp32']['mask_iou']:.4f}  int8 {report['int8']['mask_iou']:.4f}  "
        f"drop {d['mask_iou_drop']:+.4f} (allowed {b['max_iou_drop']})",
        f"  PSNR in mask  fp32 {report['fp32']['psnr_inside']:.2f}  int8 {report['int8']['psnr_inside']:.2f} dB  "
        f"drop {d['psnr_inside_drop']:+.3f} dB (allowed {b['max_psnr_drop']})",
        *_whole_lines(report),
        f"  changed outside the mask: {d['changed_outside_mask']} image(s)",
        f"  calibration: {report['calibration']['images']} images ({report['calibration']['source']}, "
        f"seed {report['calibration']['seed']}, {report['calibration']['method']}"
        + (f" {report['calibration']['percentile']} %" if report["calibration"].get("percentile") else "") + ")",
    ]
    kept = report.get("excluded") or []
    lines.append("  kept in float: " + (", ".join(
        r["tensor"] + ("" if r["qdq_sqnr"] is None else f" ({r['qdq_sqnr']:.1f} dB)") for r in kept)
        if kept else "none needed"))
    worst = report.get("worst_tensors") or []
    if worst:
        lines.append("  lowest quantization SQNR: " + ", ".join(f"{r['tensor']} {r['qdq_sqnr']:.1f} dB" for r in worst))
    return "\n".join(lines)


def _whole_lines(report: Dict[str, Any]) -> List[str]:
    """The whole photos' figures (none for a graph exported before they were checked)."""
    d, b, w = report["deltas"], report["bounds"], report["heldout"].get("whole")
    if not w or "whole_mask_iou_drop" not in d:
        return []
    f, q = report["fp32"]["whole"], report["int8"]["whole"]
    return [f"  on {w['images']} whole photos saved as {w['saved']}:",
            f"  mask IoU      fp32 {f['mask_iou']:.4f}  int8 {q['mask_iou']:.4f}  "
            f"drop {d['whole_mask_iou_drop']:+.4f} ({allowed(b.get('max_whole_iou_drop'))})",
            f"  PSNR in mask  fp32 {f['psnr_inside']:.2f}  int8 {q['psnr_inside']:.2f} dB  "
            f"drop {d['whole_psnr_inside_drop']:+.3f} dB ({allowed(b.get('max_whole_psnr_drop'))})"]


def allowed(bound: Optional[float]) -> str:
    """How a bound reads in the report: its value, or that there is none."""
    return "not bounded" if bound is None else f"allowed {bound}"
