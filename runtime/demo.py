"""`restore-demo`: the whole toolkit in one command, on a fresh install, no GPU needed.

    restore-demo                # ./restore-demo/contact_sheet.png, trained and restored on the CPU

1. samples  corrupt crops of bundled photos that training holds out (ground truth kept)
2. train    `restore-train` briefly on on-the-fly synthetic data (skipped when a model exists)
3. export   `restore-export onnx` to the pixels graph
4. restore  `restore-run` over the samples (the deployment path: ONNX Runtime, no PyTorch)
5. sheet    before / mask / after / original, one row per sample, plus how close each got

Every command is printed before it runs, so the demo doubles as a tutorial. Unlike the rest of
`runtime`, this module trains and exports, so it imports PyTorch and `restore_core` (lazily).
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import click
import numpy as np
from PIL import Image, ImageDraw

from runtime.fileio import atomic_path

STAGES = 5


class DemoError(RuntimeError):
    """A stage failed; the message says which and why."""


class Stages:
    """Prints '[k/5] name ...' and each stage's time; keeps the times for the summary."""

    def __init__(self):
        self.times: dict = {}
        self.start = time.perf_counter()

    def run(self, k: int, name: str, what: str):
        stage = self

        class _Stage:
            def __enter__(self):
                click.echo(f"\n[{k}/{STAGES}] {name}: {what}")
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, exc_type, exc, tb):
                if exc_type is None:
                    stage.times[name] = time.perf_counter() - self.t0
                    click.echo(f"[{k}/{STAGES}] {name} done in {stage.times[name]:.1f} s")
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


def _run(name: str, module: str, function: str, args: Sequence[str], allowed=(0,)) -> int:
    cmd = _command(name, module, function) + [str(a) for a in args]
    click.echo("  $ " + " ".join([name] + [shlex.quote(str(a)) for a in args]))
    proc = subprocess.run(cmd)
    if proc.returncode not in allowed:
        raise DemoError(f"{name} exited with {proc.returncode}")
    return proc.returncode


# ---------------------------------------------------------------------------------------------
# Stages.


def make_samples(out: Path, count: int, size: int, seed: int) -> List[dict]:
    """Corrupt `count` crops of the held-out bundled photos; write before/clean/mask PNGs."""
    from restore_core.corruption import corrupt, sample_rng
    from restore_core.photos import BUNDLED_VAL, bundled_photos

    photos = bundled_photos()
    names = [n for n in BUNDLED_VAL if n in photos] or sorted(photos)
    samples = []
    for i in range(count):
        name = names[i % len(names)]
        photo = photos[name]
        h, w = photo.shape[:2]
        # Scale the short side to between 1x and 2x the sample size, then take a crop: several
        # different views of each held-out photo.
        rng = sample_rng(seed, i)
        scale = size * (1.0 + rng.random()) / min(h, w)
        img = Image.fromarray(photo).resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.LANCZOS)
        y = int(rng.integers(0, img.height - size + 1))
        x = int(rng.integers(0, img.width - size + 1))
        clean = np.asarray(img.crop((x, y, x + size, y + size)).convert("RGB"))
        corrupted, mask = corrupt(clean, rng)
        stem = f"{i:02d}_{name}"
        paths = {"before": out / "samples" / f"{stem}.png", "clean": out / "truth" / f"{stem}.png",
                 "mask": out / "truth" / f"{stem}_mask.png"}
        for key, arr in (("before", corrupted), ("clean", clean), ("mask", mask.astype(np.uint8) * 255)):
            _save_png(arr, paths[key])
        samples.append({"name": stem, **{k: str(v) for k, v in paths.items()}})
    click.echo(f"  {count} samples of {size}x{size} from {', '.join(names)} (photos training never sees) "
               f"-> {out / 'samples'}")
    return samples


def _save_png(arr: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, "PNG")


