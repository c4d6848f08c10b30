"""Validation as the reference design describes it: run a trained model over ROOT/val and save what it made.

For every validation sample, `RestorationPipeline` (the deployed code path: normalization,
padding, thresholding and compositing live only there) writes

    OUT/predicted_images/NAME.png      the image decoder's raw output
    OUT/reconstructed_images/NAME.png  the mask-guided composite
    OUT/binary_masks/NAME.png          the mask the composite used (0/255): binarized at the
                                       threshold, then the release's mask opening

and OUT/metrics.json holds the set's figures (see `restore_core.metrics`) and each image's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from restore_core.checkpoint import load_model
from restore_core.data import PairedFolderDataset
from restore_core.dataset_check import check_dataset
from restore_core.distributed import resolve_device
from restore_core.fileio import atomic_save_png, atomic_write_text
from restore_core.img_utils import normalize, unnormalize
from restore_core.metrics import MetricAccumulator, NonFiniteOutputError
from restore_core.pipeline import RestorationPipeline

OUTPUT_DIRS = ("predicted_images", "reconstructed_images", "binary_masks")


@torch.no_grad()
def validate(checkpoint: str | os.PathLike, data_root: str | os.PathLike, out_dir: str | os.PathLike,
             threshold: Optional[float] = None, device: str = "auto", progress: bool = False) -> Dict[str, Any]:
    """Run the model of `checkpoint` over `data_root/val`, save images and metrics.json.

    Args:
        checkpoint: a training checkpoint (.ckpt) or a release (.safetensors).
        data_root: dataset root in the reference design's layout; its `val` split is used.
        out_dir: where the three image folders and metrics.json go.
        threshold: mask threshold; None uses the one saved with the model (the reference design's 0.1).
        device: auto, cpu or cuda.
        progress: show a progress bar.

    Returns:
        The contents of metrics.json.

    Raises:
        CheckpointError, DatasetError, DeviceError: bad input, named.
        NonFiniteOutputError: the model's outputs are NaN or infinite (a diverged model).
    """
    dev = resolve_device(device)
    check_dataset(data_root, splits=("val",))  # problems named before any work
    loaded = load_model(checkpoint, device=dev)
    thr = loaded.threshold if threshold is None else float(threshold)
    # The release's own pipeline (flip ensemble, mask opening): what is exported and deployed.
    pipe = RestorationPipeline(loaded.model, thr, loaded.flip_ensemble, loaded.mask_opening).eval()
    ds = PairedFolderDataset(data_root, "val")
    out = Path(out_dir)
    acc = MetricAccumulator(thr)
    per_image: Dict[str, Any] = {}
    from tqdm import tqdm

    for i in tqdm(range(len(ds)), desc="validate", unit="img", disable=not progress):
        corrupted, clean, true_mask = (t[None].to(dev) for t in ds[i])  # (1,3,H,W) u8 x2, (1,1,H,W) bool
        # One pass of the pipeline's float path gives every figure and image: unnormalize is the
        # exact inverse of normalize, so unnormalize(composite) is the pixel path's `restored`.
        pred, prob, composite = pipe.forward_tensor(normalize(corrupted))
        restored = unnormalize(composite)  # (1, 3, H, W) uint8
        hit = pipe.binarize(prob)  # (1, 1, H, W) bool: the mask the composite used
        try:
            rec = acc.update(pred, prob, normalize(clean), true_mask, restored, clean, hit=hit)[0]
        except NonFiniteOutputError as e:  # a diverged model: one line naming it
            raise NonFiniteOutputError(f"{checkpoint}: {e} on {ds.names[i]}") from None
        per_image[ds.names[i]] = rec
        name = ds.names[i] + ".png"
        atomic_save_png(unnormalize(pred)[0].permute(1, 2, 0).cpu().numpy(), out / "predicted_images" / name)
        atomic_save_png(restored[0].permute(1, 2, 0).cpu().numpy(), out / "reconstructed_images" / name)
        atomic_save_png((hit[0, 0].to(torch.uint8) * 255).cpu().numpy(), out / "binary_masks" / name)
    report = {
        "checkpoint": str(checkpoint),
        "data": str(Path(data_root) / "val"),
        "samples": len(ds),
        "threshold": thr,
        "model": loaded.describe(),
        "metrics": acc.result(),
        "per_image": per_image,
    }
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def pixel_restorer(pipe: RestorationPipeline, device: torch.device | str = "cpu"):
    """`heldout`'s restore function (uint8 RGB -> (restored RGB, mask bool)) through `pipe`'s pixel path."""

    @torch.no_grad()
    def restore(rgb):
        image = torch.from_numpy(np.ascontiguousarray(rgb))[None].to(device)  # (1, H, W, 3) uint8
        restored, mask, _ = pipe(image)
        return restored[0].cpu().numpy(), mask[0, ..., 0].cpu().numpy() > 0

    return restore


def validate_heldout(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, per_photo: int = 12,
                     device: str = "auto", photos: str = "evaluation") -> Dict[str, Any]:
    """Score a model on the held-out photo set (`restore_core.heldout`) against the references.

    Runs `RestorationPipeline`'s pixel path, image by image at each image's own size, and writes
    OUT/heldout.json, OUT/heldout.md, OUT/worst.png and OUT/typical.png.

    Args:
        checkpoint: a .ckpt, a .safetensors release, or `default` for the shipped model.
        out_dir: where the report goes.
        per_photo: crops per held-out photo.
        device: auto, cpu or cuda.
        photos: the held-out group to score, "evaluation" (reports) or "selection" (choices).
    """
    from restore_core.heldout import heldout_set, write_report

    dev = resolve_device(device)
    pipe = load_model(checkpoint, device=dev).pipeline()
    return write_report(out_dir, heldout_set(per_photo, photos=photos), pixel_restorer(pipe, dev), str(checkpoint))
