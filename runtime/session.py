"""ONNX Runtime sessions: provider choice that never lies, and a runner that binds I/O on device.

`onnxruntime-gpu` lists the CUDA and TensorRT providers even on a machine without a GPU, and a
session that asks for them logs an error and quietly runs on the CPU. So the provider actually
running is read back with `session.get_providers()` after the session is made: asking for CUDA
and getting the CPU is an error naming what is missing, never a silent slow run.

Torch-free: only onnxruntime and numpy (onnx through `runtime.metadata`).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from restore_toolkit.console import available_cpus
from restore_toolkit.messages import one_line
from runtime.metadata import (
    ModelFileError,
    ModelMetadata,
    check_external_data,
    check_pixels_io,
    read_metadata,
)

DEVICES = ("auto", "cpu", "cuda")
# --provider names and the ONNX Runtime execution providers they stand for.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class DeviceUnavailableError(RuntimeError):
    """The requested device or execution provider cannot run here; the message says what is missing."""


@dataclass
class SessionInfo:
    """What a session runs on and why, for logs, reports and benchmarks."""

    device: str  # 'cpu' or 'cuda' (TensorRT runs on 'cuda')
    provider: str  # the short name of the provider running the graph: cpu | cuda | tensorrt
    providers: List[str]  # session.get_providers(), in priority order
    requested: str  # what the caller asked for, e.g. 'auto', 'cuda', 'cuda/tensorrt'
    threads: Optional[int]  # intra-op threads on the CPU; None when ORT's default is used
    note: str = ""  # why auto picked what it picked, or ''
    metadata: Optional[ModelMetadata] = None
    source: str = "model"  # the model's path, or '<bytes>'
    input_names: List[str] = field(default_factory=list)
    output_names: List[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the console: 'cuda (CUDAExecutionProvider)' plus the reason when auto chose."""
        text = f"{self.device} ({', '.join(self.providers)})"
        if self.provider == "cpu" and self.threads:
            text += f", {self.threads} threads"
        return text + (f"; {self.note}" if self.note else "")


def cuda_driver_problem() -> Optional[str]:
    """Why no CUDA device can be used here, or None when the driver reports at least one GPU.

    Asks the driver directly (libcuda's cuInit / cuDeviceGetCount) so the error names the
    missing piece instead of ORT's generic fallback message.
    """
    names = {"nt": ["nvcuda.dll"]}.get(os.name, ["libcuda.so.1", "libcuda.so"])
    lib = None
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return "no NVIDIA driver found (libcuda could not be loaded)"
    rc = lib.cuInit(0)
    if rc != 0:
        return f"the NVIDIA driver found no usable GPU (cuInit returned {rc})"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "the NVIDIA driver reports no CUDA device"
    return None


def preload_cuda_libraries() -> str:
    """Let ORT find CUDA/cuDNN installed as pip packages (e.g. with PyTorch), where it can.

    Returns what `onnxruntime.preload_dlls` printed (it reports failures on stdout), so a
    later error can quote it; '' when all was quiet or the function does not exist.
    """
    import onnxruntime as ort

    if not hasattr(ort, "preload_dlls"):  # ORT < 1.21: libraries come from the system paths
        return ""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            ort.preload_dlls()
    except Exception as e:  # a missing directory or odd install must not stop a CPU run
        buf.write(f"{type(e).__name__}: {e}")
    return buf.getvalue().strip()


def _provider_list(provider: str, device_id: int, cache_dir: Optional[str],
                   cuda_graph: bool = False) -> List[Union[str, Tuple[str, Dict]]]:
    """The providers to ask for, most preferred first, with the options a folder run wants."""
    cuda_opts = {
        "device_id": str(device_id),
        # Folders hold many image sizes: EXHAUSTIVE would re-benchmark every conv algorithm on each
        # new shape (seconds each); HEURISTIC picks from cuDNN's heuristics at once.
        "cudnn_conv_algo_search": "HEURISTIC",
        # Grow the memory arena by what is asked, not by doubling: mixed sizes waste less memory.
        "arena_extend_strategy": "kSameAsRequested",
        # fp32 means fp32: the provider otherwise runs fp32 convolutions and matrix products on
        # TF32 tensor cores (10-bit mantissa), its default on Ampere and later, and an H200 then
        # differs from the CPU by up to 5 levels at 1024² (benchmarks/results/gpukit-h200.md).
        # fp16 graphs are unaffected. The eager CUDA rows turn TF32 off the same way.
        "use_tf32": "0",
    }
    if cuda_graph:
        # Replays one captured graph: only for a fixed input shape, with IO-bound buffers.
        cuda_opts["enable_cuda_graph"] = "1"
    if provider == "cpu":
        return [PROVIDERS["cpu"]]
    if provider == "cuda":
        return [(PROVIDERS["cuda"], cuda_opts), PROVIDERS["cpu"]]
    if provider == "tensorrt":
        trt_opts = {"device_id": str(device_id), "trt_engine_cache_enable": "True"}
        if cache_dir:
            # Engines take tens of seconds to build per input shape; keep them between runs.
            trt_opts["trt_engine_cache_path"] = cache_dir
        return [(PROVIDERS["tensorrt"], trt_opts), (PROVIDERS["cuda"], cuda_opts), PROVIDERS["cpu"]]
    raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")


