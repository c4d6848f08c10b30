"""What every row is compared with: the reference's outputs (eager fp32 on the CPU, or ONNX
Runtime CPU fp32 for an ONNX file alone), a backend's parity with them, and the held-out quality
figures of the reference and of any restore function.

Apart from the run (`benchmarks/runner.py`), which measures time and memory: these say whether
what was timed computes what the reference does.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from benchmarks.backend import Backend
from benchmarks.context import BenchContext
from export.parity import TOLERANCES, merge, pixel_parity, tensor_parity, violations
from restore_core.img_utils import normalize, unnormalize
from restore_core.pipeline import RestorationPipeline


def reference(pipeline: Optional[RestorationPipeline], ctx: BenchContext, images: np.ndarray) -> Dict:
    """Eager fp32 outputs on the CPU (or ORT CPU fp32 when only an ONNX file was given).

    Both signatures' outputs come from one pass of the network: `pipeline(images)` and
    `pipeline.forward_tensor(x)` predict the same `x`, so calling both ran it twice, and this is
    the largest fixed cost of a run before its first row (17 images at 1024² in the GPU kit's
    grid). The two derivations below are the pipeline's own, checked equal in tests/test_bench.py.
    """
    if pipeline is None:
        session = ctx.ort_session(ctx.onnx_path, "cpu", "pixels")
        return {"pixels": session.run(["restored", "mask", "predicted"], {"image": images}), "tensor": None}
    with torch.inference_mode():
        image = torch.from_numpy(images)  # (N, H, W, 3) uint8
        x = normalize(image.permute(0, 3, 1, 2).contiguous())  # (N, 3, H, W), as forward() feeds predict()
        pred, prob = pipeline.predict(x)
        corrupted = pipeline.binarize(prob)  # (N, 1, H, W) bool
        tensor = (pred, prob, torch.where(corrupted, pred.to(x.dtype), x))  # forward_tensor(x)
        corrupted_hw = corrupted.permute(0, 2, 3, 1)  # (N, H, W, 1)
        predicted = unnormalize(pred.permute(0, 2, 3, 1))  # (N, H, W, 3) uint8
        pixels = (torch.where(corrupted_hw, predicted, image), corrupted_hw.to(torch.uint8) * 255, predicted)  # forward()
    return {"pixels": tuple(t.numpy() for t in pixels), "tensor": tuple(t.numpy() for t in tensor)}


def parity(backend: Backend, images: np.ndarray, ref: Dict, x: np.ndarray) -> Dict:
    figures = pixel_parity(images, ref["pixels"], backend.fetch())
    tensor = backend.run_tensor(x) if ref.get("tensor") is not None else None
    if tensor is not None:
        figures = merge([figures, tensor_parity(ref["tensor"], tensor)])
    tol = TOLERANCES.get(backend.precision)
    return {
        **figures,
        "float_parity": tensor is not None,
        "tolerance": backend.precision if tol else None,
        "violations": violations(figures, tol) if tol else None,
    }


def quality_of(restore, cases) -> Dict:
    from restore_core.heldout import evaluate

    summary, _ = evaluate(cases, restore)
    return {k: summary[k] for k in ("images", "mask_iou", "psnr_inside", "psnr")}


def reference_quality(pipeline: Optional[RestorationPipeline], ctx: BenchContext, cases) -> Dict:
    """Held-out figures of the reference (eager fp32, or ORT CPU fp32 for an ONNX file alone)."""
    if pipeline is None:
        session = ctx.ort_session(ctx.onnx_path, "cpu", "pixels")

        def restore(rgb):
            restored, mask = session.run(["restored", "mask"], {"image": rgb[None]})
            return restored[0], mask[0, ..., 0] > 0
    else:
        def restore(rgb):
            with torch.inference_mode():
                restored, mask, _ = pipeline(torch.from_numpy(rgb[None]))
            return restored[0].numpy(), mask[0, ..., 0].numpy() > 0
    return quality_of(restore, cases)
