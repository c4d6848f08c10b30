"""`RestorationPipeline` as TorchScript (`.pt`) and as a `torch.export` program (`.pt2`).

TorchScript is deprecated in current PyTorch (every `torch.jit` call warns that `torch.export`
replaces it) but is still what LibTorch C++ apps load, so we keep offering it; the warnings are
silenced here, narrowly, and the README states the deprecation. The pipeline scripts cleanly
(no tracing anywhere: tracing would freeze the stride padding to the example's size), and is
frozen with `forward_tensor` kept so both signatures stay callable. The frozen module is saved
as is: one passed through `optimize_for_inference` saved without its weights.

`torch.export` is the successor: `.pt2` files hold the pixels signature with dynamic batch,
height and width, loadable with `torch.export.load` and runnable with no model code.

Both carry the same `restore.` metadata as our ONNX files, as `restore_metadata.json` inside
the archive (TorchScript `_extra_files`, `torch.export.save(extra_files=...)`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from export.errors import ExportError
from export.onnx_export import example_input, signature_module
from export.verify import Backend, Case, check_parity
from restore_core.fileio import atomic_path
from restore_core.pipeline import RestorationPipeline
from restore_toolkit.messages import one_line
from runtime.metadata import ModelFileError, ModelMetadata

METADATA_FILE = "restore_metadata.json"


@contextlib.contextmanager
def _quiet_jit():
    """Silence only torch.jit's own deprecation warnings (a FutureWarning in torch 2.14, a
    DeprecationWarning in 2.13); everything else still shows."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=category)
        yield


@contextlib.contextmanager
def _quiet_export_logger():
    """Silence the `torch.export` logger while a file loads: on a file it cannot read it logs
    the whole traceback as warnings before raising, and our one-line error says it all."""
    logger = logging.getLogger("torch.export")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def _metadata_bytes(metadata: ModelMetadata) -> bytes:
    return json.dumps(metadata.to_props(), sort_keys=True).encode("utf-8")


def _parse_metadata(raw: bytes | str, path: Path) -> ModelMetadata:
    if not raw:
        raise ModelFileError(f"{path}: not a restore model (no {METADATA_FILE} inside)")
    try:
        props = json.loads(raw)
    except ValueError:
        raise ModelFileError(f"{path}: malformed {METADATA_FILE}") from None
    if not isinstance(props, dict):
        raise ModelFileError(f"{path}: malformed {METADATA_FILE}")
    return ModelMetadata.from_props(props, source=str(path))


# ---------------------------------------------------------------------------------------------
# TorchScript.


def to_torchscript(pipeline: RestorationPipeline) -> torch.jit.ScriptModule:
    """Script and freeze the pipeline; `forward` is the pixels signature, `forward_tensor` the float one.

    Raises:
        ExportError: scripting failed (the first line of TorchScript's message is kept).
    """
    pipeline = pipeline.cpu().eval()
    with _quiet_jit():
        try:
            scripted = torch.jit.script(pipeline)
        except Exception as e:  # torch.jit.frontend errors have many types
            raise ExportError(f"TorchScript scripting failed: {one_line(e)}") from e
        # Freezing inlines weights and BatchNorm statistics as constants; keep forward_tensor.
        return torch.jit.freeze(scripted, preserved_attrs=["forward_tensor"])


