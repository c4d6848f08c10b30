"""`restore-export` (and every command that loads through restore_core/checkpoint.py) on hostile
input: one `error:` line naming the file or option, a non-zero exit, no traceback, nothing lost.

The cases of the second hostile-input sweep (#5, #8, #16, #17, #18, #19); each is refused before
any slow export work, so every test here runs in about a second on the tiny model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from restore_core.checkpoint import CheckpointError, load_model, save_checkpoint, save_release
from tests.conftest import make_tiny_model
from tests.test_export_cli import one_line_error, run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny model as a training checkpoint and as a release."""
    folder = tmp_path_factory.mktemp("bad-input")
    model = make_tiny_model(seed=5)
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(model.cfg), "step": 1}, folder / "m.ckpt")
    save_release(folder / "m.safetensors", model)
    return folder / "m.ckpt", folder / "m.safetensors"


def _copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


# #5: OUTPUT is the --model file -----------------------------------------------------------------

@pytest.mark.parametrize("command, name", [("onnx", "victim.onnx"), ("torchscript", "victim.pt"),
                                           ("exported-program", "victim.pt2"), ("weights", "victim.safetensors")])
def test_output_that_is_the_model_file_is_refused_even_with_overwrite(files, tmp_path, command, name):
    ckpt, release = files
    victim = _copy(release if command == "weights" else ckpt, tmp_path / name)
    before = victim.read_bytes()
    verify = [] if command == "weights" else ["--no-verify"]
    (tmp_path / "sub").mkdir()
    for output in (victim, tmp_path / "sub" / ".." / name):  # the same file, spelled another way
        code, text = run(command, "--model", victim, "-o", output, "--overwrite", *verify)
        assert code == 1 and "is also an input of this command" in one_line_error(text), text
        assert victim.read_bytes() == before


def test_the_sweeps_case_torchscript_over_its_own_checkpoint(files, tmp_path):
    victim = _copy(files[0], tmp_path / "victim.ckpt")
    before = victim.read_bytes()
    code, text = run("torchscript", "--no-verify", "--model", victim, "-o", victim, "--overwrite")
    assert code == 1 and "victim.ckpt: is also an input" in one_line_error(text)
    assert victim.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["victim.ckpt"]


def test_a_soup_refuses_to_write_over_one_of_its_models(files, tmp_path):
    _, release = files
    other = _copy(release, tmp_path / "other.safetensors")
    code, text = run("weights", "--model", release, "--model", other, "-o", other, "--overwrite")
    assert code == 1 and "other.safetensors: is also an input" in one_line_error(text)


# #8: malformed releases and checkpoints -----------------------------------------------------------

def _bad_release(files, folder, **meta_changes):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    _, release = files
    with safe_open(str(release), framework="pt") as f:
        meta = dict(f.metadata())
    meta.update(meta_changes)
    meta = {k: v for k, v in meta.items() if v is not None}
    name = "_".join(k.split(".")[-1] for k in meta_changes)
    path = folder / f"bad_{name}.safetensors"
    save_file(load_file(str(release)), str(path), metadata=meta)
    return path


def _bad_checkpoint(files, folder, drop):
    state = torch.load(files[0], weights_only=True)
    del state[drop]
    path = folder / f"no_{drop}.ckpt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("make, says", [
    (lambda f, d: _bad_release(f, d, **{"restore.model_config": "{bad"}), "restore.model_config is not JSON"),
    (lambda f, d: _bad_release(f, d, **{"restore.model_config": None}), "no restore.model_config"),
    (lambda f, d: _bad_release(f, d, **{"restore.threshold": "nan"}), "restore.threshold is 'nan'"),
    (lambda f, d: _bad_release(f, d, **{"restore.threshold": "0.1x"}), "restore.threshold is '0.1x'"),
    (lambda f, d: _bad_release(f, d, **{"restore.threshold": "1.5"}), "not a number inside (0, 1)"),
    (lambda f, d: _bad_checkpoint(f, d, "model"), "bad checkpoint (no 'model' entry)"),
    (lambda f, d: _bad_checkpoint(f, d, "model_config"), "bad checkpoint (no 'model_config' entry)"),
])
def test_malformed_files_are_one_line_naming_the_file_in_every_command(files, tmp_path, make, says):
    bad = make(files, tmp_path)
    with pytest.raises(CheckpointError, match=f"^{bad}: .*" + says.replace("(", r"\(").replace(")", r"\)")):
        load_model(bad)  # what restore-validate and restore-train --init call
    for args in (["inspect", bad], ["torchscript", "--no-verify", "--model", bad, "-o", tmp_path / "x.pt"],
                 ["onnx", "--no-verify", "--model", bad, "-o", tmp_path / "x.onnx"]):
        code, text = run(*args)
        line = one_line_error(text)
        assert code == 1 and line.startswith(f"error: {bad}: ") and says in line, line
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.onnx").exists()


def test_a_checkpoint_with_a_nan_threshold_is_refused(files, tmp_path):
    state = torch.load(files[0], weights_only=True)
    state["threshold"] = float("nan")
    bad = tmp_path / "nan.ckpt"
    torch.save(state, bad)
    code, text = run("inspect", bad)
    assert code == 1 and "threshold is nan" in one_line_error(text)


# #16: what a file that is no checkpoint is --------------------------------------------------------

