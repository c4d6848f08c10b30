"""Running the pixels graph on the CPU as two halves, the second only where it is needed.

ONNX Runtime's CPU working set for the whole graph is about the sum of what its two decoders
need, not the larger of them: on the shipped int8 graph, 660 bytes per input pixel for the whole
graph against 175 for the graph cut down to either decoder (docs/restoring.md, "Memory"). Cut
in two, the same nodes run as two sessions, one after the other:

    first:  image                     -> mask + the tensors the second half reads
    second: image, those tensors      -> restored, predicted

The first half is everything the mask needs (the encoder and the mask decoder); the second is
the rest (the image decoder and the compositing). Where the second half reads a dequantized
(float) tensor of the first, it is handed the quantized (uint8) tensor instead and dequantizes it
itself, so what crosses is the int8 graph's own uint8 activations, a few bytes per pixel. Both
sessions draw on one arena registered with ONNX Runtime's environment, so the second reuses the
blocks the first has freed. The nodes, their order and their arithmetic are the graph's own: the
outputs are bit-identical to one session's (tests/test_runtime_split.py).

The mask comes first because the compositing takes the input pixel wherever the mask is 0: in a
call whose mask is empty (a clean photo, a tile the paint does not reach) `restored` is the input
itself, and the image decoder, about 40 % of the graph's time, need not run at all unless its raw
output (`predicted`) was asked for. Where the mask is not empty, the decoder runs only on crops
around the masked pixels, each grown by the decoder's own receptive radius (runtime/regions.py),
so the restored pixels are still bit-identical to a pass over the whole call.

Torch-free: onnx, onnxruntime and numpy.
"""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from runtime.fill import grow_masks
from runtime.memory import arena_region
from runtime.metadata import PIXELS_OUTPUTS, ModelFileError, ModelMetadata
from runtime.regions import DecoderCrops
from runtime.runner import pixels_batch
from runtime.session import session_options
from runtime.tiling import decoder_radius

# What may cross between the halves: 8-bit activations, the binarized mask and shape integers.
_SMALL_TYPES = {2, 3, 7, 9}  # onnx.TensorProto UINT8, INT8, INT64, BOOL
_ARENA_LOCK = threading.Lock()
_ARENA_REGISTERED = False


def split_pixels_graph(model) -> Optional[Tuple[object, object, List[str]]]:
    """Cut a pixels graph (onnx.ModelProto) into (first, second, carried tensor names), or None.

    None when the graph does not have the pixels signature (input `image`; outputs restored,
    mask, predicted) or when nothing is left for a second half.
    """
    import onnx
    import onnx.utils

    graph = model.graph
    inputs = [i.name for i in graph.input]
    if inputs != ["image"] or not set(PIXELS_OUTPUTS) <= {o.name for o in graph.output}:
        return None
    producer = {out: node for node in graph.node for out in node.output}
    first_nodes = _ancestors(producer, ["mask"])
    second = [n for n in graph.node if id(n) not in first_nodes]
    if not second:
        return None
    carried_list = _carried(graph, producer, first_nodes, second)
    # The extractor needs every cut tensor's type and shape: infer them once.
    typed = onnx.shape_inference.infer_shapes(model)
    # Float activations crossing (an fp32 graph) would cost more than the split saves: the
    # shipped fp32 graph took 2,190 bytes per pixel split against 1,220 whole.
    if not _all_small(typed, carried_list):
        return None
    first = onnx.utils.Extractor(typed).extract_model(["image"], ["mask"] + [c for c in carried_list if c != "mask"])
    second_model = onnx.utils.Extractor(typed).extract_model(["image"] + carried_list, ["restored", "predicted"])
    for part in (first, second_model):
        part.ir_version = model.ir_version
        del part.metadata_props[:]
        part.metadata_props.extend(model.metadata_props)
    return first, second_model, carried_list