def train_model(out: Path, steps: int, size: int, batch_size: int, base_channels: int, depth: int,
                seed: int, device: str, lr: float) -> Path:
    """Train briefly with `restore-train` on on-the-fly data; returns the best checkpoint."""
    save_dir = out / "train"
    per_epoch = max(1, min(steps, 100))  # an epoch line (with validation) every ~100 steps
    epochs = math.ceil(steps / per_epoch)
    args = [
        "--synthetic", "--max-steps", steps, "--epochs", epochs, "--epoch-samples", per_epoch * batch_size,
        "--batch-size", batch_size, "--lr", lr, "--size", size, "--val-count", max(4, min(32, 2 * batch_size)),
        "--base-channels", base_channels, "--depth", depth, "--patience", 0,
        "--seed", seed, "--device", device, "--save-dir", save_dir, "--no-progress", "--num-workers", 1,
    ]
    if device != "cuda" and _cpu_has_bf16():
        args += ["--precision", "bf16"]  # about 2x faster on CPUs with native bf16
    _run("restore-train", "restore_core.cli", "train_cli", args)
    best = save_dir / "best.ckpt"
    if not best.exists():
        raise DemoError(f"training wrote no {best}")
    return best


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def export_model(checkpoint: Path, output: Path, verify: bool = True) -> Path:
    """`restore-export onnx` when that command is installed, else the same library calls."""
    import importlib.util

    if output.exists() and output.stat().st_mtime >= checkpoint.stat().st_mtime:
        click.echo(f"  {output} is newer than {checkpoint}: kept")
        return output
    if importlib.util.find_spec("export.cli") is not None:
        args = ["onnx", "--checkpoint", checkpoint, "--output", output, "--force"]
        _run("restore-export", "export.cli", "main", args + ([] if verify else ["--no-verify"]))
    else:
        from export.onnx import build_metadata, save_onnx, to_onnx_proto
        from restore_core.checkpoint import load_model

        click.echo(f"  (export.onnx) {checkpoint} -> {output}")
        pipeline = load_model(checkpoint).pipeline()
        save_onnx(to_onnx_proto(pipeline, "pixels"), output, build_metadata(pipeline, "pixels", "fp32", parity=None))
    if not output.exists():
        raise DemoError(f"export wrote no {output}")
    return output


