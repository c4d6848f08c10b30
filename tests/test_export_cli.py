"""`restore-export`: each command end to end, and one clear line + exit 1 for each bad input."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import onnx
import pytest
import torch
from click.testing import CliRunner

from export.cli import main
from export.parity import FP16
from restore_core.checkpoint import save_checkpoint, save_release
from runtime.metadata import read_metadata
from tests.conftest import TINY
from tests.test_export_onnx import confident_tiny_model, one_thread  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The same confident tiny model as a training checkpoint and as a release."""
    folder = tmp_path_factory.mktemp("weights")
    model = confident_tiny_model(seed=3)
    save_checkpoint({"model": model.state_dict(), "model_config": asdict(model.cfg), "epoch": 2}, folder / "m.ckpt")
    save_release(folder / "m.safetensors", model)
    return folder / "m.ckpt", folder / "m.safetensors"


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_help_everywhere():
    for cmd in ([], ["onnx"], ["torchscript"], ["exported-program"], ["inspect"]):
        code, out = run(*cmd, "--help")
        assert code == 0 and "Usage:" in out


def test_onnx_fp16_from_checkpoint_verified_then_inspected(weights, tmp_path):
    ckpt, _ = weights
    out = tmp_path / "m16.onnx"
    code, text = run("onnx", "--model", ckpt, "--output", out, "--precision", "fp16", "--opset", 18)
    assert code == 0, text
    assert "parity: passed" in text and "allowed (fp16)" in text
    meta = read_metadata(out)
    assert meta.precision == "fp16" and meta.parity["passed"]
    worst = meta.parity["worst"]
    assert worst["max_level_diff"] <= FP16.max_level_diff and worst["mask_disagreement"] <= FP16.max_mask_disagreement
    assert worst["outside_mask_exact"] is True
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert [v.type.tensor_type.elem_type for v in proto.graph.input] == [onnx.TensorProto.UINT8]

    code, text = run("inspect", out)
    assert code == 0 and "precision: fp16" in text and "input  image" in text and "allowed (fp16)" in text
    code, text = run("inspect", out, "--json")
    assert code == 0 and json.loads(text)["metadata"]["signature"] == "pixels"

    # Refuses to overwrite; --overwrite replaces (here with the tensor signature, unverified).
    code, text = run("onnx", "--model", ckpt, "--output", out)
    assert code == 1 and "already exists; pass --overwrite" in one_line_error(text)
    code, text = run("onnx", "--model", ckpt, "--output", out, "--overwrite", "--signature", "tensor", "--no-verify")
    assert code == 0 and "parity: skipped" in text
    meta = read_metadata(out)
    assert meta.signature == "tensor" and meta.parity is None


def test_torchscript_and_exported_program_from_release(weights, tmp_path):
    _, release = weights
    code, text = run("torchscript", "--model", release, "--output", tmp_path / "m.pt")
    assert code == 0 and "parity: passed" in text, text
    code, text = run("exported-program", "--model", release, "--output", tmp_path / "m.pt2", "--no-verify")
    assert code == 0, text
    for name, kind in (("m.pt", "torchscript"), ("m.pt2", "exported-program")):
        code, text = run("inspect", tmp_path / name)
        assert code == 0 and f"artifact: {kind}" in text and "output mask" in text
    code, text = run("inspect", release)
    assert code == 0 and "release" in text and "parameters:" in text