def _all_small(typed, names: List[str]) -> bool:
    """Whether every tensor in `names` is 8-bit (a bool, a shape integer) in the shape-inferred model."""
    values = list(typed.graph.value_info) + list(typed.graph.output)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    return all(types.get(name) in _SMALL_TYPES for name in names)


def _carried(graph, producer: Dict[str, object], first_nodes: Set[int], second: List[object]) -> List[str]:
    """The tensors of the first half that the second half reads (but `image`), sorted."""
    constants = {t.name for t in graph.initializer}
    carried: Set[str] = set()
    for node in second:
        for name in node.input:
            src = producer.get(name)
            if not name or name in constants or src is None or id(src) not in first_nodes:
                continue
            # Hand over the uint8 tensor a DequantizeLinear reads, not its float output: the
            # second half dequantizes it again (the same node), and a quarter of the bytes cross.
            if src.op_type == "DequantizeLinear" and src.input[0] in producer:
                name = src.input[0]
            # The image's own shape the second half reads again from its own `image` (one cheap
            # node), so that it describes what that half is given: a crop (runtime/regions.py).
            if src.op_type == "Shape" and list(src.input) == ["image"]:
                continue
            carried.add(name)
    return sorted(carried - {"image"})


def _ancestors(producer: Dict[str, object], outputs: List[str]) -> Set[int]:
    """ids of the nodes that `outputs` depend on."""
    seen: Set[int] = set()
    stack = list(outputs)
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input)
    return seen


def shared_cpu_arena(first_region: int) -> None:
    """Register one CPU arena with ONNX Runtime's environment (once per process).

    Sessions made with `session.use_env_allocators` draw on it. Its first region is
    `first_region` bytes of address space (`memory.arena_region`: what a run may add), of which
    only the pages the graph touches become resident; every call, whatever its size, then takes
    its blocks from that one region, and the arena grows (in blocks of powers of two) only for a
    call that does not fit in it. Measured by the resident growth of one call through both
    halves (AMD EPYC, 0.26 to 4.1 Mpx): 236-283 bytes per input pixel, flat in size, against
    290-500 when the arena grew from nothing in powers of two (the largest block and the sum of
    the smaller ones left both resident). Blocks of exactly the size asked were worse still over
    a folder of mixed sizes (24 JPEGs of 0.3 to 6 Mpx: a peak of 1.74 GB against 1.17 GB)."""
    global _ARENA_REGISTERED
    import onnxruntime as ort

    with _ARENA_LOCK:
        if _ARENA_REGISTERED:
            return
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        cfg = {"arena_extend_strategy": 0, "initial_chunk_size_bytes": int(first_region)}  # 0: kNextPowerOfTwo
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(cfg))
        _ARENA_REGISTERED = True


