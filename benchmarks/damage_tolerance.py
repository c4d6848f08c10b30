"""Which damage tolerance leaves no halo: the figures behind `DegradeConfig.tolerance`.

Shapes are painted on crops of the *selection* photos (`photos.BUNDLED_VAL`), the crop is saved
as a user's file would be (JPEG 75 / 90 / 95 at 4:2:0, 95 at 4:4:4), and the damage mask is taken
at each tolerance. Each mask is then filled two ways and scored against the clean crop after the
same save (the file the user would have had without the paint):

- `truth`: the clean file's own pixels inside the mask (the best any fill can do: what the halo
  left outside the mask costs);
- `telea`: OpenCV's Telea inpainting inside the mask (a fill that, like a network's, is not
  exact: what flagging more pixels costs).

    python -m benchmarks.damage_tolerance -o benchmarks/results/damage-tolerance
"""

from __future__ import annotations

import shlex
import sys

import click
import numpy as np

from restore_core.degrade import damage_mask, decode, encode_jpeg
from restore_core.fileio import atomic_write_text
from restore_core.heldout import psnr
from restore_core.photos import BUNDLED_VAL, bundled_photos, random_crop
from restore_toolkit.corruption import CorruptionConfig, corrupt, sample_rng

FORMATS = (("jpeg-75-420", 75, "4:2:0"), ("jpeg-90-420", 90, "4:2:0"), ("jpeg-95-420", 95, "4:2:0"),
           ("jpeg-95-444", 95, "4:4:4"))
TOLERANCES = (0, 4, 8, 12, 16, 24, 32, 256)  # 256: the painted shapes alone
PAINT = CorruptionConfig(count=(1, 6), size=(0.05, 0.35), shapes=("square", "circle"), fill="random")


def measure(per_photo: int, size: int, seed: int) -> dict:
    import cv2

    photos = bundled_photos()
    rows = {}
    for fmt, q, sub in FORMATS:
        acc = {t: {"truth": [], "telea": [], "area": []} for t in TOLERANCES}
        for name in BUNDLED_VAL:
            for i in range(per_photo):
                rng = sample_rng(seed, i, sum(map(ord, name)))
                clean = random_crop(photos[name], size, rng, augment=False)
                painted, shapes = corrupt(clean, rng, PAINT)
                c, p = decode(encode_jpeg(clean, q, sub)), decode(encode_jpeg(painted, q, sub))
                for t in TOLERANCES:
                    m = damage_mask(p, c, shapes, t)
                    truth = np.where(m[..., None], c, p)
                    telea = np.where(m[..., None], cv2.inpaint(p, m.astype(np.uint8), 3, cv2.INPAINT_TELEA), p)
                    acc[t]["truth"].append(psnr(truth, c))
                    acc[t]["telea"].append(psnr(telea, c))
                    acc[t]["area"].append(m.sum() / max(1, shapes.sum()))
        rows[fmt] = {str(t): {k: float(np.mean(v)) for k, v in a.items()} for t, a in acc.items()}
    return rows


def markdown(rows: dict) -> str:
    head = "| format | " + " | ".join("shapes only" if t == 256 else f"> {t}" for t in TOLERANCES) + " |"
    lines = [head, "|" + " --- |" * (len(TOLERANCES) + 1)]
    for fmt, r in rows.items():
        cells = [f"{r[str(t)]['truth']:.1f} / {r[str(t)]['telea']:.2f} / {r[str(t)]['area']:.2f}x" for t in TOLERANCES]
        lines.append(f"| {fmt} | " + " | ".join(cells) + " |")
    return ("PSNR dB of the true fill / the Telea fill, and the mask's area against the painted shapes',"
            " by damage tolerance (levels):\n\n" + "\n".join(lines) + "\n")


@click.command()
@click.option("-o", "--output", required=True, help="Path without suffix: writes .json and .md.")
@click.option("--per-photo", default=16, show_default=True, help="Crops per selection photo.")
@click.option("--size", default=256, show_default=True, help="Crop side.")
@click.option("--seed", default=7, show_default=True, help="Seed of the crops and the paint.")
def main(output: str, per_photo: int, size: int, seed: int) -> None:
    """Measure the halo left and the fill cost at each damage tolerance."""
    rows = measure(per_photo, size, seed)
    from benchmarks.report import environment, write_json

    command = shlex.join(["python", "-m", "benchmarks.damage_tolerance", *sys.argv[1:]])
    write_json({"command": command, "machine": environment()["machine"], "per_photo": per_photo, "size": size,
                "seed": seed, "photos": list(BUNDLED_VAL), "rows": rows}, output + ".json")
    atomic_write_text(output + ".md", markdown(rows))
    click.echo(markdown(rows))


if __name__ == "__main__":
    main()