def save_torchscript(pipeline: RestorationPipeline, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Script, freeze and write the pipeline atomically with the metadata in `_extra_files`."""
    return write_torchscript(to_torchscript(pipeline), path, metadata)


def write_torchscript(module: torch.jit.ScriptModule, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Write a scripted module atomically with the metadata in `_extra_files`."""
    path = Path(path)
    with atomic_path(path) as tmp, _quiet_jit():
        torch.jit.save(module, str(tmp), _extra_files={METADATA_FILE: _metadata_bytes(metadata)})
    return path


def load_torchscript(path: str | os.PathLike) -> Tuple[torch.jit.ScriptModule, ModelMetadata]:
    """Load one of our TorchScript files on the CPU with its metadata.

    Raises:
        ModelFileError: missing, not TorchScript, or without our metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    extra = {METADATA_FILE: ""}
    with _quiet_jit():
        try:
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise ModelFileError(f"{path}: not a readable TorchScript file ({type(e).__name__})") from None
    return module.eval(), _parse_metadata(extra[METADATA_FILE], path)


# ---------------------------------------------------------------------------------------------
# torch.export (.pt2).


def to_exported_program(pipeline: RestorationPipeline, signature: str = "pixels") -> torch.export.ExportedProgram:
    """Export the signature with dynamic batch, height and width.

    Two settings make every size work: `Dim.DYNAMIC` (named `Dim`s fail: the solver cannot
    prove facts like "padded height >= height" for all sizes) and `backed_size_oblivious`
    (the setting the ONNX exporter uses too), without which the program specializes on whether
    the stride padding is zero and refuses either multiples or non-multiples of the stride.
    """
    module = signature_module(pipeline.cpu().eval(), signature)
    x = example_input(signature)
    dyn = torch.export.Dim.DYNAMIC
    axes = {"pixels": {0: dyn, 1: dyn, 2: dyn}, "tensor": {0: dyn, 2: dyn, 3: dyn}}[signature]
    try:
        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            return torch.export.export(module, (x,), dynamic_shapes=(axes,), strict=False)
    except Exception as e:
        raise ExportError(f"torch.export failed: {one_line(e)}") from e


def save_exported_program(pipeline: RestorationPipeline, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Export the pixels signature and write the `.pt2` atomically with the metadata inside."""
    return write_exported_program(to_exported_program(pipeline, metadata.signature), path, metadata)


def write_exported_program(program: torch.export.ExportedProgram, path: str | os.PathLike,
                           metadata: ModelMetadata) -> Path:
    """Write an exported program as `.pt2` atomically with the metadata inside."""
    path = Path(path)
    # Through an open file: torch.export warns about paths not ending in .pt2 (our temp name).
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.export.save(program, f, extra_files={METADATA_FILE: _metadata_bytes(metadata).decode("utf-8")})
    return path


def load_exported_program(path: str | os.PathLike) -> Tuple[torch.export.ExportedProgram, ModelMetadata]:
    """Load one of our `.pt2` files with its metadata.

    Raises:
        ModelFileError: missing, not an exported program, or without our metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    extra = {METADATA_FILE: ""}
    try:
        with open(path, "rb") as f, _quiet_export_logger():
            program = torch.export.load(f, extra_files=extra)
    except Exception as e:
        raise ModelFileError(f"{path}: not a readable torch.export program ({type(e).__name__})") from None
    return program, _parse_metadata(extra[METADATA_FILE], path)


# ---------------------------------------------------------------------------------------------
# Parity of a written file: its backend for `export.verify.check_parity`.


def verify_torchscript(path: str | os.PathLike, pipeline: RestorationPipeline,
                       cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Check a TorchScript file (both signatures: `forward` and `forward_tensor`) against eager."""
    module, _ = load_torchscript(path)

    @torch.no_grad()
    def pixels(image):
        return [t.numpy() for t in module(torch.from_numpy(image))]

    @torch.no_grad()
    def tensor(x):
        return [t.numpy() for t in module.forward_tensor(torch.from_numpy(x))]

    return check_parity(Backend("torch.jit (TorchScript)", pixels, tensor), pipeline, "fp32", cases)


def verify_exported_program(path: str | os.PathLike, pipeline: RestorationPipeline,
                            float_parity: bool = True, cases: Optional[List[Case]] = None) -> Dict[str, Any]:
    """Check a `.pt2` exported program (pixels) and, with `float_parity`, its tensor twin."""
    program, _ = load_exported_program(path)
    module = program.module()

    @torch.no_grad()
    def pixels(image):
        return [t.numpy() for t in module(torch.from_numpy(image))]

    backend = Backend("torch.export (.pt2)", pixels=pixels)
    if float_parity:
        twin = to_exported_program(pipeline, "tensor").module()
        backend.tensor = torch.no_grad()(lambda x: [t.numpy() for t in twin(torch.from_numpy(x))])
    return check_parity(backend, pipeline, "fp32", cases)


# ---------------------------------------------------------------------------------------------
# The calls the CLI makes: write beside the target, verify the written file, rename.

def export_artifact(kind: str, pipeline: RestorationPipeline, output: str | os.PathLike, verify: bool = True,
                    force: bool = False):
    """Build `kind` ("torchscript" or "exported-program") once, write it beside `output`, verify
    the written file against eager, then rename it into place; returns an `ExportResult`."""
    import time

    from export.onnx_export import ExportResult, build_metadata, check_output_path

    t0 = time.perf_counter()
    output = check_output_path(output, force)
    pipeline = pipeline.cpu().eval()
    build, write, check = {
        "torchscript": (to_torchscript, write_torchscript, verify_torchscript),
        "exported-program": (to_exported_program, write_exported_program, verify_exported_program),
    }[kind]
    artifact = build(pipeline)  # built once, written twice: before and after parity is known
    metadata = build_metadata(pipeline, "pixels", "fp32", parity=None)
    metadata.extra["artifact"] = kind

    t_verify = 0.0
    with atomic_path(output) as tmp:
        write(artifact, tmp, metadata)
        t_export = time.perf_counter() - t0
        if verify:
            t1 = time.perf_counter()
            parity = check(tmp, pipeline)  # raises ParityError with the table
            metadata = dataclasses.replace(metadata, parity=parity)
            write(artifact, tmp, metadata)
            t_verify = time.perf_counter() - t1
    return ExportResult(path=output, metadata=metadata, parity=metadata.parity, seconds=time.perf_counter() - t0,
                        size_bytes=output.stat().st_size, export_seconds=t_export, verify_seconds=t_verify)


def export_torchscript(pipeline: RestorationPipeline, output: str | os.PathLike, *, verify: bool = True,
                       force: bool = False):
    """Script, freeze, save, verify against eager and rename into place; returns an `ExportResult`.

    Args:
        pipeline: the model with its pre/post-processing, eval mode.
        output: the `.pt` file to write.
        verify: run the parity check (both signatures) on the written file.
        force: overwrite an existing file.

    Raises:
        ExportError: bad output path, scripting failure, or failed parity (with the table).
    """
    return export_artifact("torchscript", pipeline, output, verify, force)


def export_exported_program(pipeline: RestorationPipeline, output: str | os.PathLike, *, verify: bool = True,
                            force: bool = False):
    """`torch.export` the pixels signature to `.pt2`, verify it, rename it into place (`ExportResult`)."""
    return export_artifact("exported-program", pipeline, output, verify, force)