class SplitRunner:
    """Runs a pixels graph as its two halves on the CPU; the same interface and outputs as `Runner`.

    Args:
        first, second: onnxruntime sessions of the halves from `split_pixels_graph`.
    """

    def __init__(self, first, second, crops: Optional[DecoderCrops] = None):
        self.first = first
        self.second = second
        self.crops = crops
        self.first_outputs = [o.name for o in first.get_outputs()]
        self.second_inputs = [i.name for i in second.get_inputs()]

    @classmethod
    def for_model(cls, model, threads: int) -> Optional["SplitRunner"]:
        """The split runner for an ONNX file (path or bytes) already checked by `make_session`,
        on `threads` CPU threads; None when the graph cannot be split to advantage."""
        import onnx
        import onnxruntime as ort

        loaded = onnx.load_from_string(bytes(model)) if isinstance(model, (bytes, bytearray)) else onnx.load(str(model))
        try:
            parts = split_pixels_graph(loaded)
        except (ValueError, KeyError, onnx.shape_inference.InferenceError):
            # A graph the extractor cannot cut, or halves over protobuf's 2 GB: run it whole.
            return None
        if parts is None:
            return None
        shared_cpu_arena(arena_region())
        sessions = []
        # The first half's threads sleep when it ends instead of spinning, so they do not take
        # the cores from the second half that starts right after; the second spins as usual.
        # Median wall time per megapixel against the whole graph, 512² / 1024² calls (AMD EPYC,
        # 2 cores, one process): +3 % / +7 %; with both spinning +54 % / +17 %.
        for part, spin in ((parts[0], "0"), (parts[1], "1")):
            opts = session_options(threads)
            opts.add_session_config_entry("session.use_env_allocators", "1")
            opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
            sessions.append(ort.InferenceSession(part.SerializeToString(), sess_options=opts,
                                                 providers=["CPUExecutionProvider"]))
        return cls(sessions[0], sessions[1], _decoder_crops(loaded, parts[1], parts[2]))

    def run(self, images: np.ndarray, predicted: bool = True,
            grow: Optional[Sequence[bool]] = None) -> List[Optional[np.ndarray]]:
        """images: uint8 (N, H, W, 3) RGB. Returns [restored, mask, predicted].

        predicted=False: `predicted` is None, and the second half runs only on crops around the
        masked pixels (not at all where the batch's mask is empty: `restored` is then the input,
        what the graph's compositing gives there). `restored` and `mask` are the same either way.
        grow: per image, whether its mask is grown by a pixel (`grow_masks`) before the compositing.
        """
        images = pixels_batch(images)
        tensors = dict(zip(self.first_outputs, self.first.run(self.first_outputs, {"image": images})))
        if not predicted and not tensors["mask"].any():
            return [images.copy(), tensors["mask"], None]
        grown = grow_masks(tensors, grow, None if self.crops is None else self.crops.condition)
        tensors["image"] = images
        if predicted or self.crops is None:
            restored, raw = self.second.run(["restored", "predicted"], {name: tensors[name] for name in self.second_inputs})
            if grown is not None and self.crops is None:  # the graph composited with the mask as found
                np.copyto(restored, raw, where=grown)
            return [restored, tensors["mask"], raw]
        return [self._restore_where_masked(images, tensors), tensors["mask"], None]

    def masks(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) bool: the graph's binarized mask of uint8 (N, H, W, 3) `images`, from the
        first half alone (the image decoder is not run)."""
        return self.first.run(["mask"], {"image": pixels_batch(images)})[0][..., 0] > 0

    def _restore_where_masked(self, images: np.ndarray, tensors: Dict[str, np.ndarray]) -> np.ndarray:
        """`restored` from the second half run only on crops around each image's masked pixels
        (runtime/regions.py); images whose mask is spread too wide for crops to pay run whole."""
        crops = self.crops
        n, h, w = images.shape[:3]
        restored = images.copy()  # the compositing's value wherever the mask is 0
        whole = []
        for j in range(n):
            if not tensors[crops.condition][j].any():
                continue  # nothing found in this image: `restored` is already its input
            boxes = crops.boxes(tensors[crops.condition][j])
            plans = [(box, crops.feeds(tensors, self.second_inputs, j, box, h, w)) for box in boxes]
            if not plans or any(feeds is None for _, feeds in plans):
                whole.append(j)
                continue
            for box, feeds in plans:
                crops.paste(restored, self.second.run(["restored"], feeds)[0], j, box, h, w)
        if whole:
            feeds = {name: tensors[name][whole] for name in self.second_inputs}
            restored[whole] = self.second.run(["restored"], feeds)[0]
        return restored


def _decoder_crops(model, second, carried: List[str]) -> Optional[DecoderCrops]:
    """How the second half may run on crops, from the graph's metadata and the second half's
    nodes; None when the graph does not say enough (its second half then always runs whole)."""
    try:
        meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    except ModelFileError:
        return None
    composite = [n for n in second.graph.node if n.op_type == "Where" and "restored" in n.output]
    if len(composite) != 1 or composite[0].input[0] not in carried:
        return None
    upsamples = sum(n.op_type == "Resize" for n in second.graph.node)
    radius = decoder_radius(meta.model_config, upsamples)
    return DecoderCrops(composite[0].input[0], meta.stride, -(-radius // meta.stride))
