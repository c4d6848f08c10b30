"""The stages of `restore-demo` that restore: the shipped default model on photos it never saw,
in seconds, no PyTorch.

1. samples  corrupt crops of the sample photos shipped with the package (ground truth kept)
2. restore  `restore-run` over the samples (the deployment path: ONNX Runtime, no PyTorch)
3. sheet    before / mask / after / original, one row per sample, plus how close each got

The command itself (`restore_demo.cli`) sits on the top floor, because `restore-demo --train`
adds two stages that need the trainer and the exporter; it imports them only when --train is
given. Everything here needs onnxruntime, numpy and Pillow only. Every command is printed before
it runs, so the demo doubles as a tutorial.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Sequence

import click
import numpy as np
from PIL import Image

from restore_toolkit.corruption import corrupt, sample_rng
from restore_toolkit.fileio import atomic_path
from restore_toolkit.scores import iou, psnr
from restore_toolkit.sheet import save_sheet
from runtime.default_model import SAMPLES


class DemoError(RuntimeError):
    """A stage failed; the message says which and why."""


class Stages:
    """Prints '[k/N] name ...' and each stage's time; keeps the times for the summary."""

    def __init__(self, total: int):
        self.times: dict = {}
        self.total, self.done = total, 0
        self.start = time.perf_counter()

    def run(self, name: str, what: str):
        stage = self
        stage.done += 1
        k = stage.done

        class _Stage:
            def __enter__(self):
                click.echo(f"\n[{k}/{stage.total}] {name}: {what}")
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, exc_type, exc, tb):
                if exc_type is None:
                    stage.times[name] = time.perf_counter() - self.t0
                    click.echo(f"[{k}/{stage.total}] {name} done in {stage.times[name]:.1f} s")
                return False

        return _Stage()


def _command(name: str, module: str, function: str) -> List[str]:
    """How to call one of our console scripts from here: the script beside this Python if it is
    installed (what users type), else the same function through this interpreter."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-c", f"import sys; sys.argv[0] = {name!r}; from {module} import {function}; {function}()"]


def run_command(name: str, module: str, function: str, args: Sequence[str], allowed=(0,)) -> int:
    cmd = _command(name, module, function) + [str(a) for a in args]
    click.echo("  $ " + " ".join([name] + [shlex.quote(str(a)) for a in args]))
    proc = subprocess.run(cmd)
    if proc.returncode not in allowed:
        raise DemoError(f"{name} exited with {proc.returncode}")
    return proc.returncode


# ---------------------------------------------------------------------------------------------
# Stages.


def make_samples(out: Path, count: int, size: int, seed: int) -> List[dict]:
    """Corrupt `count` crops of the sample photos shipped with the package; write before/clean/mask PNGs.

    The photos (scikit-image's `chelsea` and `rocket`) are held out of the default model's
    training, so the sheet shows it on photos it never saw. Only numpy and Pillow run here.
    """
    files = sorted(SAMPLES.glob("*.jpg"))
    if not files:
        raise DemoError(f"{SAMPLES}: no sample photos installed with the package")
    samples = []
    for i in range(count):
        path = files[i % len(files)]
        with Image.open(path) as im:
            photo = im.convert("RGB")
        w, h = photo.size
        # Scale the short side to between 1x and 2x the sample size, then take a crop: several
        # different views of each photo.
        rng = sample_rng(seed, i)
        scale = size * (1.0 + rng.random()) / min(h, w)
        img = photo.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.LANCZOS)
        y = int(rng.integers(0, img.height - size + 1))
        x = int(rng.integers(0, img.width - size + 1))
        clean = np.asarray(img.crop((x, y, x + size, y + size)))
        corrupted, mask = corrupt(clean, rng)
        stem = f"{i:02d}_{path.stem}"
        paths = {"before": out / "samples" / f"{stem}.png", "clean": out / "truth" / f"{stem}.png",
                 "mask": out / "truth" / f"{stem}_mask.png"}
        for key, arr in (("before", corrupted), ("clean", clean), ("mask", mask.astype(np.uint8) * 255)):
            _save_png(arr, paths[key])
        samples.append({"name": stem, **{k: str(v) for k, v in paths.items()}})
    names = ", ".join(p.stem for p in files)
    click.echo(f"  {count} samples of {size}x{size} from {names} (photos the default model never trained on) "
               f"-> {out / 'samples'}")
    return samples


def _save_png(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, "PNG")


def restore_samples(model, out: Path, device: str) -> Path:
    """`restore-run` over the samples folder, masks saved; returns the report path."""
    report = out / "restored" / "restore-report.json"
    run_command("restore-run", "runtime.cli", "main",
         ["--model", model, out / "samples", out / "restored", "--save-mask", "--overwrite", "--device", device,
          "--quiet"])
    return report


def contact_sheet(samples: List[dict], out: Path, report_path: Path) -> Path:
    """Rows of before / mask / after / original, labelled with PSNR and mask IoU; prints the table."""
    report = {Path(r["input"]).stem: r for r in json.loads(report_path.read_text())["records"]}
    rows, entries = [], []
    for s in samples:
        rec = report.get(s["name"])
        if rec is None or rec["status"] != "ok":
            raise DemoError(f"{s['name']} was not restored: {rec and rec['error']}")
        before = np.asarray(Image.open(s["before"]).convert("RGB"))
        clean = np.asarray(Image.open(s["clean"]).convert("RGB"))
        after = np.asarray(Image.open(rec["output"]).convert("RGB"))
        mask = np.asarray(Image.open(rec["mask"])) > 0
        truth = np.asarray(Image.open(s["mask"])) > 0
        p0, p1, overlap = psnr(before, clean), psnr(after, clean), iou(mask, truth)
        rows.append((s["name"], p0, p1, overlap))
        entries.append((f"{s['name']}: PSNR {p0:.1f} -> {p1:.1f} dB, mask IoU {overlap:.2f}",
                        [before, mask, after, clean]))
    path = out / "contact_sheet.png"
    save_sheet(entries, path, cell=max(a.shape[1] for a in entries[0][1]))
    click.echo("  sample                PSNR before  PSNR after  mask IoU")
    for name, p0, p1, overlap in rows:
        click.echo(f"  {name:<20} {p0:9.2f} dB {p1:9.2f} dB {overlap:9.3f}")
    return path


