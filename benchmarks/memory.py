"""Peak memory and speed of `restore-run` against image size, for the default model on the CPU.

    python -m benchmarks.memory --sizes 1,4,12,25 --report benchmarks/results/memory-cpu.json \
        --markdown benchmarks/results/memory-cpu.md

Each size is one photo-like JPEG (a shipped sample scaled to that many megapixels, 4:3,
quality 92), clean and with 1-6 shapes painted before it was saved (the held-out set's shapes,
5-35 % of the side), each restored by `restore-run IN OUT` with default options and again with
`--save-predicted` (which runs the image decoder everywhere, as every run did before that
decoder was skipped where nothing is found; compare its inference MP/s), in a process of its own; its
peak resident memory comes from the kernel (`wait4`'s ru_maxrss, the figure `/usr/bin/time -v`
prints), its speed from the run's report (wall and inference-only, model loading excluded). A
bomb row restores a 1 kB PNG that decodes to 256 Mpx, over the default `--max-pixels`: it
must be refused from its header at a small peak. The reference is `restore-bench` on 256² inputs for the same graph (the one
`restore-run` picks by default: the int8 graph where one ships, else the fp32 graph; batches 1 and 8), run before and after the sizes in the same session, since the machine may be shared.
On a shared machine wall time swings with the neighbours; CPU seconds per megapixel (the
kernel's user + system time of the process) much less, so both are given, and the reference is
also timed in CPU seconds: the graph on 256² inputs in a session made as `restore-run` makes it.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional

import click
from PIL import Image

from restore_core.cpu import cpu_model
from restore_core.fileio import atomic_write_text
from restore_toolkit.console import NamedPath
from runtime.default_model import choose_model

SAMPLE = Path(__file__).resolve().parent.parent / "runtime" / "assets" / "samples" / "chelsea.jpg"


def make_photo(path: Path, megapixels: float, painted: bool = False, noise: float = 0.0) -> tuple:
    """A 4:3 JPEG of about `megapixels` from a shipped sample photo, scaled up (smooth, photo-like);
    painted: with the held-out set's shapes drawn on it before it is saved (seeded by the size);
    noise: sensor noise of that many levels (sigma) added before the paint. Scaled up 36 times to
    200 Mpx with none, the photo is smooth enough to read as a graphic (runtime/graphic.py) and a
    painted one is left as it was; a camera's file carries its sensor's noise."""
    import numpy as np

    w = int(round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    with Image.open(SAMPLE) as src:
        photo = src.convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
    if noise:
        photo = Image.fromarray(sensor_noise(np.asarray(photo).copy(), noise, seed=w))
    if painted:
        from restore_core.heldout import HELDOUT_CORRUPTION
        from restore_toolkit.corruption import corrupt, sample_rng

        photo = Image.fromarray(corrupt(np.asarray(photo), sample_rng(20261204, w, h), HELDOUT_CORRUPTION)[0])
    photo.save(path, "JPEG", quality=92)
    return w, h


def sensor_noise(pixels, sigma: float, seed: int):
    """`pixels` ((H, W, 3) uint8, changed in place and returned) with Gaussian noise of `sigma`
    levels added, as a camera's sensor leaves it; a band of rows at a time, so that a 200 Mpx
    photo never has a float copy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for rows in range(0, pixels.shape[0], 1024):
        band = pixels[rows:rows + 1024].astype(np.float32)
        band += rng.standard_normal(band.shape, dtype=np.float32) * sigma
        pixels[rows:rows + 1024] = np.clip(band, 0, 255).round()
    return pixels


