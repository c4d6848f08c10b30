"""One benchmark run: the model, the inputs, every backend at every size, into one report dict.

For each backend: its artifacts are made first (export time is reported apart), memory peak is
reset, the backend is set up (setup time), then at each (image size, batch size) it is timed by
`benchmarks.timing.measure` and its outputs are compared with eager fp32's on the same inputs
through `export.parity`. A backend that cannot run here still gets its rows, with the reason.

The model under test is loaded by `benchmarks/subject.py`; the reference outputs, parity and the
held-out quality figures are measured by `benchmarks/reference.py`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from benchmarks import inputs
from benchmarks.backend import Backend, cuda_usable
from benchmarks.backends import select
from benchmarks.context import BenchContext
from benchmarks.peak import matmul_peak, merge_peaks
from benchmarks.reference import parity, quality_of, reference, reference_quality
from benchmarks.report import SCHEMA, environment
from benchmarks.subject import flops_per_image, load_subject
from benchmarks.timing import MemoryProbe, TimingConfig, measure, release_memory
from export.parity import tolerance_table
from restore_core.img_utils import normalize
from restore_core.model import count_parameters
from restore_core.pipeline import RestorationPipeline

CALIBRATION_IMAGES = 8
QUALITY_PER_PHOTO = 6  # held-out crops per photo for the quality columns: 30 images with the test extra


@dataclass
class BenchSettings:
    """Everything a run depends on; stored in the report as given.

    Args:
        checkpoint: a `.ckpt` or `.safetensors` to measure (PyTorch rows and exports come from it).
        onnx: a pixels-signature ONNX file for the ONNX Runtime rows.
        backends: names to run (None: all); exclude: names to leave out (e.g. "compile").
        device: "auto" (every device), "cpu" or "cuda": which backends' device to include.
        batch_sizes, sizes: the grid; images are `size`x`size`.
        timing: warm-up, minimum runs and duration.
        seed: seeds the default model's random weights.
        opset: ONNX opset for exports.
        quality_per_photo: crops per held-out photo of the quality set (0: no quality columns).
        int8_onnx: an int8 pixels graph for the int8 rows (default: quantized in the run).
        force_bf16: run bf16 rows where the CPU emulates bf16 (skipped by default).
        flip_ensemble: run the checkpoint's pipeline with (True) or without (False) the flip
            ensemble (None: as the checkpoint says); ONNX files given run as written.
    """

    checkpoint: Optional[str] = None
    onnx: Optional[str] = None
    backends: Optional[List[str]] = None
    exclude: List[str] = field(default_factory=list)
    device: str = "auto"
    batch_sizes: List[int] = field(default_factory=lambda: [1, 8])
    sizes: List[int] = field(default_factory=lambda: [256])
    timing: TimingConfig = field(default_factory=TimingConfig)
    seed: int = 0
    opset: int = 20
    quality_per_photo: int = QUALITY_PER_PHOTO
    int8_onnx: Optional[str] = None
    force_bf16: bool = False
    flip_ensemble: Optional[bool] = None


# ---------------------------------------------------------------------------------------------
# One backend.


def _row(backend: Backend, batch: int, size: int, **fields) -> Dict:
    return {"backend": backend.name, "description": backend.description, "device": backend.device,
            "precision": backend.precision, "batch": batch, "height": size, "width": size, **fields}


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0][:240] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def backend_quality(backend: Backend, cases, ref: Dict, log: Callable[[str], None]) -> Dict:
    """The backend's held-out figures, their drops against the reference and whether they stay
    within the int8 export's bounds (mask IoU drop <= 0.005, PSNR-in-mask drop <= 0.3 dB)."""
    from runtime.default_model import Bounds

    if backend.quality_skip:
        return {"status": "skipped", "reason": backend.quality_skip}

    def restore(rgb):
        backend.load(np.ascontiguousarray(rgb[None]))
        backend.run()
        restored, mask, _ = backend.fetch()
        return restored[0], mask[0, ..., 0] > 0

    try:
        q = quality_of(restore, cases)
    except Exception as e:
        log(f"{backend.name}: quality failed: {_one_line(e)}")
        return {"status": "failed", "reason": _one_line(e)}
    q.update(status="ok", mask_iou_drop=ref["mask_iou"] - q["mask_iou"],
             psnr_inside_drop=ref["psnr_inside"] - q["psnr_inside"])
    q["within_bounds"] = Bounds().holds(q)
    log(f"{backend.name}: quality on {q['images']} held-out images: mask IoU {q['mask_iou']:.4f} "
        f"({-q['mask_iou_drop'] or 0.0:+.4f}), PSNR in mask {q['psnr_inside']:.2f} dB ({-q['psnr_inside_drop'] or 0.0:+.2f})"
        + ("" if q["within_bounds"] else "  OUT OF BOUNDS"))
    return q