def test_files_that_are_not_checkpoints_are_named_for_what_they_are(files, tmp_path, tiny_onnx):
    from PIL import Image

    ckpt, release = files
    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    cases = {
        _copy(tmp_path / "x.png", tmp_path / "photo.ckpt"): "not a checkpoint: it is a PNG image",
        _copy(tiny_onnx, tmp_path / "graph.ckpt"): "not a checkpoint: it is an ONNX file",
        _copy(release, tmp_path / "release.ckpt"): "not a checkpoint: it is a safetensors file; name it .safetensors",
        tmp_path / "empty.ckpt": "empty file (0 bytes)",
        tmp_path / "empty.safetensors": "empty file (0 bytes)",
        tmp_path / "folder.ckpt": "is a folder",
    }
    for name, inside in (("script.ckpt", "m/code/__torch__/m.py"), ("program.ckpt", "archive/archive_format")):
        with zipfile.ZipFile(tmp_path / name, "w") as z:  # what torch writes for these, in outline
            z.writestr(inside, "x")
    cases[tmp_path / "script.ckpt"] = "not a checkpoint: it is a TorchScript module (.pt)"
    cases[tmp_path / "program.ckpt"] = "not a checkpoint: it is a torch.export program (.pt2)"
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "folder.ckpt").mkdir()
    for path, says in cases.items():
        for args in (["inspect", path], ["onnx", "--no-verify", "--model", path, "-o", tmp_path / "o.onnx"]):
            code, text = run(*args)
            line = one_line_error(text)
            assert code == 1 and says in line and str(path) in line and "Weights only" not in line, line
    for name, says in (("empty.onnx", "empty file (0 bytes)"), ("empty.pt2", "empty file (0 bytes)")):
        (tmp_path / name).write_bytes(b"")
        code, text = run("inspect", tmp_path / name)
        assert code == 1 and says in one_line_error(text)
    code, text = run("inspect", tmp_path)
    assert code == 1 and "is a folder" in one_line_error(text)
    assert not (tmp_path / "o.onnx").exists()


def test_an_unreadable_pt2_is_one_line_without_torch_s_logged_traceback(tmp_path):
    junk = tmp_path / "trunc.pt2"
    junk.write_bytes(b"PK\x03\x04 not really a zip archive")
    proc = subprocess.run([sys.executable, "-m", "export.cli", "inspect", str(junk)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {junk}: not a readable torch.export program (BadZipFile)", proc.stderr


# #17: non-finite float options ---------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--max-iou-drop", "--max-psnr-drop", "--max-whole-iou-drop",
                                    "--max-whole-psnr-drop"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_bounds_are_refused_before_any_export(files, tmp_path, monkeypatch, option, value):
    import export.cli as cli

    monkeypatch.setattr(cli, "_load_pipeline", lambda *a, **k: pytest.fail("loaded the model for a bad bound"))
    code, text = run("onnx", "--model", files[0], "-o", tmp_path / "q.onnx", "--precision", "int8", option, value)
    assert code == 2 and f"Invalid value for '{option}': {value} is not a finite number" in text, text
    assert list(tmp_path.iterdir()) == []


# #18: OUTPUT's suffix is the one the command writes ----------------------------------------------

@pytest.mark.parametrize("command, wrong, right", [("torchscript", "m.onnx", ".pt"), ("onnx", "m.pt", ".onnx"),
                                                   ("exported-program", "m.pt", ".pt2"),
                                                   ("weights", "m.bin", ".safetensors")])
def test_output_suffix_must_match_what_the_command_writes(files, tmp_path, command, wrong, right):
    code, text = run(command, "--model", files[0], "-o", tmp_path / wrong)
    line = one_line_error(text)
    assert code == 1 and f"--output {tmp_path / wrong}: " in line and f"give a name ending in {right}" in line
    assert list(tmp_path.iterdir()) == []


# #19: an ONNX file whose external data is missing ------------------------------------------------

def _graph_with_missing_data(tiny_onnx, tmp_path):
    """(tiny_onnx saved with one initializer's data in nothere.bin, which is not written; its bytes)."""
    import onnx
    from onnx import TensorProto

    proto = onnx.load(str(tiny_onnx))
    tensor = next(t for t in proto.graph.initializer if len(t.raw_data) >= 16)
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "nothere.bin"), ("offset", "0"), ("length", str(size))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    broken = tmp_path / "broken.onnx"
    onnx.save(proto, str(broken))
    return broken, size


def test_inspect_refuses_a_graph_whose_external_data_is_missing_or_short(tiny_onnx, tmp_path):
    broken, size = _graph_with_missing_data(tiny_onnx, tmp_path)
    code, text = run("inspect", broken)
    line = one_line_error(text)
    assert code == 1 and str(broken) in line and "nothere.bin, which is missing" in line, line
    (tmp_path / "nothere.bin").write_bytes(b"\0" * (size - 1))
    code, text = run("inspect", broken, "--json")
    assert code == 1 and f"holds {size - 1} bytes" in one_line_error(text)
    (tmp_path / "nothere.bin").write_bytes(b"\0" * size)
    code, text = run("inspect", broken, "--json")
    assert code == 0 and json.loads(text)["kind"] == "onnx"


def test_restore_run_refuses_a_graph_whose_external_data_is_missing(tiny_onnx, tmp_path):
    # the check lives in runtime.metadata, which every command reading a graph goes through
    from runtime.cli import main as run_cli

    broken, _size = _graph_with_missing_data(tiny_onnx, tmp_path)
    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), (90, 120, 150)).save(tmp_path / "in" / "a.png")
    result = CliRunner().invoke(run_cli, ["--model", str(broken), str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 1 and "nothere.bin, which is missing" in one_line_error(result.output), result.output
    assert not (tmp_path / "out").exists()