def _metadata_from_bytes(model: bytes) -> ModelMetadata:
    import onnx

    try:
        proto = onnx.load_model_from_string(model)
    except Exception as e:
        raise ModelFileError(f"<bytes>: not a readable ONNX model ({type(e).__name__})") from None
    check_external_data(proto, os.path.join(os.getcwd(), "model.onnx"))
    return ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props}, source="<bytes>")


# ONNX Runtime's own log lines (0 verbose .. 4 fatal): none by default, since every error reaches
# the user as one line of ours; `restore-run --verbose` lowers it to warnings.
LOG_SEVERITY = 4


def make_session(
    model: Union[str, os.PathLike, bytes],
    device: str = "auto",
    provider: Optional[str] = None,
    threads: Optional[int] = None,
    device_id: int = 0,
    require_signature: Optional[str] = "pixels",
    check_metadata: bool = True,
    trt_cache_dir: Optional[str] = None,
    log_severity: Optional[int] = None,
    cuda_graph: bool = False,
):
    """Create an `onnxruntime.InferenceSession` on the device asked for, and prove it runs there.

    Args:
        model: path of an ONNX file, or its bytes.
        device: 'auto' (CUDA when it really works, else CPU; the note says which and why),
            'cpu' or 'cuda' (an error when CUDA cannot run).
        provider: 'cpu', 'cuda' or 'tensorrt'; defaults to the device's own. 'tensorrt' implies
            device 'cuda' (TensorRT first, CUDA then CPU for the nodes it does not take).
        threads: intra-op CPU threads; default: the CPUs this process may use.
        device_id: the GPU to run on.
        require_signature: refuse models whose `restore.signature` differs (None: accept any).
            'pixels' also checks the graph's real inputs and outputs against the contract.
        check_metadata: read and validate the `restore.` metadata (refuse files that are not ours
            or of an unknown format version). Off only for research graphs without it.
        trt_cache_dir: where TensorRT keeps its built engines (default: beside the model file).
        log_severity: ORT's log level (default LOG_SEVERITY, 4: fatal only); our own errors say
            what went wrong, in one line.
        cuda_graph: capture and replay a CUDA graph (CUDA provider only; one fixed input shape,
            inputs and outputs bound on the device). For benchmarks of fixed-size serving.

    Returns:
        (session, SessionInfo).

    Raises:
        ModelFileError: the file is not ours, of an unknown version, unreadable, the wrong
            signature, or its inputs and outputs are not the pixels contract.
        DeviceUnavailableError: the requested device/provider is not the one running the graph.
    """
    device = _resolve_device(device, provider)
    source = "<bytes>" if isinstance(model, (bytes, bytearray)) else str(model)
    metadata = _read_checked_metadata(model, source, check_metadata, require_signature)
    threads = threads or available_cpus()
    want, note = _choose_provider(device, provider)
    if cuda_graph and want != "cuda":
        raise ValueError("cuda_graph needs the CUDA provider")
    preload_output = _require_provider(want)
    if trt_cache_dir is None and want == "tensorrt" and source != "<bytes>":
        trt_cache_dir = str(Path(source).resolve().parent / ".trt-cache")
    opts = session_options(threads, log_severity, mem_pattern=cuda_graph)
    session, want, note = _open_session(model, source, device, want, note, opts,
                                        _provider_list(want, device_id, trt_cache_dir, cuda_graph), preload_output)
    if require_signature == "pixels":
        check_pixels_io(session.get_inputs(), session.get_outputs(), source)
    info = SessionInfo(
        device="cpu" if want == "cpu" else "cuda",
        provider=want,
        providers=session.get_providers(),
        requested=device + (f"/{provider}" if provider else ""),
        threads=threads if want == "cpu" else None,
        note=note,
        metadata=metadata,
        source=source,
        input_names=[i.name for i in session.get_inputs()],
        output_names=[o.name for o in session.get_outputs()],
    )
    return session, info


def _resolve_device(device: str, provider: Optional[str]) -> str:
    """Check --device against --provider; naming a provider turns 'auto' into its device."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if provider is not None and provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if provider in ("cuda", "tensorrt") and device == "cpu":
        raise ValueError(f"--provider {provider} needs --device cuda (or auto), not cpu")
    if provider == "cpu" and device == "cuda":
        raise ValueError("--provider cpu contradicts --device cuda")
    if provider is not None and device == "auto":
        # Naming a provider is a request for it: no quiet fallback to another.
        return "cpu" if provider == "cpu" else "cuda"
    return device


def _read_checked_metadata(model, source: str, check_metadata: bool,
                           require_signature: Optional[str]) -> Optional[ModelMetadata]:
    """The model's `restore.` metadata, refused when foreign or of the wrong signature."""
    if not check_metadata:
        if source != "<bytes>" and not Path(model).is_file():
            raise ModelFileError(f"{source}: no such model file")
        return None
    metadata = _metadata_from_bytes(bytes(model)) if source == "<bytes>" else read_metadata(model)
    if require_signature and metadata.signature != require_signature:
        raise ModelFileError(
            f"{source}: a '{metadata.signature}' graph; this runner needs the '{require_signature}' "
            f"signature (export with --signature {require_signature})"
        )
    return metadata