def run_backend(backend: Backend, ctx: BenchContext, cells: List[Tuple[int, int]], data: Dict,
                cfg: TimingConfig, flops: Dict[int, int], log: Callable[[str], None], quality_cases=None,
                quality_ref: Optional[Dict] = None) -> List[Dict]:
    """All rows of one backend (skipped or failed rows carry the reason); every ok row carries
    the backend's quality on the held-out set (`backend_quality`) when `quality_cases` are given.
    `fraction_of_peak` is filled in by `attach_peak` once the peak is known."""
    reason = backend.skip_reason(ctx)
    if reason:
        log(f"{backend.name}: skipped: {reason}")
        return [_row(backend, b, s, status="skipped", reason=reason) for s, b in cells]
    rows = []
    try:
        for key in backend.artifacts():
            ctx.artifact(key)  # exports before the memory reset: their peak is not the backend's
        release_memory()
        probe = MemoryProbe(cuda=backend.device == "cuda")
        probe.reset()
        t0 = time.perf_counter()
        backend.setup(ctx)
        setup_s = time.perf_counter() - t0
    except Exception as e:  # one clear reason on the row; the other backends still run
        log(f"{backend.name}: failed at setup: {_one_line(e)}")
        backend.teardown()
        return [_row(backend, b, s, status="failed", reason=_one_line(e)) for s, b in cells]
    for i, (size, batch) in enumerate(cells):
        images, ref, x = data[(size, batch)]
        try:
            if i:
                probe.reset()
            shape_setup_s = backend.load(images)
            timing = measure(backend.run, backend.clock(), cfg)
            memory = probe.read()
            summary = timing.summary(batch, size, size)
            gflops = flops[size] * summary["images_per_s"] / 1e9
            row = _row(backend, batch, size, status="ok", reason=None, setup_s=setup_s, shape_setup_s=shape_setup_s,
                       **summary, flops_per_image=flops[size], gflops_per_s=gflops,
                       fraction_of_peak=None,
                       **memory, parity=parity(backend, images, ref, x))
            log(f"{backend.name} batch {batch} {size}x{size}: median {summary['median_ms']:.1f} ms, "
                f"first call {summary['first_call_ms']:.0f} ms, {summary['runs']} runs")
        except Exception as e:
            log(f"{backend.name} batch {batch} {size}x{size}: failed: {_one_line(e)}")
            row = _row(backend, batch, size, status="failed", reason=_one_line(e))
        rows.append(row)
    if quality_cases and any(r["status"] == "ok" for r in rows):  # after timing: no effect on its memory peaks
        quality = backend_quality(backend, quality_cases, quality_ref, log)
        for r in rows:
            if r["status"] == "ok":
                r["quality"] = quality
    backend.teardown()
    release_memory()
    return rows


# ---------------------------------------------------------------------------------------------
# The run.


