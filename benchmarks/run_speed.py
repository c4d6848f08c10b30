"""Photos a second of `restore-run` end to end on this machine, with the shipped model's graphs.

    python -m benchmarks.run_speed [--images 48] [--size 512] [--repeats 2] [--output FILE]

Writes a seeded folder of JPEG photos (crops of the two sample photos shipped with the package,
scaled, shifted and flipped), then runs the `restore-run` command on it, as a user would, once
per precision (`auto`: the int8 graph on a CPU; `fp32`: the fp32 graph with the flip ensemble)
and --repeats times each, into fresh outputs. Reads each run's images/s end to end from its
report (decoding, inference and synced writes; the model's loading is not in it) and prints one
JSON object (also written to --output): the command, the machine (CPU named) and its load
average, and the best run of each precision. Needs only the base install.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "samples"


def _folder(root: Path, n: int, size: int) -> Path:
    """`n` seeded `size`x`size` JPEG crops of the shipped sample photos."""
    rng = np.random.default_rng(0)
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    root.mkdir(parents=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        scale = size * rng.uniform(1.1, 1.6) / min(photo.size)
        big = np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC))
        y, x = (int(rng.integers(0, d - size + 1)) for d in big.shape[:2])
        crop = big[y:y + size, x:x + size][:, ::-1 if rng.random() < 0.5 else 1]
        Image.fromarray(np.ascontiguousarray(crop)).save(root / f"{i:04d}.jpg", quality=90)
    return root


def _run(src: Path, out: Path, precision: str) -> dict:
    """One `restore-run` into a fresh folder; its summary from the report."""
    report = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "runtime.cli", str(src), str(out), "--precision", precision, "-q",
           "--report", str(report)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    summary = json.loads(report.read_text())["summary"]
    return {"images_per_s": round(summary["images_per_second"], 2),
            "inference_images_per_s": round(summary["inference_images_per_second"], 2),
            "wall_s": round(summary["wall_seconds"], 2)}


def write_result(module: str, machine: dict, load_before, fields: dict, output) -> None:
    """An end-to-end timing's JSON (this module's, benchmarks.ray_scaling's): the command, when,
    the machine and its load average from `load_before` to now, then `fields`; printed, and
    written to `output` where given."""
    from benchmarks.report import write_json

    result = {
        "command": f"python -m {module} " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "load_average": {"start": [round(v, 2) for v in load_before], "end": [round(v, 2) for v in os.getloadavg()]},
        **fields,
    }
    print(json.dumps(result, indent=2))
    if output:
        write_json(result, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=None, help="also write the JSON to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()

    from restore_core.cpu import cpu_model
    from runtime.session import available_cpus

    work = Path(tempfile.mkdtemp(prefix="run-speed-"))
    try:
        src = _folder(work / "in", args.images, args.size)
        best: dict = {}
        for r in range(args.repeats):
            for precision in ("auto", "fp32"):
                run = _run(src, work / f"{precision}{r}", precision)
                if precision not in best or run["images_per_s"] > best[precision]["images_per_s"]:
                    best[precision] = run
        for run in best.values():
            run["megapixels_per_s"] = round(run["images_per_s"] * args.size**2 / 1e6, 2)
        machine = {"cpu": cpu_model(), "cores_usable": available_cpus(), "cpu_count": os.cpu_count()}
        write_result("benchmarks.run_speed", machine, load_before, {
            "images": args.images, "size": args.size, "format": "JPEG", "repeats": args.repeats,
            "note": "best run of each; auto takes the shipped int8 graph (one view) on a CPU, "
                    "fp32 the fp32 graph with the flip ensemble",
            "runs": best,
        }, args.output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