def _choose_provider(device: str, provider: Optional[str]) -> Tuple[str, str]:
    """(short provider name to try, note): 'auto' tries the GPU only where ORT can run it."""
    want = provider or ("cpu" if device == "cpu" else "cuda")
    if device == "auto" and want != "cpu":
        problem = provider_problem(want)
        if problem:
            return "cpu", f"auto chose the CPU: {problem}"
    return want, ""


def runs_on_cpu(device: str, provider: Optional[str]) -> bool:
    """Whether a session for (device, provider) will run on the CPU, decided as `make_session` decides."""
    try:
        resolved = _resolve_device(device, provider)
    except ValueError:
        return True  # make_session raises the same error with its own message
    return resolved == "cpu" or _choose_provider(resolved, provider)[0] == "cpu"


def provider_problem(want: str) -> Optional[str]:
    """Why ORT cannot run the GPU provider `want` ('cuda' or 'tensorrt') here, or None when it can.

    Both pieces are needed: a build with the provider (onnxruntime-gpu) and a GPU the driver sees.
    A GPU machine with the CPU-only onnxruntime wheel has the second without the first.
    """
    import onnxruntime as ort

    if PROVIDERS[want] not in ort.get_available_providers():
        return (f"{PROVIDERS[want]} is not in this onnxruntime build "
                f"({ort.__version__}: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
    return cuda_driver_problem()


def _require_provider(want: str) -> str:
    """Fail early, naming what is missing, when a GPU provider cannot run; returns preload output."""
    if want == "cpu":
        return ""
    problem = provider_problem(want)
    if problem:
        raise DeviceUnavailableError(f"{PROVIDERS[want]} requested but unusable: {problem}")
    return preload_cuda_libraries()


def session_options(threads: int, log_severity: Optional[int] = None, mem_pattern: bool = False):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Memory patterns plan one block per input shape and keep every shape's block: over a folder
    # of mixed sizes and tiles that took a 12 Mpx photo's tiles to 3.2 GB against 1.4 GB without
    # (the int8 graph on the CPU, benchmarks/memory.py); the arena, which reuses freed blocks,
    # stays on (without it every call faults its pages in afresh: a quarter more CPU time).
    # Only a replayed CUDA graph (one fixed shape) keeps them.
    opts.enable_mem_pattern = mem_pattern
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = LOG_SEVERITY if log_severity is None else log_severity
    # Ignored by the GPU providers; on the CPU (also after a fallback) it is the thread budget.
    opts.intra_op_num_threads = threads
    # One graph, one stream of batches: parallel inter-op scheduling only adds thread contention.
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def _open_session(model, source: str, device: str, want: str, note: str, opts, providers, preload_output: str):
    """Make the session and read back what runs it; returns (session, provider running, note).

    'auto' falls back to the CPU (saying why) when the GPU session fails or silently runs on the
    CPU; an explicit GPU request raises instead.
    """
    import onnxruntime as ort

    payload = bytes(model) if source == "<bytes>" else str(model)
    try:
        session = ort.InferenceSession(payload, sess_options=opts, providers=providers)
    except Exception as e:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        first = one_line(e, 300, with_type=False)
        if want != "cpu" and device == "auto":
            return _cpu_session(payload, opts), "cpu", f"auto chose the CPU: {want} failed ({first})"
        if want != "cpu":
            raise DeviceUnavailableError(f"{PROVIDERS[want]} could not start: {first}") from None
        raise ModelFileError(f"{source}: onnxruntime cannot load it ({first})") from None

    running = session.get_providers()[0]
    if running == PROVIDERS[want]:
        return session, want, note or (f"auto chose {want}" if device == "auto" and want != "cpu" else "")
    missing = "its CUDA/cuDNN libraries did not load" + (f" ({preload_output.splitlines()[0]})" if preload_output else "")
    if device == "auto":
        # The session already fell back to the CPU; remake it with the CPU thread setting.
        return _cpu_session(payload, opts), "cpu", f"auto chose the CPU: {PROVIDERS[want]} is installed but {missing}"
    raise DeviceUnavailableError(f"{PROVIDERS[want]} requested but onnxruntime runs {running}: {missing}")


def _cpu_session(payload, opts):
    import onnxruntime as ort

    return ort.InferenceSession(payload, sess_options=opts, providers=[PROVIDERS["cpu"]])