def _load_average() -> Optional[List[float]]:
    try:
        import os

        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def attach_peak(rows: List[Dict], peaks: Dict[str, Dict]) -> None:
    """Each fp32 row's GFLOP/s as a fraction of its device's fp32 matmul peak (other precisions:
    None, their kernels have other ceilings).

    An fp32 row faster than the peak means the peak was measured while neighbours held the
    cores: the device's peak is marked `under_measured` and none of its rows gets a fraction.
    """
    fp32 = [r for r in rows if r["status"] == "ok" and r["precision"] == "fp32"]
    for device, peak in peaks.items():
        peak["under_measured"] = any(r["gflops_per_s"] > peak["gflops"] for r in fp32 if r["device"] == device)
    for r in rows:
        if r["status"] == "ok":
            peak = peaks.get(r["device"])
            usable = peak is not None and not peak["under_measured"] and r["precision"] == "fp32"
            r["fraction_of_peak"] = r["gflops_per_s"] / peak["gflops"] if usable else None


def _measure_peaks(backends: List[Backend]) -> Dict[str, Dict]:
    peaks = {"cpu": matmul_peak("cpu")}
    if cuda_usable() and any(b.device == "cuda" for b in backends):
        peaks["cuda"] = matmul_peak("cuda", n=8192)
    return peaks


def _subject(settings: BenchSettings, pipeline: Optional[RestorationPipeline]):
    """(pipeline, model description with FLOPs per image, ONNX precision) for the run."""
    if pipeline is not None:
        from restore_core.checkpoint import weights_sha256

        subject = {"source": "given", "note": "a pipeline given by the caller", "model_config": asdict(pipeline.model.cfg),
                   "threshold": pipeline.threshold, "weights_sha256": weights_sha256(pipeline.model),
                   "flip_ensemble": pipeline.flip_ensemble,
                   "parameters": count_parameters(pipeline.model), "_flops_model": pipeline.model}
        onnx_precision = None
    else:
        pipeline, subject, onnx_precision = load_subject(settings)
    flops = flops_per_image(subject.pop("_flops_model"), settings.sizes, bool(subject.get("flip_ensemble")))
    subject["flops_per_image"] = {str(s): f for s, f in flops.items()}
    return pipeline, subject, onnx_precision, flops


def _inputs(settings: BenchSettings, pipeline, ctx: BenchContext, log) -> Tuple[List, Dict, Optional[List], Optional[Dict]]:
    """The (size, batch) cells, their images and reference outputs, and the held-out quality set."""
    cells = [(s, b) for s in settings.sizes for b in settings.batch_sizes]
    data = {}
    for size, batch in cells:
        images = inputs.corrupted_batch(batch, size, size)  # (N, H, W, 3) uint8
        x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2)).contiguous().numpy()  # (N, 3, H, W)
        data[(size, batch)] = (images, reference(pipeline, ctx, images), x)
    if not settings.quality_per_photo:
        return cells, data, None, None
    from restore_core.heldout import HELDOUT_SEED, heldout_set

    quality_cases = heldout_set(settings.quality_per_photo)
    quality_ref = reference_quality(pipeline, ctx, quality_cases)
    quality_ref.update(seed=HELDOUT_SEED, per_photo=settings.quality_per_photo,
                       sources=sorted({c.source for c in quality_cases}))
    log(f"reference quality on {len(quality_cases)} held-out images: mask IoU {quality_ref['mask_iou']:.4f}, "
        f"PSNR in mask {quality_ref['psnr_inside']:.2f} dB")
    return cells, data, quality_cases, quality_ref


def _selected(settings: BenchSettings) -> List[Backend]:
    backends = select(settings.backends, settings.exclude, settings.device)
    if settings.device == "cuda" and not cuda_usable():
        raise ValueError("--device cuda asked for, but CUDA is not usable here (torch.cuda.is_available() is False)")
    if not backends:
        raise ValueError("no backend selected")
    return backends


