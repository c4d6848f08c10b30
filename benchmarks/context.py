"""What every backend is built from: one model, the files exported from it, and ORT sessions.

Artifacts (ONNX graphs of both signatures and precisions, the TorchScript file, the int8 graph)
are made once, on first use, in a scratch folder, through the project's exporters; the seconds
each took are kept for the report, apart from any backend's setup time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from restore_core.pipeline import RestorationPipeline


class BenchContext:
    """The model under test and a cache of what is derived from it.

    Args:
        pipeline: the eager fp32 pipeline on the CPU (None when only an ONNX file was given).
        onnx_path: a user-given pixels-signature ONNX file; used for the ORT rows instead of an
            export of `pipeline`.
        onnx_precision: that file's precision ("fp32" or "fp16"), from its metadata.
        calibration: uint8 (N, H, W, 3) batches for int8 calibration, apart from the timed inputs.
        opset: ONNX opset for exports.
        workdir: scratch folder; a temporary one (removed by `close`) when None.
        int8_onnx: an int8 pixels graph (`restore-export onnx --int8`) for the int8 rows instead
            of one quantized here.
        force_bf16: run bf16 rows even where the CPU emulates bf16.
    """

    def __init__(self, pipeline: Optional[RestorationPipeline], onnx_path: Optional[Path] = None,
                 onnx_precision: str = "fp32", calibration: Optional[List[np.ndarray]] = None,
                 opset: int = 20, workdir: Optional[Path] = None, int8_onnx: Optional[Path] = None,
                 force_bf16: bool = False):
        self.pipeline = pipeline
        self.int8_onnx = Path(int8_onnx) if int8_onnx else None
        self.force_bf16 = force_bf16
        self.onnx_path = Path(onnx_path) if onnx_path else None
        self.onnx_precision = onnx_precision
        self.calibration = calibration or []
        self.opset = opset
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="restore-bench-")
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)
        self._artifacts: Dict[str, Path] = {}
        self.artifact_seconds: Dict[str, float] = {}
        self.providers_seen: Dict[str, List[str]] = {}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    # -----------------------------------------------------------------------------------------
    # Artifacts: "torchscript", "onnx-<pixels|tensor>-<fp32|fp16|int8>".

    def has_tensor_graph(self, precision: str) -> bool:
        """Float parity needs the tensor signature, which only PyTorch weights can export."""
        return self.pipeline is not None

    def artifact(self, key: str) -> Path:
        """Path of the artifact `key`, made on first request."""
        if key not in self._artifacts:
            t0 = time.perf_counter()
            self._artifacts[key] = self._make(key)
            self.artifact_seconds[key] = time.perf_counter() - t0
        return self._artifacts[key]

    def _make(self, key: str) -> Path:
        if key == "torchscript":
            return self._torchscript()
        _, signature, precision = key.split("-")
        if signature == "pixels" and self.onnx_path is not None and precision == self.onnx_precision:
            return self.onnx_path
        if precision == "fp32":
            return self._export(signature)
        if precision == "fp16":
            return self._fp16(signature)
        if precision == "int8":
            return self._int8(signature)
        raise ValueError(f"unknown artifact {key!r}")

    def _export(self, signature: str, fp16: bool = False) -> Path:
        from export.onnx_export import export_onnx

        # No parity run at export: the benchmark measures parity itself, on its own inputs.
        path = self.workdir / f"model-{signature}-{'fp16' if fp16 else 'fp32'}.onnx"
        export_onnx(self.pipeline, path, signature=signature, opset=self.opset, fp16=fp16, verify=False, force=True)
        return path

    def _fp16(self, signature: str) -> Path:
        if signature == "pixels" and self.onnx_path is not None:  # convert the user's own file
            import onnx

            from export.fp16 import convert_to_fp16

            path = self.workdir / "model-pixels-fp16.onnx"
            proto = convert_to_fp16(onnx.load(str(self.onnx_path)))
            for entry in proto.metadata_props:
                if entry.key == "restore.precision":
                    entry.value = "fp16"
            onnx.save_model(proto, str(path))
            return path
        return self._export(signature, fp16=True)

    def _int8(self, signature: str) -> Path:
        if signature == "pixels" and self.int8_onnx is not None:
            return self.int8_onnx
        src = self.artifact(f"onnx-{signature}-fp32")  # the user's file when it is an fp32 graph
        path = self.workdir / f"model-{signature}-int8.onnx"
        if signature == "pixels":
            # The shipped recipe (`restore-export onnx --int8`): calibration on the export's
            # corrupted training-photo crops, only the network body quantized.
            from export.quantize import calibration_images, preprocess, quantize_graph

            pre = self.workdir / "model-pixels-int8.pre.onnx"
            preprocess(src, pre)
            quantize_graph(pre, path, calibration_images(len(self.calibration)))
            pre.unlink()
        else:
            quantize_int8(src, path, self.calibration, signature)
        return path

    def _torchscript(self) -> Path:
        from export.onnx_export import build_metadata
        from export.torchscript import save_torchscript

        path = self.workdir / "model.pt"
        save_torchscript(self.pipeline, path, build_metadata(self.pipeline, "pixels", "fp32", parity=None))
        return path

    # -----------------------------------------------------------------------------------------
    # Sessions.

    def ort_session(self, path: Path, provider: str, signature: str, cuda_graph: bool = False):
        """An ORT session on `provider` that is proven to run there (`runtime.session`).

        The user's own file is checked like `restore-run` checks it; graphs made here are not
        all stamped with metadata (the int8 quantizer drops it), so theirs is not read.
        """
        from runtime.session import make_session

        device = "cpu" if provider == "cpu" else "cuda"
        check = Path(path) in (self.onnx_path, self.int8_onnx)
        session, info = make_session(str(path), device=device, provider=provider, require_signature=signature,
                                     check_metadata=check, cuda_graph=cuda_graph)
        self.providers_seen[provider] = info.providers
        self.ort_threads = info.threads or getattr(self, "ort_threads", None)
        return session


def quantize_int8(src: Path, dst: Path, calibration: List[np.ndarray], signature: str) -> None:
    """Static int8 quantization (QDQ, per-channel weights) calibrated on `calibration`.

    ORT's default operator set is quantized (convolutions, pooling, resize, concat, ...); the
    uint8 front end, the thresholding and the uint8 compositing have no quantized form and stay
    exact, so outside-mask pixels are still the input bytes. The accuracy of an int8 model is
    not established by this benchmark (the default run uses random weights).

    Args:
        src: fp32 graph of `signature`.
        dst: where to write the quantized graph.
        calibration: uint8 (1, H, W, 3) images.
        signature: "pixels" (feeds the uint8 images) or "tensor" (feeds them normalized).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("int8 quantization needs calibration images")

    def feed(img: np.ndarray) -> Dict[str, np.ndarray]:
        if signature == "pixels":
            return {"image": img}
        import torch

        from restore_core.img_utils import normalize

        return {"input": normalize(torch.from_numpy(img).permute(0, 3, 1, 2)).contiguous().numpy()}

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([feed(img) for img in calibration])

        def get_next(self):
            return next(self.items, None)

    # ORT's recommended pre-processing (graph optimization before quantization); its symbolic
    # shape inference cannot resolve the dynamic sizes of the padding, so it is skipped.
    pre = Path(dst).with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    pre.unlink()
