"""The default `restore-run` path of this checkout against another checkout's, side by side.

    git worktree add /tmp/baseline REV
    python -m benchmarks.path_vs --baseline /tmp/baseline --report benchmarks/results/path-vs-X.json \
        --markdown benchmarks/results/path-vs-X.md

What a user waits for is the whole command: Python starting, the model loading, the photo
decoded, the graph, the steps around it and the file written. So each case is one `restore-run
IN OUT --device cpu` process per checkout, run from that checkout's own tree (its code, its
shipped model, its defaults) on the same files, with the same interpreter and packages. The two
run in turn, A B then B A, `--repeats` times, so that a machine whose speed drifts (these are
shared) weighs on both alike; each process's wall time is measured from outside and its peak
resident memory comes from the kernel (`wait4`, the figure `/usr/bin/time -v` prints).

The cases are camera-size JPEGs, clean and painted (`benchmarks.memory.make_photo`: a shipped
sample photo scaled up, quality 92, the held-out set's shapes painted before the save), and a
folder of ordinary photos of about a megapixel, every other one painted. Reported per case: the
median wall seconds and the megapixels a second they give, the largest peak, and the ratio of
the baseline's wall time to this checkout's, pair by pair (median, least and most): above 1,
this checkout is faster.
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import click

from benchmarks.memory import apart, make_photo, run_measured, write_result
from restore_toolkit.console import NamedPath

HERE = Path(__file__).resolve().parents[1]
PACKAGES = ("onnxruntime", "onnx", "numpy", "ml_dtypes")  # the versions the Markdown names


def make_cases(work: Path, sizes: List[float], folder: int) -> List[Tuple[str, Path, float]]:
    """(name, input folder, megapixels) per case: each size clean and painted, then the folder."""
    cases = []
    for mp in sizes:
        for painted in (False, True):
            name = f"{'painted' if painted else 'clean'} {mp:g} Mpx JPEG"
            src = work / name.replace(" ", "-")
            src.mkdir()
            w, h = make_photo(src / "photo.jpg", mp, painted=painted)
            cases.append((name, src, w * h / 1e6))
    if folder:
        src = work / "folder"
        src.mkdir()
        total = 0.0
        for i in range(folder):  # sizes apart, so that each painting differs (seeded by the size)
            w, h = make_photo(src / f"{i:03d}.jpg", 0.8 + 0.05 * i, painted=i % 2 == 1)
            total += w * h / 1e6
        cases.append((f"folder of {folder} photos of about 1 Mpx, half painted", src, total))
    return cases


def revision(root: Path) -> str:
    """The commit of the checkout at `root`, its subject cut short, and whether files differ from
    it ('' when it is not a git checkout)."""
    done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    if done.returncode != 0:
        return ""
    line = done.stdout.strip()
    line = line if len(line) <= 80 else line[:79] + "…"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return line + (" (with uncommitted changes)" if dirty else "")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def run_once(root: Path, src: Path, out: Path) -> Dict[str, float]:
    """One `restore-run` of the checkout at `root` on `src`, into a fresh `out`."""
    cmd = [sys.executable, "-c", "from runtime.cli import main; main()", str(src), str(out), "--device", "cpu", "-q"]
    res = run_measured(cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    if res["exit"] != 0:
        raise click.ClickException(f"restore-run in {root} on {src.name} exited {res['exit']}: {res['output'].strip()[-300:]}")
    return {k: res[k] for k in ("wall_s", "peak_rss_mb", "cpu_s")}


def compare(roots: Dict[str, Path], cases, repeats: int, work: Path, log=click.echo) -> List[Dict]:
    """Every case, the checkouts in turn (A B, then B A, ...), `repeats` pairs; one row per case."""
    rows = []
    for name, src, mp in cases:
        runs: Dict[str, List[Dict[str, float]]] = {k: [] for k in roots}
        for r in range(repeats):
            order = list(roots) if r % 2 == 0 else list(roots)[::-1]
            for key in order:
                runs[key].append(run_once(roots[key], src, work / f"out-{key}-{len(rows)}-{r}"))
                log(f"{name}: {key} {runs[key][-1]['wall_s']:.2f} s, {runs[key][-1]['peak_rss_mb']:.0f} MiB", err=True)
        row = {"case": name, "megapixels": round(mp, 3)}
        for key, got in runs.items():
            wall = statistics.median(g["wall_s"] for g in got)
            row[key] = {"median_wall_s": round(wall, 3), "mp_per_s": round(mp / wall, 3),
                        "peak_rss_mb": round(max(g["peak_rss_mb"] for g in got), 1),
                        "median_cpu_s": round(statistics.median(g["cpu_s"] for g in got), 3),
                        "wall_s": [round(g["wall_s"], 3) for g in got]}
        ratios = [b["wall_s"] / a["wall_s"] for a, b in zip(runs["this"], runs["baseline"])]
        row["speed_ratio"] = {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
                              "max": round(max(ratios), 3)}
        rows.append(row)
    return rows


def to_markdown(result: Dict) -> str:
    m = result["machine"]
    lines = [
        "## The default `restore-run` path against a baseline checkout, side by side",
        "",
        f"Machine: {m['cpu']} ({m['cpu_features']}; {m['usable_cpus']} usable CPUs); "
        f"load average {result['load_before']:.1f} before and {result['load_after']:.1f} after.",
        f"This checkout: {result['revisions']['this']}.",
        f"Baseline: {result['revisions']['baseline']}.",
        "Both run by the same interpreter with the same packages: "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if k in PACKAGES) + ".",
        f"Each case: one `restore-run IN OUT --device cpu` process per checkout, in turn, {result['repeats']} of each "
        "(whole process: start, model loading, decoding, the graph, the steps around it, the write).",
        "",
        "| case | Mpx | this: median s | MP/s | peak MiB | baseline: median s | MP/s | peak MiB | speed, baseline s ÷ this s (min–max) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        a, b, s = r["this"], r["baseline"], r["speed_ratio"]
        lines.append(f"| {r['case']} | {r['megapixels']:.1f} | {a['median_wall_s']:.2f} | {a['mp_per_s']:.2f} | "
                     f"{a['peak_rss_mb']:,.0f} | {b['median_wall_s']:.2f} | {b['mp_per_s']:.2f} | {b['peak_rss_mb']:,.0f} | "
                     f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f}) |")
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


@click.command()
@click.option("--baseline", type=NamedPath(exists=True, file_okay=False, path_type=Path), required=True,
              help="Another checkout of the project (e.g. a `git worktree` at an earlier revision).")
@click.option("--sizes", default="12,25", help="Comma-separated megapixels of the camera-size photos.")
@click.option("--folder", default=12, type=click.IntRange(min=0), help="Photos of about 1 Mpx in the folder case (0: none).")
@click.option("--repeats", default=3, type=click.IntRange(min=1), help="Runs of each checkout per case.")
@click.option("--report", "report_path", type=NamedPath(dir_okay=False), required=True)
@click.option("--markdown", "md_path", type=NamedPath(dir_okay=False), required=True)
def main(baseline: Path, sizes: str, folder: int, repeats: int, report_path: str, md_path: str) -> None:
    """Time this checkout's default restore-run against BASELINE's on the same photos."""
    from benchmarks.report import environment

    roots = {"this": HERE, "baseline": baseline.resolve()}
    env = environment()
    result: Dict = {"command": shlex.join(["python", "-m", "benchmarks.path_vs", *sys.argv[1:]]),
                    "machine": env["machine"], "versions": {**env["versions"], "ml_dtypes": _version("ml_dtypes")},
                    "load_before": os.getloadavg()[0], "repeats": repeats,
                    "revisions": {k: revision(v) or str(v) for k, v in roots.items()}}
    with tempfile.TemporaryDirectory(prefix="restore-path-vs-") as tmp:
        work = Path(tmp)
        cases = apart(make_cases, work, [float(s) for s in sizes.split(",") if s], folder)  # this process stays small
        result["rows"] = compare(roots, cases, repeats, work)
    result["load_after"] = os.getloadavg()[0]
    write_result(result, report_path, md_path, to_markdown(result))


if __name__ == "__main__":
    main()
