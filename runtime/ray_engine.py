"""`restore-run --engine ray`: the local runner's job, spread over a Ray cluster with Ray Data.

    driver:  plan_run (the local runner's planning) ──► planned report (every output listed)
                 │ ray.data.from_items(the pending jobs, in input order)
                 ▼
    map_batches(_decode)         Ray tasks, in parallel: read + decode + EXIF (runtime.job_io.read_job)
                 ▼
    map_batches(_RestoreActor)   one ONNX Runtime session per actor (CPU or CUDA, checked like the
                 │               local runner's); same-size batching, tiling and atomic writes of
                 │               runtime.batch._Pipeline, so every output is written where it is made
                 ▼
    driver:  records merged back by input index ──► final report, summary lines, exit code

Only the scheduling differs from the local runner: the planning, the codecs, the writer, the
report and the exit codes are the same code, so the outputs are byte-identical. Each output is
written atomically by the worker that restored it; a worker that dies loses only the images it
had not written yet, and a rerun (skip-existing) completes them.

INPUT is a path every node sees or a URI of a pyarrow file system (runtime/ray_inputs.py);
OUTPUT is a path every node sees (a shared or mounted file system: writes are atomic renames).
Ray is an optional extra, imported only here and only when `--engine ray` runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from restore_toolkit.fileio import sweep_stale_temps
from restore_toolkit.messages import one_line
from runtime.batch import (
    RunOptions,
    RunResult,
    _output_folders,
    _Pipeline,
)
from runtime.job_io import Loaded, read_job
from runtime.plan import Job, PlanError, check_format
from runtime.ray_inputs import absolute_job, fetch, plan_input
from runtime.report import Record, planned_summary, run_summary, save_report, summary_lines
from runtime.report import fail as _fail
from runtime.tiling import DEFAULT_TILE_BUDGET

RAY_MISSING = "--engine ray needs Ray: pip install -e '.[ray]' (or pip install 'ray[data]>=2.40')"


# CPUs a decoding task reserves. Reading waits on storage about as long as decoding computes; and a
# request unlike the actors' keeps Ray Data from fusing decoding into the actors (where each actor
# would decode and infer in turn instead of decoding in parallel tasks ahead of it).
DECODE_CPUS = 0.5


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot run the job as asked; one line says why."""


@dataclass
class RayOptions:
    """Where and how wide a Ray run is; the `--engine ray` options of `restore-run`."""

    address: Optional[str] = None  # join this cluster ('auto', 'HOST:6379', 'ray://...'); None: start a local Ray
    actors: int = 1  # inference actors, one ONNX Runtime session each
    gpus_per_actor: Optional[float] = None  # None: 1 when CUDA is asked for (or auto on a GPU cluster), else 0
    device: str = "auto"
    provider: Optional[str] = None
    threads: Optional[int] = None  # ORT threads of a CPU actor, and the CPUs it reserves (default 1)
    tile: Optional[int] = None
    tile_budget: Optional[int] = None
    coarse: bool = True  # also run large images smaller (runtime/pyramid.py)
    even_fill: bool = True  # average the fill with a smooth one (runtime/fill.py)
    grow_subsampled: bool = True  # grow the mask of chroma-subsampled JPEGs and lossy WebPs by a pixel
    paint_grow: bool = True  # grow each flat mark over its own paint (runtime/paint_grow.py)
    jpeg_ringing: bool = False  # also take in the ring a JPEG's paint left (runtime/jpeg_ringing.py)
    solid_check: Optional[bool] = None  # drop marks with no solid colour (lossless) or of their surroundings' (None: shipped model only)
    graphic_check: Optional[bool] = None  # leave graphics (charts, screens) as they are (None: shipped model only)
    num_cpus: Optional[int] = None  # CPUs of a local Ray started here (default: enough for the actors)
    verbose: bool = False  # let Ray's own log lines (and ONNX Runtime's in the actors) through


