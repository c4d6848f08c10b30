"""The check's four working steps; each fills one `Step` record and leaves the next ones able to run.

1. provider: ONNX Runtime's CUDA provider really runs a session (read back, no CPU fallback).
2. train_export: the tiny model trains with CUDA AMP and exports to ONNX (with its parity check).
3. run_compare: `restore-run --device cuda` on a folder of mixed sizes equals the CPU run within
   the fp32 tolerance, and every pixel outside the mask is the input's.
4. bench: `restore-bench`'s CUDA rows on the shipped model, 256² and 1024², batch 1 and 16.

Every command runs as a subprocess of `Kit` (its own time limit, its output in the log), through
the console entry points of this checkout. `probe` runs inside step 1's subprocess.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from benchmarks.gpukit.check import Kit, Step

TINY_TRAIN = ["--base-channels", "4", "--depth", "2", "--size", "64", "--batch-size", "32", "--epochs", "1",
              "--epoch-samples", str(32 * 300), "--max-steps", "300", "--val-count", "32", "--num-workers", "4",
              "--patience", "0", "--seed", "0", "--quiet"]
# Mixed sizes: odd sides, both orientations, a JPEG, and one above the 4 Mpx tiling budget.
MIXED = [(256, 256, "png"), (200, 300, "png"), (389, 517, "png"), (131, 97, "png"), (768, 1024, "png"),
         (1024, 768, "jpg"), (1100, 1500, "png"), (1856, 2304, "png")]
BENCH_GRID = ["--sizes", "256,1024", "--batch-sizes", "1,16", "--min-runs", "5", "--min-seconds", "0.3",
              "--warmup", "1", "--quality-per-photo", "1"]
# Time limits (seconds) of the steps before the bench, about twice what the first run on one H200
# took (benchmarks/results/gpukit-h200.json: probe 2, train 19, export 34, restore-run 12 and 21),
# so that a hung command leaves the bench its time: 88 s of the 450 s budget went before it.
PROBE_S, TRAIN_S, EXPORT_S = 30, 60, 60
RUN_S = (("cuda", 30), ("cpu", 45))
# Rows the issue names that restore-bench has no CUDA variant of: said in the report, not invented.
NOT_IN_BENCH = ["eager channels-last on CUDA (eager-channels-last is a CPU row)",
                "TorchScript on CUDA (torchscript is a CPU row)"]
TRT_ROWS = ("ort-tensorrt", "ort-tensorrt-fp16")


# ---------------------------------------------------------------------------------------------
# Step 1.


def probe(work: Path) -> Dict:
    """Runs in a subprocess with the kit's environment: which onnxruntime, whether a GPU exists,
    whether CUDAExecutionProvider (and TensorRT) really run the shipped model."""
    import ctypes

    import onnxruntime as ort

    from export.parity import FP32, pixel_parity, violations
    from restore_toolkit.messages import one_line
    from runtime.default_model import SHIPPED_ONNX
    from runtime.runner import Runner
    from runtime.session import cuda_driver_problem, make_session

    out: Dict = {"onnxruntime": {"version": ort.__version__, "file": ort.__file__,
                                 "available": ort.get_available_providers()}}
    problem = cuda_driver_problem()
    if problem:
        out["no_cuda_device"] = problem
        return out
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    image[:, 30:60, 40:90] = (250, 20, 200)  # a painted block: something for the mask to find
    try:
        session, info = make_session(SHIPPED_ONNX, device="cuda")
        cuda_out = Runner(session, info).run(image)
        out["cuda"] = {"ok": True, "providers": session.get_providers()}
        cpu_session, cpu_info = make_session(SHIPPED_ONNX, device="cpu")
        figures = pixel_parity(image, Runner(cpu_session, cpu_info).run(image), cuda_out)
        out["cuda"]["parity_vs_cpu"] = {**figures, "violations": violations(figures, FP32)}
    except Exception as e:  # DeviceUnavailableError names what is missing
        out["cuda"] = {"ok": False, "reason": one_line(e, 400)}
    try:
        ctypes.CDLL("libnvinfer.so.10")
    except OSError:
        out["tensorrt"] = {"ok": False, "reason": "TensorRT 10 is not installed (libnvinfer.so.10 not found)"}
        return out
    try:
        session, info = make_session(SHIPPED_ONNX, provider="tensorrt", trt_cache_dir=str(work / "trt-cache"))
        Runner(session, info).run(image)
        out["tensorrt"] = {"ok": True, "providers": session.get_providers()}
    except Exception as e:
        out["tensorrt"] = {"ok": False, "reason": one_line(e, 400)}
    return out


def provider(kit: Kit, step: Step) -> None:
    done = kit.python("probe", ["-m", "benchmarks.gpukit", "probe", "--work", str(kit.work)], cap_s=PROBE_S)
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return step.fail(f"the probe printed no result ({done.why()})")
    step.details = {**found, "install": kit.install_state}
    ort_info = found["onnxruntime"]
    if "no_cuda_device" in found:
        kit.no_cuda = found["no_cuda_device"]
        return step.fail(f"no CUDA device: {kit.no_cuda}")
    trt = found.get("tensorrt", {})
    kit.trt_problem = None if trt.get("ok") else trt.get("reason", "not probed")
    cuda = found["cuda"]
    if not cuda["ok"]:
        private = kit.site and ort_info["file"].startswith(str(kit.site))
        where = "" if private else f"; onnxruntime {ort_info['version']} came from {ort_info['file']}, not the kit's install"
        # ORT logs the library that did not load (and why) on stderr only: the most useful line.
        loader = [re.sub(r"\x1b\[[0-9;]*m", "", ln[ln.index("Failed to load library"):]).strip()
                  for ln in done.tail if "Failed to load library" in ln]
        return step.fail(cuda["reason"] + where + (f"; ORT: {loader[-1][:300]}" if loader else ""))
    step.ok(f"onnxruntime {ort_info['version']} runs the shipped model on {cuda['providers'][0]}; "
            f"TensorRT: {'loads' if trt.get('ok') else kit.trt_problem}")


# ---------------------------------------------------------------------------------------------
# Step 2.


def train_export(kit: Kit, step: Step) -> None:
    out, summary_path, onnx_path = kit.work / "train", kit.work / "train-summary.json", kit.work / "tiny.onnx"
    done = kit.console("restore-train", ["--device", "cuda", "--precision", "auto", "-o", str(out),
                                         "--report", str(summary_path), *TINY_TRAIN], cap_s=TRAIN_S)
    if done.rc != 0:
        return step.fail(f"restore-train: {done.why()}")
    s = json.loads(summary_path.read_text())
    final_loss = (s.get("final") or {}).get("loss")
    step.details["train"] = {k: s.get(k) for k in ("steps", "device", "precision", "samples_per_s", "stopped")}
    step.details["train"].update(final_loss=final_loss, seconds=round(done.seconds, 1))
    if not str(s.get("device")).startswith("cuda") or s.get("precision") not in ("fp16", "bf16"):
        return step.fail(f"trained on {s.get('device')} in {s.get('precision')}, not CUDA AMP")
    if final_loss is None or not math.isfinite(final_loss):
        return step.fail(f"final validation loss is {final_loss}")
    done = kit.console("restore-export", ["onnx", "--checkpoint", str(out / "best.safetensors"), "-o", str(onnx_path),
                                          "--overwrite"], cap_s=EXPORT_S)
    step.details["export"] = {"seconds": round(done.seconds, 1), "bytes": onnx_path.stat().st_size if onnx_path.exists() else None}
    if done.rc != 0:
        return step.fail(f"restore-export onnx: {done.why()}")
    step.ok(f"{s['steps']} steps on {s['device']} in {s['precision']} AMP ({s.get('samples_per_s') or 0:.0f} samples/s), "
            f"final loss {final_loss:.4f}; exported and verified against eager")


# ---------------------------------------------------------------------------------------------
# Step 3.


def _write_inputs(folder: Path) -> List[str]:
    from PIL import Image

    from benchmarks.inputs import corrupted_batch

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k, (h, w, fmt) in enumerate(MIXED):
        name = f"{k:02d}-{w}x{h}.{fmt}"
        Image.fromarray(corrupted_batch(1, h, w, seed=100 + k)[0]).save(folder / name, quality=95)
        names.append(name)
    return names


def _load(path: Path, mode: str = "RGB") -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def compare_runs(folder: Path, cuda_report: Dict, cpu_report: Dict) -> Dict:
    """Parity of the CUDA run against the CPU run, image by image, with the fp32 tolerance."""
    from export.parity import FP32, merge, pixel_parity, violations

    def outputs(report):
        return {r["input"]: r for r in report["records"] if r["status"] == "ok"}

    cuda, cpu = outputs(cuda_report), outputs(cpu_report)
    figures, cpu_exact = [], True
    for name in sorted(cuda.keys() & cpu.keys()):
        image = _load(folder / name)[None]  # (1, H, W, 3): what both runs decoded

        def triple(r):
            return (_load(Path(r["output"]))[None], _load(Path(r["mask"]), "L")[None, ..., None],
                    _load(Path(r["predicted"]))[None])
        ref, test = triple(cpu[name]), triple(cuda[name])
        figures.append(pixel_parity(image, ref, test))
        cpu_exact &= pixel_parity(image, test, ref)["outside_mask_exact"]
    merged = merge(figures) if figures else {}
    bad = violations(merged, FP32) if figures else ["no image was restored by both runs"]
    if not cpu_exact:
        bad.append("the CPU run changed pixels outside its mask")
    missing = sorted({r["input"] for rep in (cuda_report, cpu_report) for r in rep["records"]} - (cuda.keys() & cpu.keys()))
    if missing:
        bad.append(f"not restored by both runs: {', '.join(missing)}")
    return {"images": len(figures), "worst": merged, "violations": bad, "tolerance": "fp32"}


def run_compare(kit: Kit, step: Step) -> None:
    folder = kit.work / "mixed"
    names = _write_inputs(folder)
    runs = {}
    for device, cap in RUN_S:
        dest, report = kit.work / f"restored-{device}", kit.work / f"run-{device}.json"
        done = kit.console("restore-run", [str(folder), str(dest), "--device", device, "--precision", "fp32",
                                           "--format", "png", "--save-mask", "--save-predicted", "--overwrite",
                                           "--report", str(report), "--quiet"], cap_s=cap)
        if done.rc != 0:
            return step.fail(f"restore-run --device {device}: {done.why()}")
        runs[device] = json.loads(report.read_text())
    summaries = {d: {k: r["summary"].get(k) for k in ("providers", "ok", "failed", "pixels", "wall_seconds",
                                                      "images_per_second", "inference_images_per_second")}
                 for d, r in runs.items()}
    parity = compare_runs(folder, runs["cuda"], runs["cpu"])
    step.details = {"images": names, "runs": summaries, "parity": parity,
                    "tiled": [r["input"] for r in runs["cuda"]["records"] if r.get("tiles")]}
    if runs["cuda"]["summary"]["providers"][:1] != ["CUDAExecutionProvider"]:
        return step.fail(f"the CUDA run ran on {runs['cuda']['summary']['providers']}")
    if parity["violations"]:
        return step.fail("; ".join(parity["violations"]))
    w = parity["worst"]
    megapixels = sum(h * w for h, w, _ in MIXED) / 1e6
    step.ok(f"{parity['images']} images of mixed sizes ({megapixels:.1f} MP, {len(step.details['tiled'])} tiled) "
            f"equal the CPU run within fp32: largest difference {w['max_level_diff']} level(s) on "
            f"{w['differing_share']:.4%} of values, mask differs on {w['mask_disagreement']:.4%} of pixels; "
            f"outside the mask the input bytes")


# ---------------------------------------------------------------------------------------------
# Step 4.


# restore-bench runs in three parts, most valuable first, each with its own time limit: a part
# cut short loses its own report only (its rows' progress lines stay in gpukit.log). The first
# run's ORT part took 195 s, about 90 s of it before its first row (mostly the CPU references, since
# computed in one pass instead of two); the eager and compile parts never reached a row in 75 s.
BENCH_PARTS = (("ort", 175), ("eager", 100), ("compile", None))  # (part, seconds at most; None: what is left)


def cuda_rows() -> Dict[str, List[str]]:
    """restore-bench's CUDA rows, from its own list: ONNX Runtime rows (never measured before),
    eager PyTorch rows, then torch.compile (minutes of compiling, one graph per shape)."""
    from benchmarks.cli import BACKEND_NAMES

    ort = [n for n in BACKEND_NAMES if n.startswith("ort-") and not n.startswith("ort-cpu")]
    torch_rows = [n for n in BACKEND_NAMES if "cuda" in n and not n.startswith("ort-")]
    return {"ort": ort, "eager": [n for n in torch_rows if "compile" not in n],
            "compile": [n for n in torch_rows if "compile" in n]}


def bench(kit: Kit, step: Step) -> None:
    rows = cuda_rows()
    if kit.trt_problem:
        rows["ort"] = [n for n in rows["ort"] if n not in TRT_ROWS]
    step.details = {"not_in_restore_bench": NOT_IN_BENCH, "tensorrt": kit.trt_problem or "loads", "runs": {}}
    problems = [p for part, cap in BENCH_PARTS for p in _bench_part(kit, step, part, cap, rows[part])]
    if problems:
        return step.fail("; ".join(problems))
    note = "; ".join(f"{p}: parity outside tolerance in {', '.join(r['outside_tolerance'])}"
                     for p, r in step.details["runs"].items() if r["outside_tolerance"])
    step.ok(f"{sum(len(r['rows']) for r in step.details['runs'].values())} CUDA rows ran" + (f" ({note})" if note else "")
            + ("" if not kit.trt_problem else f"; TensorRT rows left out: {kit.trt_problem}"))


def _bench_part(kit: Kit, step: Step, part: str, cap: float, rows: List[str]) -> List[str]:
    """One restore-bench run of `rows` into bench-PART.json; the problems it had (none: [])."""
    from runtime.default_model import SHIPPED_ONNX

    json_path = kit.out / f"bench-{part}.json"
    done = kit.console("restore-bench", ["--model", "default", "--onnx", str(SHIPPED_ONNX),
                                         "--device", "cuda", "--backends", ",".join(rows), *BENCH_GRID,
                                         "--report", str(json_path)], cap_s=cap)
    if done.rc != 0 or not json_path.exists():
        return [f"bench-{part}: {done.why()}"]
    report = json.loads(json_path.read_text())
    failed = sorted({r["backend"] for r in report["rows"] if r["status"] == "failed"})
    out_of_tol = sorted({r["backend"] for r in report["rows"]
                         if r["status"] == "ok" and (r["parity"].get("violations") or [])})
    step.details["runs"][part] = {"seconds": round(done.seconds, 1), "rows": rows, "failed": failed,
                                  "outside_tolerance": out_of_tol}
    kit.bench_reports[part] = report
    return [f"rows failed: {', '.join(failed)}"] if failed else []


STEPS = [
    (1, "provider", "ONNX Runtime's CUDA provider loads and runs the shipped model (no silent CPU fallback)", provider),
    (2, "train-export", "the tiny model trains with CUDA AMP for 300 steps and exports to ONNX", train_export),
    (3, "restore-run", "restore-run --device cuda equals the CPU run on mixed sizes (fp32 tolerance; input bytes "
                       "outside the mask)", run_compare),
    (4, "bench", "restore-bench's CUDA rows on the shipped model at 256² and 1024², batch 1 and 16", bench),
]


def probe_main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpukit probe")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpukit/work"))
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.work), default=str))
    sys.stdout.flush()
    return 0