@pytest.mark.parametrize("make, expect", [
    (lambda p: None, "no such checkpoint file"),
    (lambda p: p.write_text("hello"), "not a readable checkpoint"),
    (lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a restore checkpoint"),
])
def test_bad_checkpoints(tmp_path, make, expect):
    ckpt = tmp_path / "bad.ckpt"
    make(ckpt)
    code, text = run("onnx", "--model", ckpt, "--output", tmp_path / "m.onnx")
    assert code == 1 and expect in one_line_error(text) and str(ckpt) in text
    assert not (tmp_path / "m.onnx").exists()


def test_bad_outputs_and_opsets(weights, tmp_path):
    ckpt, _ = weights
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, text = run("onnx", "--model", ckpt, "--output", blocker / "m.onnx")
    assert code == 1 and "cannot write there" in one_line_error(text)
    code, text = run("torchscript", "--model", ckpt, "--output", tmp_path)
    assert code == 1 and "is a folder" in one_line_error(text)
    for opset in (17, 99):
        code, text = run("onnx", "--model", ckpt, "--output", tmp_path / "m.onnx", "--opset", opset)
        assert code == 1 and f"opset {opset} is not supported" in one_line_error(text)
    code, _ = run("onnx", "--model", ckpt, "--output", tmp_path / "m.onnx", "--signature", "nchw")
    assert code == 2  # usage error: click names the allowed choices
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_inspect_refuses_what_is_not_ours(tmp_path):
    from onnx import TensorProto, helper

    def graph(initializer=None):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        inits = [initializer] if initializer is not None else []
        nodes = [helper.make_node("Add", ["x", "w"] if inits else ["x", "x"], ["y"])]
        return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits))

    foreign = tmp_path / "foreign.onnx"
    onnx.save(graph(), str(foreign))
    code, text = run("inspect", foreign)
    assert code == 1 and "not a restore model" in one_line_error(text)

    # Ours by its metadata, but a weight points outside its folder: refused before reading it.
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("float_data")
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    model = graph(w)
    entry = model.metadata_props.add()
    entry.key, entry.value = "restore.format_version", "1"
    sneaky = tmp_path / "sneaky.onnx"
    sneaky.write_bytes(model.SerializeToString())
    code, text = run("inspect", sneaky)
    assert code == 1 and "outside the model's folder" in one_line_error(text)

    for name, expect in (("notes.txt", "not a restore artifact"), ("missing.onnx", "no such file")):
        if name.endswith(".txt"):
            (tmp_path / name).write_text("x")
        code, text = run("inspect", tmp_path / name)
        assert code == 1 and expect in one_line_error(text)


def test_weights_averages_several_checkpoints(weights, tmp_path):
    from safetensors import safe_open

    from restore_core.checkpoint import load_model, weights_sha256
    from tests.conftest import make_tiny_model

    ckpt, release = weights
    other = make_tiny_model(7, TINY)
    other_path = tmp_path / "other.safetensors"
    save_release(other_path, other)
    out = tmp_path / "soup.safetensors"
    code, text = run("weights", "--model", ckpt, "--model", other_path, "-o", out)
    assert code == 0 and "the mean of 2 models' weights" in text, text
    a, b = load_model(ckpt).model.state_dict(), other.state_dict()
    soup = load_model(out).model.state_dict()
    for key, value in soup.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (a[key] + b[key]) / 2, rtol=0, atol=1e-6)
        else:
            assert torch.equal(value, a[key])  # BatchNorm's batch counter: the first model's
    with safe_open(str(out), framework="pt") as f:
        sources = json.loads(f.metadata()["restore.averaged_from"])
    assert [s["file"] for s in sources] == ["m.ckpt", "other.safetensors"]
    assert sources[1]["weights_sha256"] == weights_sha256(other)
    code, text = run("inspect", out)
    assert code == 0 and "averaged_from: ['m.ckpt', 'other.safetensors']" in text, text

    wider = tmp_path / "wider.safetensors"
    save_release(wider, make_tiny_model(1, replace(TINY, base_channels=8)))
    out2 = tmp_path / "bad.safetensors"
    code, text = run("weights", "--model", release, "--model", wider, "-o", out2)
    assert code == 1 and not out2.exists()
    assert "wider.safetensors: its model config differs" in one_line_error(text)


def test_inspect_of_the_shipped_graphs_needs_no_torch():
    # As if torch were not installed (None in sys.modules: `import torch` fails and find_spec
    # says it is missing): reading a graph's contract, metadata and parity table must work in
    # the base install, where `restore-run` works.
    import subprocess
    import sys
    from pathlib import Path

    import runtime

    graphs = sorted((Path(runtime.__file__).parent / "assets").glob("*.onnx"))
    assert graphs, "no shipped graphs"
    for graph in graphs:
        meta = read_metadata(graph)
        proc = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; "
                               "sys.argv[0] = 'restore-export'; from export.cli import main; main()", "inspect",
                               str(graph)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"precision: {meta.precision}" in proc.stdout and "input  image" in proc.stdout
        if meta.parity:  # the parity table, drawn without the torch-based verifier
            assert "parity of onnxruntime" in proc.stdout and "allowed (fp32)" in proc.stdout, proc.stdout
