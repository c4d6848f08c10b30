"""The model restore-bench measures: the checkpoint, the ONNX file or seeded random weights,
described for the report, and its work per image in FLOPs.

Apart from the run (`benchmarks/runner.py`): which weights are measured is settled here, once,
and the run then times whatever pipeline or file this gives it.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

import torch

from benchmarks import inputs
from restore_core.img_utils import normalize
from restore_core.model import DualDecoderUNet, ModelConfig, count_flops, count_parameters
from restore_core.pipeline import DEFAULT_THRESHOLD, RestorationPipeline

if TYPE_CHECKING:
    from benchmarks.runner import BenchSettings


@torch.no_grad()
def random_pipeline(seed: int = 0, cfg: Optional[ModelConfig] = None) -> RestorationPipeline:
    """A default-width model with seeded random weights.

    An untrained mask head puts every probability near 0.5, above the 0.1 threshold, so every
    pixel would be "corrupted" and the outside-mask parity check would test nothing. Its bias is
    shifted so that about half the pixels of a bench photo fall below the threshold.
    """
    torch.manual_seed(seed)
    model = DualDecoderUNet(cfg or ModelConfig()).eval()
    image = torch.from_numpy(inputs.corrupted_batch(1, 64, 64, seed=seed))
    _, logits = model(normalize(image.permute(0, 3, 1, 2)))
    target = math.log(DEFAULT_THRESHOLD / (1 - DEFAULT_THRESHOLD))
    model.mask_decoder.head.bias += target - logits.median()
    return RestorationPipeline(model).eval()


def flops_per_image(model: DualDecoderUNet, sizes: Sequence[int], flip_ensemble: bool) -> Dict[int, int]:
    """The pipeline's work per `size`x`size` image: the network on the image padded to the
    stride, twice with the flip ensemble."""
    stride, passes = model.cfg.stride, 2 if flip_ensemble else 1
    return {s: passes * count_flops(model, stride * math.ceil(s / stride)) for s in sizes}


def load_subject(settings: BenchSettings) -> Tuple[Optional[RestorationPipeline], Dict, Optional[str]]:
    """(eager pipeline or None, model description, ONNX precision) for the settings."""
    if settings.checkpoint:
        from restore_core.checkpoint import load_model

        pipeline = load_model(settings.checkpoint, flip_ensemble=settings.flip_ensemble).pipeline()
        info = {"source": "checkpoint", "path": str(settings.checkpoint),
                "note": "weights from the checkpoint"}
    elif settings.onnx:
        pipeline = None
        info = {"source": "onnx", "path": str(settings.onnx),
                "note": "ONNX file only: PyTorch rows are skipped, parity is against ONNX Runtime CPU fp32"}
    else:
        pipeline = random_pipeline(settings.seed)
        info = {"source": "random", "seed": settings.seed,
                "note": "default-width model, seeded random weights (speed does not depend on training)"}
    from runtime.metadata import read_metadata

    onnx_precision, meta = None, None
    if settings.onnx:
        meta = read_metadata(settings.onnx)  # raises ModelFileError: not ours, wrong version
        if meta.signature != "pixels":
            raise ValueError(f"{settings.onnx}: a '{meta.signature}' graph; the benchmark needs the pixels signature")
        onnx_precision = meta.precision
        info["onnx_weights_sha256"] = meta.weights_sha256
        if pipeline is None:
            cfg = ModelConfig.from_dict(meta.model_config)
            info.update(threshold=meta.threshold, weights_sha256=meta.weights_sha256,
                        flip_ensemble=meta.extra.get("flip_ensemble") == "true")
            info["model_config"] = asdict(cfg)
            info["_flops_model"] = DualDecoderUNet(cfg).eval()  # weights do not change FLOPs
    if pipeline is not None:
        from restore_core.checkpoint import weights_sha256

        info.update(model_config=asdict(pipeline.model.cfg), threshold=pipeline.threshold,
                    weights_sha256=weights_sha256(pipeline.model), flip_ensemble=pipeline.flip_ensemble)
        if settings.onnx and info["onnx_weights_sha256"] != info["weights_sha256"]:
            # Allowed (comparing two models is a use), but the parity rows then measure that.
            info["note"] += "; the --onnx file holds other weights than the checkpoint"
        info["_flops_model"] = pipeline.model
    info["parameters"] = count_parameters(info["_flops_model"])
    # A graph given as a file runs as it was written: say so where it does other work per image.
    int8_meta = read_metadata(settings.int8_onnx) if settings.int8_onnx else None
    for option, graph in (("--onnx", meta), ("--int8-onnx", int8_meta)):
        if graph is not None and (graph.extra.get("flip_ensemble") == "true") != info["flip_ensemble"]:
            info["note"] += f"; the {option} graph runs {'the flip ensemble' if not info['flip_ensemble'] else 'one view'}"
    return pipeline, info, onnx_precision