def restore_samples(model: Path, out: Path, device: str) -> Path:
    """`restore-run` over the samples folder, masks saved; returns the report path."""
    report = out / "restored" / "restore-report.json"
    _run("restore-run", "runtime.cli", "main",
         ["--model", model, out / "samples", out / "restored", "--save-mask", "--overwrite", "--device", device,
          "--quiet"])
    return report


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def contact_sheet(samples: List[dict], out: Path, report_path: Path) -> Path:
    """Rows of before / mask / after / original with labels; prints how close each got."""
    report = {Path(r["input"]).stem: r for r in json.loads(report_path.read_text())["records"]}
    columns = ("before", "mask", "after", "original")
    tiles, rows = [], []
    for s in samples:
        rec = report.get(s["name"])
        if rec is None or rec["status"] != "ok":
            raise DemoError(f"{s['name']} was not restored: {rec and rec['error']}")
        before = np.asarray(Image.open(s["before"]).convert("RGB"))
        clean = np.asarray(Image.open(s["clean"]).convert("RGB"))
        after = np.asarray(Image.open(rec["output"]).convert("RGB"))
        mask = np.asarray(Image.open(rec["mask"])) > 0
        truth = np.asarray(Image.open(s["mask"])) > 0
        union = (mask | truth).sum()
        iou = float((mask & truth).sum() / union) if union else 1.0
        rows.append((s["name"], _psnr(before, clean), _psnr(after, clean), iou))
        tiles.append([before, np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2), after, clean])
    h, w = tiles[0][0].shape[:2]
    pad, label = 4, 16
    sheet = Image.new("RGB", (len(columns) * (w + pad) + pad, label + len(tiles) * (h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((pad + c * (w + pad) + 2, 2), name, fill=(0, 0, 0))
    for r, row in enumerate(tiles):
        for c, arr in enumerate(row):
            sheet.paste(Image.fromarray(arr), (pad + c * (w + pad), label + pad + r * (h + pad)))
    path = out / "contact_sheet.png"
    with atomic_path(path) as tmp:
        sheet.save(tmp, "PNG")
    click.echo("  sample                PSNR before  PSNR after  mask IoU")
    for name, p0, p1, iou in rows:
        click.echo(f"  {name:<20} {p0:9.2f} dB {p1:9.2f} dB {iou:9.3f}")
    return path


# ---------------------------------------------------------------------------------------------


def _find_model(out: Path) -> Optional[Path]:
    """A model a previous demo run trained, so running the demo again is quick."""
    for p in (out / "train" / "best.ckpt", out / "train" / "best.safetensors"):
        if p.exists():
            return p
    return None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="restore-demo", show_default=True,
              help="Where samples, model, restored images and the contact sheet go.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Use this model (.onnx, .ckpt or .safetensors) instead of training one.")
@click.option("--retrain", is_flag=True, help="Train even if OUT already holds a trained model.")
@click.option("--steps", type=click.IntRange(min=1), default=600, show_default=True, help="Training steps.")
@click.option("--lr", type=float, default=2e-3, show_default=True,
              help="Learning rate; higher than the reference design's 3e-4, which needs far more steps than a demo has.")
@click.option("--size", type=click.IntRange(min=8), default=64, show_default=True, help="Training crop side.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--base-channels", type=click.IntRange(min=1), default=12, show_default=True, help="Model width.")
@click.option("--depth", type=click.IntRange(min=1), default=4, show_default=True, help="Model depth (stride 2**depth).")
@click.option("--samples", type=click.IntRange(min=1), default=6, show_default=True, help="How many samples.")
@click.option("--sample-size", type=click.IntRange(min=16), default=128, show_default=True, help="Sample side.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Check the exported graph against eager PyTorch (prints the parity table).")
def main(out_dir, model_path, retrain, steps, lr, size, batch_size, base_channels, depth, samples, sample_size, device, seed,
         verify):
    """Corrupt held-out photos, train a small model briefly, export it, restore the samples with
    restore-run, and write OUT/contact_sheet.png (before / mask / after / original)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    try:
        with stages.run(1, "samples", "corrupting bundled photos"):
            made = make_samples(out, samples, sample_size, seed)
        onnx_path = None
        checkpoint = Path(model_path) if model_path else (None if retrain else _find_model(out))
        with stages.run(2, "train", "training a small model" if checkpoint is None else "using an existing model"):
            if checkpoint is not None and checkpoint.suffix == ".onnx":
                onnx_path = checkpoint
                click.echo(f"  using {checkpoint}")
            elif checkpoint is not None:
                click.echo(f"  using {checkpoint} (pass --retrain to train again)")
            else:
                checkpoint = train_model(out, steps, size, batch_size, base_channels, depth, seed, device, lr)
        with stages.run(3, "export", "ONNX, pixels signature"):
            if onnx_path is None:
                onnx_path = export_model(checkpoint, out / "model.onnx", verify)
            else:
                click.echo("  already ONNX")
        with stages.run(4, "restore", "restore-run over the samples (ONNX Runtime)"):
            report = restore_samples(onnx_path, out, "cpu" if device == "cpu" else "auto")
        with stages.run(5, "sheet", "contact sheet"):
            sheet = contact_sheet(made, out, report)
    except DemoError as e:
        click.echo(f"restore-demo: error: {e}", err=True)
        sys.exit(1)
    total = time.perf_counter() - stages.start
    times = ", ".join(f"{k} {v:.1f} s" for k, v in stages.times.items())
    click.echo(f"\ncontact sheet: {sheet}\ntotal {total:.1f} s ({times})")
    with atomic_path(out / "demo_times.json") as tmp:
        tmp.write_text(json.dumps({"total_seconds": total, "stages": stages.times}, indent=2) + "\n")


if __name__ == "__main__":
    main()