def make_bomb(path: Path, side: int = 16000) -> tuple:
    """A grey PNG whose header says side x side (256 Mpx) and whose data is a few compressed zero rows."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (side + 1) * 64, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return side, side


def apart(fn: Callable, *args):
    """`fn(*args)` in a fresh interpreter, its result returned. The photos are made this way: the
    peak the kernel reports for a child (`wait4`'s ru_maxrss) is at least its parent's own peak,
    since the memory the child ran on before it started the new program counts, so a parent that
    once held a 48 Mpx photo would show in every run it measures."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def write_result(result: Dict, report_path: str, md_path: str, markdown: str) -> None:
    """A whole-command benchmark's result: its JSON and its Markdown, each written to a temp file
    and renamed into place, and the Markdown printed."""
    from benchmarks.report import write_json

    write_json(result, report_path)
    atomic_write_text(md_path, markdown)
    click.echo(markdown)


def run_measured(cmd: List[str], cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Run `cmd` (in `cwd`, with `env`); its exit code, wall seconds and peak resident memory (MB)
    from the kernel."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "wall_s": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "output": out}


def restore_row(work: Path, name: str, width: int, height: int, src: Path, options: tuple = ()) -> Dict:
    out, report = work / f"out-{name}", work / f"report-{name}.json"
    res = run_measured([sys.executable, "-m", "runtime.cli", str(src), str(out), "--device", "cpu", "--quiet",
                        "--report", str(report), "--overwrite", *options])
    row = {"input": name, "options": " ".join(options), "width": width, "height": height, "megapixels": width * height / 1e6,
           "file_kb": src.stat().st_size / 1024, "exit": res["exit"], "peak_rss_mb": res["peak_rss_mb"],
           "process_wall_s": res["wall_s"], "cpu_s_per_mp": res["cpu_s"] / (width * height / 1e6)}
    if report.is_file():
        rep = json.loads(report.read_text())
        summary, record = rep["summary"], rep["records"][0]
        row.update(status=record["status"], error=record.get("error"), tiles=record.get("tiles"),
                   written=record.get("written"),
                   run_wall_s=summary["wall_seconds"], inference_s=summary["inference_seconds"])
        if record["status"] == "ok":
            row["mp_per_s"] = row["megapixels"] / summary["wall_seconds"]
            row["inference_mp_per_s"] = row["megapixels"] / summary["inference_seconds"]
    else:
        row.update(status="no report", error=res["output"].strip().splitlines()[-1:])
    return row


def cpu_reference() -> Dict[str, Dict[str, float]]:
    res = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--probe-256", "--report", "-", "--markdown", "-"],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_reference(work: Path) -> Dict[str, float]:
    """restore-bench's MP/s for restore-run's default CPU graph on 256² inputs, batches 1 and 8."""
    from runtime.metadata import read_metadata

    report = work / "bench.json"
    graph = Path(choose_model(None, "auto", cpu=True)[0])
    if read_metadata(graph).precision == "int8":
        which = ["--no-flip-ensemble", "--int8-onnx", str(graph), "--backends", "ort-cpu-int8"]
    else:  # the shipped fp32 graph, flip ensemble and all, as restore-run runs it
        which = ["--onnx", str(graph), "--backends", "ort-cpu"]
    res = run_measured([sys.executable, "-m", "benchmarks.cli", "--checkpoint", "default", *which, "--device", "cpu",
                        "--sizes", "256", "--batch-sizes", "1,8", "--quality-per-photo", "0", "--report", str(report),
                        "--quiet"])
    if not report.is_file():
        raise click.ClickException(f"restore-bench failed: {res['output'][-500:]}")
    rows = json.loads(report.read_text())["rows"]
    return {f"batch {r['batch']}": r["megapixels_per_s"] for r in rows if r.get("megapixels_per_s")}


def probe_256(seconds: float = 20.0) -> Dict[str, Dict[str, float]]:
    """The default graph on random 256² batches of 1 and 8 in a session made as restore-run makes
    it: wall and CPU seconds per megapixel, the best of repeated runs (in this process)."""
    import numpy as np

    from runtime.restorer import Restorer

    r = Restorer(None, device="cpu")
    out = {}
    for batch in (1, 8):
        x = np.random.default_rng(0).integers(0, 256, (batch, 256, 256, 3), dtype=np.uint8)
        r.infer(x)
        walls, cpus, end = [], [], time.perf_counter() + seconds / 2
        while time.perf_counter() < end or len(walls) < 3:
            t0, c0 = time.perf_counter(), time.process_time()
            r.infer(x)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        mp = batch * 256 * 256 / 1e6
        out[f"batch {batch}"] = {"mp_per_s": mp / min(walls), "cpu_s_per_mp": min(cpus) / mp}
    return out


def _row(r: Dict, best: float, ref_cpu: float) -> str:
    """One Markdown table row of `to_markdown`."""
    mps = r.get("mp_per_s")
    status = r["status"] + (f" ({r['written']})" if r.get("written") else "")
    return (f"| {r['input']} | {r.get('options') or '–'} | {r['width']}x{r['height']} ({r['megapixels']:.1f} MP) | "
            f"{r['file_kb']:,.0f} kB | {r['exit']} | {status} | {r.get('tiles') or 0} | {r['peak_rss_mb']:,.0f} | "
            f"{r.get('run_wall_s', 0):.1f} | {mps or 0:.2f} | {r.get('inference_mp_per_s') or 0:.2f} | "
            + (f"{(mps or 0) / best:.0%} |" if best else "– |")
            + (f" {r['cpu_s_per_mp']:.2f} | {ref_cpu / r['cpu_s_per_mp']:.0%} |" if mps else " – | – |"))


def to_markdown(result: Dict) -> str:
    ref = result["reference_mp_per_s"]
    best = max(max(r.values()) for r in ref)
    ref_cpu = min(v["cpu_s_per_mp"] for r in result["reference_cpu"] for v in r.values())
    lines = [
        "## restore-run: peak memory and speed against image size",
        "",
        f"Machine: {result['machine']['cpu']} ({result['machine']['cpus']} usable CPUs), load average {result['load_before']:.1f} "
        f"before and {result['load_after']:.1f} after. Default model, default options ({result.get('graph', 'the int8 graph, one view')}"
        f"); a run may add {result['run_memory_mb']:,.0f} MB to its process."
        + (f" The photos carry sensor noise of {result['noise']:g} levels (sigma)." if result.get("noise") else ""),
        "Reference in CPU seconds per MP (256² in restore-run's session, best run): "
        + "; ".join(", ".join(f"{k} {v['cpu_s_per_mp']:.2f} s ({v['mp_per_s']:.2f} MP/s)" for k, v in r.items())
                    for r in result["reference_cpu"]) + ".",
        "Reference, restore-bench on 256² inputs for the same graph, before / after the sizes: "
        + "; ".join(", ".join(f"{k} {v:.2f} MP/s" for k, v in r.items()) for r in ref) + ".",
        "",
        "| input | options | pixels | file | exit | status | tiles | peak RSS MiB | run s | MP/s | inference MP/s "
        "| vs best 256² | CPU s/MP | 256² CPU s/MP ÷ this |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(r, best, ref_cpu) for r in result["rows"]]
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


@click.command()
@click.option("--sizes", default="1,4,12,25", help="Comma-separated megapixels.")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--markdown", "md_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--no-reference", is_flag=True, help="Skip restore-bench (quick checks).")
@click.option("--noise", default=0.0, show_default=True, help="Sensor noise (sigma, levels) on the photos, as a camera's.")
@click.option("--probe-256", is_flag=True, hidden=True, help="Print probe_256's JSON (run in a process of its own).")
def main(sizes: str, report_path: str, md_path: str, no_reference: bool, noise: float, probe_256: bool) -> None:
    """Measure peak memory and MP/s of restore-run against megapixels; write JSON and Markdown."""
    if probe_256:
        click.echo(json.dumps(globals()["probe_256"]()))
        return
    from runtime.memory import MB, run_budget
    from runtime.session import available_cpus

    result: Dict = {"command": "python -m benchmarks.memory " + " ".join(sys.argv[1:]), "machine": {"cpu": cpu_model(), "cpus": available_cpus()}, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "run_memory_mb": run_budget()[0] / MB, "noise": noise, "load_before": os.getloadavg()[0], "rows": [],
                    "graph": choose_model(None, "auto", cpu=True)[1]}
    with tempfile.TemporaryDirectory(prefix="restore-memory-") as tmp:
        work = Path(tmp)
        ref: List[Optional[Dict]] = []
        ref_cpu = [cpu_reference()]
        if not no_reference:
            ref.append(bench_reference(work))
        for mp in [float(s) for s in sizes.split(",") if s]:
            for kind in ("photo", "painted"):
                src = work / f"{kind}-{mp:g}mp.jpg"
                w, h = apart(make_photo, src, mp, kind == "painted", noise)
                for options in ((), ("--save-predicted",)):
                    result["rows"].append(restore_row(work, src.name, w, h, src, options))
                    click.echo(json.dumps(result["rows"][-1]), err=True)
                src.unlink()
        bomb = work / "bomb.png"
        w, h = make_bomb(bomb)
        result["rows"].append(restore_row(work, f"bomb.png ({bomb.stat().st_size / 1000:,.0f} kB PNG, 256 Mpx)", w, h, bomb))
        click.echo(json.dumps(result["rows"][-1]), err=True)
        if not no_reference:
            ref.append(bench_reference(work))
        ref_cpu.append(cpu_reference())
    result["reference_cpu"] = ref_cpu
    result["reference_mp_per_s"] = ref or [{"not measured": 0.0}]
    result["load_after"] = os.getloadavg()[0]
    write_result(result, report_path, md_path, to_markdown(result))


if __name__ == "__main__":
    main()