def check_settings(settings: BenchSettings) -> None:
    """Refuse, before anything is built or measured, a grid whose inputs alone would not fit in
    the memory available, and an --int8-onnx file whose metadata says it is not int8."""
    from restore_toolkit.room import machine_room

    free = machine_room()[0]  # MemAvailable, a cgroup's memory.max, ulimit -v: the least
    for size in settings.sizes:
        for batch in settings.batch_sizes:
            need = inputs.input_bytes(batch, size)
            if free is not None and need > free:
                option = f"--sizes {size}" if inputs.input_bytes(1, size) > free else f"--batch-sizes {batch}"
                raise ValueError(f"{option}: batch {batch} of {size}x{size} images needs {need / 1e9:.1f} GB for its "
                                 f"inputs alone, more than the {free / 1e9:.1f} GB of memory available")
    if settings.int8_onnx:
        from runtime.metadata import read_metadata

        precision = read_metadata(settings.int8_onnx).precision  # ModelFileError: not ours, unreadable
        if precision != "int8":
            raise ValueError(f"--int8-onnx {settings.int8_onnx}: its restore.precision is {precision!r}, not int8 "
                             "(restore-export onnx --precision int8 writes one)")


def run_benchmark(settings: BenchSettings, log: Callable[[str], None] = print,
                  pipeline: Optional[RestorationPipeline] = None) -> Dict:
    """Measure the selected backends; returns the report (see `benchmarks.report`).

    Args:
        settings: what to run.
        log: progress lines (the CLI prints them to stderr).
        pipeline: an eager pipeline to measure instead of loading or building one.

    Raises:
        ValueError: unknown backend names, bad sizes, inputs larger than the memory available,
            an --int8-onnx file that is not int8, CUDA asked for but unusable.
        CheckpointError / ModelFileError: the model file cannot be used.
    """
    t_start = time.perf_counter()
    check_settings(settings)
    load_before = _load_average()
    backends = _selected(settings)
    pipeline, subject, onnx_precision, flops = _subject(settings, pipeline)

    log("measuring the fp32 matmul peak (before the rows)")
    peaks_before = _measure_peaks(backends)
    wants_int8 = any(b.precision == "int8" for b in backends)
    calibration = (inputs.calibration_batches(CALIBRATION_IMAGES, settings.sizes[0], settings.sizes[0])
                   if wants_int8 else [])
    ctx = BenchContext(pipeline, Path(settings.onnx) if settings.onnx else None, onnx_precision or "fp32",
                       calibration, settings.opset, int8_onnx=settings.int8_onnx, force_bf16=settings.force_bf16)
    try:
        cells, data, quality_cases, quality_ref = _inputs(settings, pipeline, ctx, log)
        rows = []
        for backend in backends:
            rows += run_backend(backend, ctx, cells, data, settings.timing, flops, log, quality_cases, quality_ref)
        artifacts = dict(ctx.artifact_seconds)
        providers = dict(ctx.providers_seen)
        ort_threads = getattr(ctx, "ort_threads", None)
    finally:
        ctx.close()
    log("measuring the fp32 matmul peak (after the rows)")
    peaks_after = _measure_peaks(backends)
    peaks = {d: merge_peaks(peaks_before[d], peaks_after[d]) for d in peaks_before}
    attach_peak(rows, peaks)
    settings_dict = asdict(settings)
    settings_dict.update(torch_threads=torch.get_num_threads(), ort_cpu_threads=ort_threads)
    return {
        "schema": SCHEMA,
        "command": None,  # the CLI fills in the command line
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **environment(),
        "providers_used": providers,
        "settings": settings_dict,
        "model": subject,
        "reference": "eager fp32 on the CPU" if pipeline is not None else "ONNX Runtime CPU fp32",
        "matmul_peak": peaks,
        "artifacts_s": artifacts,
        "tolerances": tolerance_table(),
        "quality_reference": quality_ref,
        "rows": rows,
        "total_s": time.perf_counter() - t_start,
        # Other work on the machine slows every row, unevenly; the run's neighbours, for the reader.
        "load_average": {"start": load_before, "end": _load_average()},
    }
