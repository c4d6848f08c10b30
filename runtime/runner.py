"""Runners: the pixels graph of one ONNX Runtime session on uint8 (N, H, W, 3) batches, numpy out.

`Runner` runs the whole graph (on CUDA with its input and outputs bound on the device);
`runtime.split.SplitRunner` runs it on the CPU as two halves sharing one arena. Both give the
same outputs, grow a subsampled file's mask the same way (`runtime.fill.grow_masks`), and read the
mask alone (`masks`) for the checks that look again (runtime/mirrored.py).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from runtime.fill import grow_masks
from runtime.metadata import PIXELS_OUTPUTS
from runtime.session import SessionInfo


def pixels_batch(images: np.ndarray) -> np.ndarray:
    """`images` as a contiguous uint8 (N, H, W, 3) batch, the pixels graph's input; else ValueError."""
    images = np.ascontiguousarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


class Runner:
    """Runs the pixels graph on uint8 (N, H, W, 3) batches and returns numpy outputs.

    On CUDA it uses IO binding: the input is copied to the GPU once, the outputs are allocated
    on the GPU by ORT and copied back once, with no intermediate host buffers per run.
    On the CPU a plain `session.run` already works in place on numpy memory.

    Args:
        session: from `make_session`.
        info: its SessionInfo.
        outputs: the output names to fetch (default: the pixels outputs, by name, when the graph
            has them; else all of the graph's).
    """

    def __init__(self, session, info: SessionInfo, outputs: Optional[Sequence[str]] = None):
        self.session = session
        self.info = info
        self.input_name = info.input_names[0]
        # By name, never by position: a graph that orders (or renames) its outputs differently
        # must not have its mask taken for the image.
        pixels = set(PIXELS_OUTPUTS) <= set(info.output_names)
        self.output_names = list(outputs or (PIXELS_OUTPUTS if pixels else info.output_names))
        opts = session.get_provider_options()
        first = opts.get(info.providers[0], {}) if info.providers else {}
        self.device_id = int(first.get("device_id", 0))

    def run(self, images: np.ndarray, predicted: bool = True, grow: Optional[Sequence[bool]] = None) -> List[np.ndarray]:
        """images: uint8 (N, H, W, 3) RGB. Returns the outputs in `self.output_names` order.

        `predicted` is for the interface `SplitRunner` shares: one session always runs the whole graph.
        grow: per image, whether its mask is grown by a pixel; the grown pixels take the graph's
        raw prediction, as the graph's own compositing would have given them."""
        named = dict(zip(self.output_names, self._run(images)))
        grown = grow_masks(named, grow, None)  # the graph composited with the mask as found
        if grown is not None:
            np.copyto(named["restored"], named["predicted"], where=grown)
        return [named[name] for name in self.output_names]

    def masks(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W) bool: the graph's binarized mask of uint8 (N, H, W, 3) `images` (as `SplitRunner.masks`).

        Only the mask is fetched: ONNX Runtime then skips what only the other outputs need (the
        compositing), and on CUDA copies one output back."""
        return self._run(images, ["mask"])[0][..., 0] > 0

    def _run(self, images: np.ndarray, names: Optional[Sequence[str]] = None) -> List[np.ndarray]:
        """The outputs `names` (default: `output_names`) of one call, as numpy arrays in that order."""
        images, names = pixels_batch(images), list(names or self.output_names)
        if self.info.device != "cuda":
            return self.session.run(names, {self.input_name: images})
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, images)  # one host-to-device copy
        for name in names:
            binding.bind_output(name, "cuda", self.device_id)  # ORT allocates on the GPU
        binding.synchronize_inputs()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return binding.copy_outputs_to_cpu()  # one device-to-host copy per output
