"""images/s of `restore-run` locally and on Ray Data with 1 and 2 actors, on one folder, in one run.

    python -m benchmarks.ray_scaling [--model default] [--images 64] [--size 256] [--repeats 2] [--output FILE]

Writes a seeded folder of RGB PNGs, then restores it into fresh outputs with the local runner
(one ONNX Runtime session, 1 thread per actor-equivalent unless --threads), with Ray 1 actor
and with Ray 2 actors, on one local Ray started once (its start-up is timed apart), and prints
one JSON object (also written to --output): the command, the machine (CPU named) and its load
average, each engine's wall time and images/s (best of --repeats), and the start-up costs.
Needs `pip install -e '.[ray]'`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _folder(root: Path, n: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"{i:04d}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="ORT threads of the local runner and of each actor")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                        help="which graph of the shipped model, chosen once as restore-run chooses it")
    parser.add_argument("--output", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()

    import ray

    from runtime.batch import RunOptions, run_folder
    from runtime.default_model import choose_model
    from runtime.ray_engine import RayOptions, run_folder_ray
    from runtime.restorer import Restorer
    from runtime.session import available_cpus

    # One graph for every engine, chosen as restore-run chooses it (auto: int8 on the CPU).
    model, why = choose_model(args.model, args.precision, cpu=True)
    work = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    try:
        src = _folder(work / "in", args.images, args.size)
        opts = dict(batch_size=args.batch_size, progress=False, sync_images=True)
        runs: dict = {}

        def timed(name, fn):
            t0 = time.perf_counter()
            result = fn()
            wall = time.perf_counter() - t0
            assert result.summary.ok == args.images, result.lines
            best = runs.get(name)
            if best is None or wall < best["wall_s"]:
                runs[name] = {"wall_s": round(wall, 2), "images_per_s": round(args.images / wall, 2),
                              "inference_images_per_s": round(result.summary.inference_images_per_second, 2)}

        t0 = time.perf_counter()
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_init_s = time.perf_counter() - t0
        one = _folder(work / "one", 1, args.size)
        t0 = time.perf_counter()
        run_folder_ray(model, one, work / "one-out", RunOptions(**opts), RayOptions(actors=1, device="cpu"))
        first_job_s = time.perf_counter() - t0  # probe worker + actor start + one image
        t0 = time.perf_counter()
        run_folder_ray(model, one, work / "one-again", RunOptions(**opts), RayOptions(actors=1, device="cpu"))
        warm_job_s = time.perf_counter() - t0  # the same on a warm Ray: what every run pays
        t0 = time.perf_counter()
        restorer = Restorer(model, device="cpu", threads=args.threads, batch_size=args.batch_size)
        local_load_s = time.perf_counter() - t0
        for r in range(args.repeats):
            timed("local", lambda r=r: run_folder(restorer, src, work / f"local{r}", RunOptions(**opts)))
            for actors in (1, 2):
                timed(f"ray_{actors}_actors", lambda r=r, actors=actors: run_folder_ray(
                    model, src, work / f"ray{actors}-{r}", RunOptions(**opts),
                    RayOptions(actors=actors, device="cpu", threads=args.threads)))
        ray.shutdown()
        from benchmarks.run_speed import write_result
        from restore_core.cpu import cpu_model

        write_result("benchmarks.ray_scaling", {"cpu": cpu_model(), "arch": platform.machine()}, load_before, {
            "cores_usable": available_cpus(), "cpu_count": os.cpu_count(),
            "images": args.images, "size": args.size, "model": args.model,
            "graph": Path(model).name, "graph_choice": why, "batch_size": args.batch_size,
            "threads_per_session": args.threads, "repeats": args.repeats,
            "runs": runs,
            "startup": {"ray_init_s": round(ray_init_s, 2), "first_ray_job_one_image_s": round(first_job_s, 2),
                        "warm_ray_job_one_image_s": round(warm_job_s, 2),
                        "local_model_load_s": round(local_load_s, 2)},
        }, args.output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