def import_ray():
    """Ray, or RayUnavailable saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(RAY_MISSING) from None
    return ray


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


class _Totals:
    """What `report.run_summary` reads from a Restorer, gathered from the workers."""

    def __init__(self, info, inference_seconds: float = 0.0):
        self.info, self.inference_seconds = info, inference_seconds


# -- what runs on the workers ------------------------------------------------------------------

def _probe(model, device: str, provider: Optional[str], threads: Optional[int]):
    """Open the model where an actor would run: the same provider checks, before any image."""
    from runtime.default_model import DefaultModelMissing
    from runtime.metadata import ModelFileError
    from runtime.restorer import Restorer
    from runtime.session import DeviceUnavailableError

    try:
        return Restorer(model, device=device, provider=provider, threads=threads).info
    except (ModelFileError, DeviceUnavailableError, DefaultModelMissing, ValueError) as e:
        return e  # re-raised on the driver as the local runner raises it, without a remote traceback


def _decode(batch: Dict[str, np.ndarray], options: RunOptions, fs=None) -> Dict[str, np.ndarray]:
    """Read and decode a batch of jobs (a Ray task); a bad file becomes its failed record.

    With `fs` (INPUT given as a URI), each input is first fetched through that pyarrow file system.
    """
    import shutil
    import tempfile

    payloads = []
    for blob in batch["job"]:
        job: Job = pickle.loads(blob)
        scratch = Path(tempfile.mkdtemp(prefix="restore-fetch-")) if fs is not None else None
        try:
            local = fetch(fs, job, scratch) if fs is not None else job
            loaded = read_job(local, options) if local is not None else None
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        if loaded is not None:
            loaded.job = job  # the record and outputs are the job's, wherever its bytes were read from
            if fs is not None:
                loaded.mode = None  # the scratch copy's permission bits are not the source's
        payloads.append(pickle.dumps(loaded if loaded is not None else job, protocol=5))
    return {"idx": batch["idx"], "item": np.array(payloads, dtype=object)}


class _RestoreActor:
    """One ONNX Runtime session per actor; restores and writes each batch it is handed."""

    def __init__(self, model_ref: list, ray_options: RayOptions, options: RunOptions):
        import ray

        from runtime import session
        from runtime.restorer import Restorer

        session.LOG_SEVERITY = 2 if ray_options.verbose else 4  # ONNX Runtime's own lines, as on the driver

        # The model comes by reference (in a list, so Ray does not resolve it at creation): a restarted
        # actor fetches it again from the driver's copy.
        self.restorer = Restorer(ray.get(model_ref[0]), device=ray_options.device, provider=ray_options.provider,
                                 threads=ray_options.threads, tile=ray_options.tile,
                                 tile_budget=ray_options.tile_budget or DEFAULT_TILE_BUDGET, batch_size=options.batch_size,
                                 coarse=ray_options.coarse, even_fill=ray_options.even_fill,
                                 grow_subsampled=ray_options.grow_subsampled, paint_grow=ray_options.paint_grow,
                                 jpeg_ringing=ray_options.jpeg_ringing, solid_check=ray_options.solid_check,
                                 graphic_check=ray_options.graphic_check)
        # Several actors share a node: each may add the fixed default, not half of what the node
        # has free, as a local run may (runtime/memory.py), unless --max-memory names a figure.
        self.options = replace(options, room_share=0.0)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        jobs: List[Job] = []
        pipeline = _Pipeline(self.restorer, self.options, _NoBar())
        try:
            for blob in batch["item"]:
                item = pickle.loads(blob)
                if isinstance(item, Loaded):
                    jobs.append(item.job)
                    pipeline.take(item)
                else:  # failed while decoding: its record already says why
                    jobs.append(item)
            pipeline.drain()
        finally:
            pipeline.close()
        for job in jobs:
            if job.record.status == "pending":  # cannot happen short of a bug; never report it as done
                _fail(job.record, "not processed (internal error)")
        records = [json.dumps(asdict(job.record)) for job in jobs]
        return {"idx": batch["idx"], "record": np.array(records, dtype=object)}


# -- the driver -----------------------------------------------------------------------------------

def _wants_cuda(device: str, provider: Optional[str]) -> bool:
    return device == "cuda" or provider in ("cuda", "tensorrt")


def _start(ray, ray_options: RayOptions, cpus_needed: float) -> bool:
    """Join the cluster, or start a local Ray; True when this call started it (and must stop it).

    Ray's own log lines (its start-up notices, the workers' output, the usage-stats notice) stay
    behind --verbose: every problem reaches the user as one line of ours.
    """
    if ray.is_initialized():
        return False
    if not ray_options.verbose:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no notice about it at start-up
        logging.getLogger("ray").setLevel(logging.ERROR)
    kwargs = dict(logging_level=logging.INFO if ray_options.verbose else logging.ERROR,
                  log_to_driver=ray_options.verbose, include_dashboard=False)
    if ray_options.address:
        ray.init(address=ray_options.address, **kwargs)
    else:
        from restore_toolkit.console import available_cpus

        num_cpus = ray_options.num_cpus or max(available_cpus(), int(np.ceil(cpus_needed)))
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


@contextlib.contextmanager
def native_lines_hidden(hidden: bool = True) -> Iterator[None]:
    """Keep the lines Ray's C++ core writes straight to file descriptor 2 off the terminal.

    They bypass Python (an actor-restart notice at every run, for one), so no logging setting
    reaches them. While this holds, fd 2 points at /dev/null and Python's `sys.stderr` (our lines,
    the progress bar) at a copy of the real one. A `sys.stderr` that is not fd 2 (a test's
    capture) is left as it is.
    """
    if not hidden:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    try:
        on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        on_fd2 = False
    if on_fd2:
        sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                          closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        with warnings.catch_warnings():  # Ray's Python warnings too (its Data's actor-pool advice)
            warnings.filterwarnings("ignore", module=r"ray(\.|$)")
            yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def _check_cluster(ray, actors: int, cpus: float, gpus: float) -> None:
    have = ray.cluster_resources()
    if gpus and have.get("GPU", 0) < gpus:
        raise RayUnavailable(f"{actors} actor(s) with --gpus-per-actor {gpus:g} need GPUs; the Ray cluster has "
                             f"{have.get('GPU', 0):g}")
    if have.get("CPU", 0) < cpus:
        raise RayUnavailable(f"{actors} actor(s) and the decoding tasks need {cpus:g} CPUs; the Ray cluster has "
                             f"{have.get('CPU', 0):g} (fewer --actors or --threads)")


def _actor_resources(ray, ray_options: RayOptions) -> Tuple[float, float]:
    """(CPUs, GPUs) each actor reserves: --threads CPUs on the CPU, one CPU beside a GPU."""
    gpus = ray_options.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if _wants_cuda(ray_options.device, ray_options.provider) or (
            ray_options.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0) else 0.0
    cpu_actors = not gpus and not _wants_cuda(ray_options.device, ray_options.provider)
    return (float(ray_options.threads or 1) if cpu_actors else 1.0), gpus


def _probe_model(ray, model_ref, resolved, ray_options: RayOptions, cpus: float, gpus: float):
    """Open the model where an actor will run; its error is raised here as the local runner raises it."""
    probe = ray.remote(_probe).options(num_cpus=cpus, num_gpus=gpus)
    info = ray.get(probe.remote(model_ref, ray_options.device, ray_options.provider, ray_options.threads or 1))
    named = not isinstance(resolved, bytes)
    if isinstance(info, BaseException):
        if named and info.args and str(info.args[0]).startswith("<bytes>"):
            info.args = (str(resolved) + info.args[0][len("<bytes>"):],) + info.args[1:]  # name the file, as locally
        raise info
    if named:
        info.source = str(resolved)
    return info


def run_folder_ray(model, input_path, output_path, options: Optional[RunOptions] = None,
                   ray_options: Optional[RayOptions] = None, plan=None) -> RunResult:
    """`runtime.batch.run_folder` on Ray Data: the same plan, outputs, report and exit code.

    Args:
        model: an ONNX file, or None / 'default' for the shipped model. Its bytes travel to the
            actors, so the nodes need no copy of it.
        input_path: as for `run_folder`, a path every node sees, or a pyarrow URI (s3://, file://...).
        output_path: as for `run_folder`, a path every node sees.
        options: RunOptions (readers/writers are the threads inside each actor).
        ray_options: RayOptions.
        plan: what `plan_input` returned, when the caller planned already.

    Raises:
        PlanError: the run could not start; nothing was written.
        RayUnavailable: Ray is missing, or the cluster lacks the GPUs or CPUs asked for.
        ModelFileError, DeviceUnavailableError, DefaultModelMissing: as the local runner.
    """
    from runtime.default_model import resolve_model
    from runtime.session import _resolve_device

    options = options or RunOptions()
    ray_options = ray_options or RayOptions()
    check_format(options)
    if ray_options.actors < 1:
        raise PlanError("--actors must be at least 1")
    start = time.perf_counter()
    _resolve_device(ray_options.device, ray_options.provider)  # contradictory --device / --provider: ValueError
    # Planned before Ray starts: a bad request costs nothing.
    jobs, report, fs = plan or plan_input(input_path, output_path, options)
    ray = import_ray()
    resolved = resolve_model(model)
    model_bytes = resolved if isinstance(resolved, bytes) else Path(resolved).read_bytes()
    cpu_actors = not _wants_cuda(ray_options.device, ray_options.provider)
    started = _start(ray, ray_options, ray_options.actors * (float(ray_options.threads or 1) if cpu_actors else 1.0)
                     + DECODE_CPUS)
    try:
        cpus, gpus = _actor_resources(ray, ray_options)
        _check_cluster(ray, ray_options.actors, ray_options.actors * cpus + DECODE_CPUS, gpus * ray_options.actors)
        model_ref = ray.put(model_bytes)
        info = _probe_model(ray, model_ref, resolved, ray_options, cpus, gpus)
        ray_seconds = time.perf_counter() - start
        result = _run(ray, jobs, report, input_path, fs, options, ray_options, info, model_ref, cpus, gpus, start)
    finally:
        if started:
            ray.shutdown()
    result.lines.insert(1, f"engine: ray, {ray_options.actors} actor(s) on "
                           f"{ray_options.address or 'a local Ray'}; start-up {ray_seconds:.1f} s")
    if options.log:
        for line in result.lines:
            options.log(line)
    return result


def _run(ray, jobs: List[Job], report_path: Path, input_path, fs, options: RunOptions, ray_options: RayOptions,
         info, model_ref, actor_cpus: float, gpus: float, start: float) -> RunResult:
    from tqdm import tqdm

    records = [j.record for j in jobs]
    swept = len(sweep_stale_temps(_output_folders(jobs, report_path)))
    input_root = input_path if fs is not None else str(Path(input_path).resolve())
    totals = _Totals(info)
    save_report(report_path, planned_summary(totals, options.batch_size, input_root), records)
    todo = [i for i, j in enumerate(jobs) if j.record.status == "pending"]
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the run's own bar counts images
    if not ray_options.verbose:  # not a line per dataset started and finished, nor a notice that bars are off
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    rows_per_call = 4 * options.batch_size  # same-size images meet inside an actor's call
    worker_options = replace(options, log=None, progress=False)  # what travels to the workers
    items = [{"idx": i, "job": pickle.dumps(absolute_job(jobs[i], fs is None), protocol=5)} for i in todo]
    with tqdm(total=len(jobs), unit="img", desc="restoring", disable=not options.progress, dynamic_ncols=True) as bar:
        bar.update(len(jobs) - len(todo))
        if items:
            blocks = max(1, min(len(items), max(2 * ray_options.actors, -(-len(items) // rows_per_call))))
            ds = ray.data.from_items(items, override_num_blocks=blocks)
            ds = ds.map_batches(_decode, batch_size=options.batch_size, fn_kwargs={"options": worker_options, "fs": fs},
                                num_cpus=DECODE_CPUS)
            ds = ds.map_batches(
                _RestoreActor, batch_size=rows_per_call, num_cpus=actor_cpus, num_gpus=gpus,
                compute=ray.data.ActorPoolStrategy(size=ray_options.actors),
                fn_constructor_kwargs={"model_ref": [model_ref], "ray_options": ray_options, "options": worker_options},
            )
            try:
                for row in ds.iter_rows():
                    rec = Record(**json.loads(row["record"]))
                    records[int(row["idx"])] = rec
                    bar.update(1)
            except Exception as e:  # a worker lost for good: what it had written stays written
                # Some of these may have been written (whole) before their record came back: a rerun
                # skips those and restores the rest.
                reason = f"not confirmed: the Ray job stopped ({one_line(e)}); rerun to finish the rest"
                for rec in records:
                    if rec.status == "pending":
                        _fail(rec, reason)
    totals.inference_seconds = sum(r.infer_seconds or 0.0 for r in records if r.status == "ok")
    summary = run_summary(totals, options.batch_size, records, start, 0.0, swept, input_root)
    report_error, report_text = save_report(report_path, summary, records)
    lines = summary_lines(summary, records, str(report_path), report_error)
    return RunResult(records, summary, report_path, lines, report_error, report_text)
