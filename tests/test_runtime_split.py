"""The int8 graph run as two halves on one arena: the same bytes out, half the working set."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from restore_core.heldout import heldout_photos
from runtime.default_model import SHIPPED_INT8, SHIPPED_ONNX
from runtime.memory import GRAPH_BYTES_PER_PIXEL, GraphCost
from runtime.session import Runner, make_session
from runtime.split import SplitRunner, split_pixels_graph


@pytest.fixture(scope="module")
def whole_and_split():
    session, info = make_session(SHIPPED_INT8, device="cpu")
    split = SplitRunner.for_model(SHIPPED_INT8, threads=info.threads)
    assert split is not None
    return Runner(session, info), split


def _photo_crop(h: int, w: int) -> np.ndarray:
    photo = next(iter(heldout_photos("selection").values()))
    return np.ascontiguousarray(photo[:h, :w])[None]


def test_halves_hold_every_node_once_and_carry_only_8_bit_tensors():
    whole = onnx.load(str(SHIPPED_INT8))
    first, second, carried = split_pixels_graph(whole)
    outputs_of = lambda m: {o for n in m.graph.node for o in n.output}  # noqa: E731
    # Each node of the graph runs in one half; only the cheap DequantizeLinear of a carried
    # uint8 tensor runs again in the second.
    repeated = outputs_of(first) & outputs_of(second)
    ops = {n.output[0]: n.op_type for n in second.graph.node}
    assert repeated and {ops[name] for name in repeated} == {"DequantizeLinear"}
    assert len(outputs_of(first) | outputs_of(second)) == len(outputs_of(whole))
    assert [i.name for i in first.graph.input] == ["image"]
    assert [o.name for o in second.graph.output] == ["restored", "mask"]
    assert "predicted" in carried and any(name.endswith("QuantizeLinear_Output") for name in carried)
    # The halves keep the graph's contract metadata.
    assert {p.key for p in first.metadata_props} == {p.key for p in whole.metadata_props}


def test_graphs_that_would_not_gain_are_run_whole():
    # The fp32 graph: float activations would cross, costing more than the split saves.
    assert split_pixels_graph(onnx.load(str(SHIPPED_ONNX))) is None
    # Not the pixels signature at all.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    assert split_pixels_graph(helper.make_model(graph)) is None


@pytest.mark.parametrize("shape", [(1, 160, 224), (2, 67, 93)])
def test_split_outputs_are_bit_identical_to_the_whole_graph(whole_and_split, shape):
    whole, split = whole_and_split
    n, h, w = shape
    rng = np.random.default_rng(n * h)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    images[0, 10:40, 20:70] = (250, 20, 200)  # a painted block, so the mask is not empty
    for got, want in zip(split.run(images), whole.run(images)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)


def test_split_is_bit_identical_on_a_painted_photo(whole_and_split):
    whole, split = whole_and_split
    image = _photo_crop(201, 299).copy()
    image[0, 60:120, 80:200] = (255, 255, 255)
    restored, mask, predicted = split.run(image)
    assert mask.max() == 255  # the model found the block: both decoders' paths were exercised
    for got, want in zip((restored, mask, predicted), whole.run(image)):
        assert np.array_equal(got, want)


def test_restorer_runs_the_int8_graph_split_on_the_cpu_and_costs_it_so():
    from runtime import Restorer

    restorer = Restorer(device="cpu")
    assert isinstance(restorer.runner, SplitRunner)
    assert restorer.graph_cost == GraphCost(GRAPH_BYTES_PER_PIXEL["int8-split"])
    fp32 = Restorer(device="cpu", precision="fp32")
    assert isinstance(fp32.runner, Runner)
    assert fp32.graph_cost == GraphCost(GRAPH_BYTES_PER_PIXEL["fp32"])


def test_a_graph_that_cannot_be_cut_runs_whole(monkeypatch):
    from runtime import Restorer, split

    def refuse(model):
        raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB")

    monkeypatch.setattr(split, "split_pixels_graph", refuse)
    restorer = Restorer(device="cpu")
    assert isinstance(restorer.runner, Runner)
    assert restorer.graph_cost == GraphCost(GRAPH_BYTES_PER_PIXEL["int8"])
    image = _photo_crop(64, 80)
    assert restorer.infer(image)[0].shape == image.shape


_PEAK = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from runtime.default_model import SHIPPED_INT8
    from runtime.session import Runner, make_session
    from runtime.split import SplitRunner
    session, info = make_session(SHIPPED_INT8, device="cpu", threads=1)
    runner = SplitRunner.for_model(SHIPPED_INT8, 1) if sys.argv[1] == "split" else Runner(session, info)
    side = 768
    image = np.random.default_rng(0).integers(0, 256, (1, side, side, 3), dtype=np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    runner.run(image)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps((after - before) / side / side))
""")


def test_split_working_set_is_within_its_stated_cost_and_well_under_the_whole():
    peak = {}
    for mode in ("whole", "split"):
        out = subprocess.run([sys.executable, "-c", _PEAK, mode], capture_output=True, text=True, check=True)
        peak[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    # Measured (AMD EPYC): 650 bytes per pixel whole, 330 split.
    assert peak["split"] <= GRAPH_BYTES_PER_PIXEL["int8-split"], peak
    assert peak["split"] <= 0.7 * peak["whole"], peak
