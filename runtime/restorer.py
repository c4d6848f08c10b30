"""`Restorer`: the embedding API. One ONNX Runtime session, images in, restored images out.

    from runtime import Restorer
    r = Restorer()                                # the shipped default model; or Restorer("model.onnx")
    result = r.restore(Image.open("photo.png"))   # .image, .mask, .predicted, .masked_share
    r.restore_folder("photos/", "restored/", save_mask=True)

Torch-free: onnxruntime, numpy, pillow.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from runtime import mark_edits
from runtime.default_model import choose_model, shipped_weights
from runtime.fill import GROWN_SUBSAMPLING
from runtime.frame import BAND as FRAME_BAND
from runtime.frame import frame_masks, frame_region, nothing, photo_box
from runtime.frame_paint import EDGE as FRAME_EDGE
from runtime.frame_paint import paint_in_frame
from runtime.graphic import graphic_marks
from runtime.image_metadata import JPEG_FORMATS, JpegCoding, jpeg_coding
from runtime.image_pixels import finish, prepare, to_pil
from runtime.image_read import lossless_source
from runtime.images import chroma_subsampling
from runtime.jpeg_ringing import remove_ringing
from runtime.memory import ROOM_SHARE, GraphCost, MemoryPlan, plan_memory
from runtime.mirrored import not_found_mirrored
from runtime.pyramid import Added, add_coarse
from runtime.runner import Runner
from runtime.session import make_session, runs_on_cpu
from runtime.solid import beyond_paint
from runtime.split import SplitRunner
from runtime.surround import same_as_surroundings
from runtime.tiling import DEFAULT_TILE_BUDGET, largest_window, plan_tiles, receptive_radius, run_tiled, tile_size_for


@dataclass
class Restoration:
    """The result of restoring one image.

    `image` has the input's kind and mode (a Pillow image for a Pillow image, an array of the
    same dtype and shape for an array); `mask` is 0/255 (L image or (H, W) uint8 array);
    `predicted` is the raw RGB output of the image decoder (None where it was not asked for and
    not computed: see `Restorer.restore`).
    """

    image: Union[Image.Image, np.ndarray]
    mask: Union[Image.Image, np.ndarray]
    predicted: Union[Image.Image, np.ndarray, None]
    masked_share: float
    tiles: int = 0
    notes: List[str] = field(default_factory=list)  # why the image was left as it was, if it was


class Restorer:
    """Restores images with a `pixels` ONNX model through ONNX Runtime.

    Args:
        model_path: the ONNX file (from `restore-export onnx`); refused unless its `restore.`
            metadata is ours and of a known format version. None or `default`: the model
            shipped with the package (MODEL_CARD.md).
        device: 'auto', 'cpu' or 'cuda' (an error, never a silent CPU run, when CUDA is unusable).
        provider: 'cpu', 'cuda' or 'tensorrt' (defaults to the device's).
        threads: CPU intra-op threads (default: the CPUs this process may use).
        tile: None = automatic above `tile_budget` pixels, 0 = never, N = tiles of N (>= `tiling.least_tile`).
        tile_budget: the most input pixels of one graph call: larger images are tiled (tiles
            with their halo within it), and batches hold no more. Lowered when the memory limit
            needs it (`memory`, see runtime/memory.py).
        batch_size: how many same-size tiles run together (within `tile_budget` pixels).
        precision: 'auto' (for the shipped model on the CPU: its int8 graph when shipped and
            within the quality bounds, else fp32), 'fp32' or 'int8'; see `choose_model`.
        coarse: also run large images at smaller scales and add the large marks found there
            (runtime/pyramid.py); False: the full-size pass only.
        even_fill: average the fill inside each mark with a smooth fill (runtime/fill.py);
            False: the network's fill as it is.
        grow_subsampled: grow the mask of a file with subsampled chroma (a JPEG at 4:2:0 or 4:2:2,
            a lossy WebP) by a pixel before the compositing (`runtime.fill.GROWN_SUBSAMPLING`);
            False: the mask as found.
        paint_grow: grow each flat mark over the rest of its paint, the grown pixels taking the
            smooth fill, and unblend its rim (runtime/paint_grow.py); False: the marks as found.
        jpeg_ringing: in a colour JPEG, add to each mark the pixels around it that its paint moved
            in the file (the ring), with the paint's estimated effect taken out of them
            (runtime/jpeg_ringing.py); False (default): the marks as found.
        solid_check: in a lossless file, drop each mark with no solid colour, which is not paint,
            grow by a pixel each mark whose edge is not solid, which was resized after it was
            painted, and, where every paint edge is sharp, keep no more than a pixel past it
            (runtime/solid.py); in any other, drop each mark the colour of what lies around it
            (runtime/surround.py) and each small mark the graph does not find again in the
            picture mirrored (runtime/mirrored.py). None (default): for the shipped model's
            weights, whose damage is solid paint, and not for other models.
        graphic_check: leave a picture drawn rather than photographed (a chart, a screen, a
            page) as it is: around the marks, much of it flat colour or straight gradients and
            little texture, or most of it a few colours (runtime/graphic.py). None (default): as
            `solid_check`.
    """

    def __init__(self, model_path: Union[str, os.PathLike, bytes, None] = None, device: str = "auto",
                 provider: Optional[str] = None, threads: Optional[int] = None, tile: Optional[int] = None,
                 tile_budget: int = DEFAULT_TILE_BUDGET, batch_size: int = 1, precision: str = "auto",
                 coarse: bool = True, even_fill: bool = True, grow_subsampled: bool = True,
                 paint_grow: bool = True, jpeg_ringing: bool = False, solid_check: Optional[bool] = None,
                 graphic_check: Optional[bool] = None):
        self.model_path, self.model_choice = choose_model(model_path, precision, cpu=runs_on_cpu(device, provider))
        self.session, self.info = make_session(self.model_path, device=device, provider=provider, threads=threads)
        self.metadata = self.info.metadata
        self.precision = self.metadata.precision if self.metadata else "fp32"
        self.runner = self._runner()
        self.stride = self.metadata.stride
        # One pixel more than the network's reach: a grown mask reads its neighbours (`infer`).
        self.halo = receptive_radius(self.metadata.model_config, self.metadata.mask_opening) + 1
        self.tile = tile
        self.tile_budget = tile_budget
        self.batch_size = batch_size
        self.coarse = coarse
        self.even_fill = even_fill
        self.grow_subsampled = grow_subsampled
        self.paint_grow = paint_grow
        self.jpeg_ringing = jpeg_ringing
        shipped = self.metadata is not None and self.metadata.weights_sha256 == shipped_weights()
        self.solid_check = shipped if solid_check is None else solid_check
        self.graphic_check = shipped if graphic_check is None else graphic_check
        self.graph_cost = GraphCost.of(self.metadata, split=isinstance(self.runner, SplitRunner))
        self.memory = self.plan_memory()  # measured now: the process with its model loaded
        self._lock = threading.Lock()
        self.inference_seconds = 0.0  # accumulated time inside the session

    def _runner(self):
        """On the CPU the graph runs as two halves sharing one arena (runtime/split.py: the same
        outputs in half the memory); elsewhere, or for a graph that cannot be cut, whole."""
        if self.info.device == "cpu":
            split = SplitRunner.for_model(self.model_path, self.info.threads)
            if split is not None:
                return split
        return Runner(self.session, self.info)

    # -- the model on RGB arrays -------------------------------------------------------------

    def infer(self, batch: np.ndarray, predicted: bool = True,
              grow: Union[bool, Sequence[bool]] = False) -> List[Optional[np.ndarray]]:
        """Run one uint8 (N, H, W, 3) batch: [restored (N, H, W, 3), mask (N, H, W, 1), predicted].

        predicted=False lets the split runner run the image decoder only around masked pixels
        (`predicted` is then None; `restored` and `mask` are the same).
        grow: for the batch or per image, whether the mask is grown by a pixel (8-connected)
        before the compositing, the grown pixels taking the prediction (`grows`)."""
        grow = [grow] * len(batch) if isinstance(grow, bool) else list(grow)
        with self._timed():
            return self.runner.run(batch, predicted, grow)

    def masks(self, batch: np.ndarray) -> np.ndarray:
        """The graph's binarized mask (N, H, W) bool of one uint8 (N, H, W, 3) batch, no image
        restored (on the CPU the image decoder is not run)."""
        with self._timed():
            return self.runner.masks(batch)

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """The time inside the session added to `inference_seconds` (threads may run at once)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.inference_seconds += time.perf_counter() - start

    def plan_memory(self, limit: Optional[int] = None, tile_budget: Optional[int] = None,
                    share: float = ROOM_SHARE) -> MemoryPlan:
        """How a run with this model splits `limit` bytes (None: `share` of what the machine has
        free, at least the fixed default; runtime/memory.py) between the graph and the images."""
        return plan_memory(self.graph_cost, tile_budget or self.tile_budget, limit, share)

    def tile_for(self, height: int, width: int, tile: Optional[int] = None, window: Optional[int] = None) -> Optional[int]:
        """The tile size this image would be processed with, or None for one pass.

        `window`: the most input pixels of one call (default: this restorer's memory plan)."""
        window = window or self.memory.window_pixels
        return tile_size_for(height, width, self.tile if tile is None else tile, window, self.halo, self.stride)

    def call_pixels(self, height: int, width: int, tile_size: Optional[int]) -> int:
        """The most input pixels of one graph call for an image processed with `tile_size` (None: whole)."""
        if tile_size is None:
            return height * width
        return largest_window(height, width, tile_size, self.halo, self.stride)

    def grows(self, subsampling: Optional[int]) -> bool:
        """Whether an image of this chroma subsampling (Pillow's JPEG code, `images.chroma_subsampling`;
        None: no subsampling known) has its mask grown (`infer`)."""
        return self.grow_subsampled and subsampling in GROWN_SUBSAMPLING

    @staticmethod
    def exact(lossless: bool, jpeg: Optional[JpegCoding]) -> bool:
        """Whether a file holds its colours exactly at full resolution (`after_graph`'s `exact`):
        lossless, or a JPEG whose chroma is not subsampled (4:4:4)."""
        return lossless or (jpeg is not None and jpeg.subsampling not in GROWN_SUBSAMPLING)

    def restore_rgb(self, rgb: np.ndarray, tile: Optional[int] = None, predicted: bool = True,
                    grow: bool = False, jpeg: Optional[JpegCoding] = None, orientation: int = 1, exact: bool = True,
                    lossless: bool = False, notes: Optional[List[str]] = None) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], int]:
        """Restore one (H, W, 3) uint8 RGB array, tiled when large; `notes` as in `after_graph`.

        Returns:
            restored (H, W, 3), mask (H, W) uint8 0/255, predicted (H, W, 3) or None (see
            `infer`: predicted=False), number of tiles (0 = one pass).
        """
        return self.run_rgb(rgb, self.tile_for(rgb.shape[0], rgb.shape[1], tile), predicted=predicted, grow=grow,
                            jpeg=jpeg, orientation=orientation, exact=exact, lossless=lossless, notes=notes)

    def run_rgb(self, rgb: np.ndarray, tile_size: Optional[int], window: Optional[int] = None,
                predicted: bool = True, grow: bool = False, jpeg: Optional[JpegCoding] = None,
                orientation: int = 1, exact: bool = True, lossless: bool = False,
                notes: Optional[List[str]] = None) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], int]:
        """`restore_rgb` with the tiling decided by the caller (None: one pass); `window` as in
        `tile_for`; `grow` as in `infer`, for the full-size pass (not the smaller copies);
        `jpeg`, `orientation`, `exact`, `lossless` and `notes` as in `after_graph`."""
        restored, mask, raw, tiles = self._full_size(rgb, tile_size, window, predicted, grow)
        restored, mask = self.after_graph(rgb, restored, mask, window, jpeg, orientation, exact, lossless, notes)
        return restored, mask, raw, tiles

    def after_graph(self, rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray,
                    window: Optional[int] = None, jpeg: Optional[JpegCoding] = None,
                    orientation: int = 1, exact: bool = True, lossless: bool = False,
                    notes: Optional[List[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The steps around the graph, on a full-size pass's restored (H, W, 3) and mask (H, W) 0/255
        (the caller's to give: changed in place), in this order, each skipped when switched off:
        a graphic, not a photo, left as it came (runtime/graphic.py; why, in `notes`); in a
        `lossless` file the marks with no solid colour dropped (runtime/solid.py); what smaller
        copies of a large image find (runtime/pyramid.py); each flat mark grown over its paint
        (runtime/paint_grow.py); the marks that are photo dropped (lossless: what lies past a sharp
        paint's edge, runtime/solid.py; lossy: the colour of their surroundings, runtime/surround.py,
        or found in no mirrored view, runtime/mirrored.py); a frame's band and paint run into the
        frame (runtime/frame_paint.py); the fill evened out (runtime/fill.py, `exact` as in
        `Restorer.exact`; with each flat mark's blended rim, unblended: runtime/paint_grow.py); for
        a JPEG (`jpeg`, `orientation`: its EXIF turn) the ring its paint left (runtime/jpeg_ringing.py)."""
        # A photo's frame and the band inward of it: no mark there; and the frame with its first
        # pixels inward, which no mark's piece in the band may reach to go back to it (runtime/frame.py).
        frame, edge, border = frame_masks(rgb, (FRAME_BAND, FRAME_EDGE, 0))
        held = mark_edits.held_in_frame(restored, mask, frame)  # what the graph found there: a kept mark may take it back
        restored, mask = mark_edits.unframed(rgb, restored, mask, frame)
        if self.graphic_check and graphic_marks(rgb, mask, jpeg.qtables if jpeg else None, frame, notes):
            return rgb, np.zeros_like(mask)  # every mark dropped: the file comes back as it was
        # In a lossless file, the pixels around each mark whose edge was resampled (runtime/solid.py).
        resampled: Optional[np.ndarray] = None
        if self.solid_check and lossless:  # before the copies: a photo left with no mark is not run again
            restored, mask, resampled = mark_edits.judge_solid(rgb, restored, mask)
        coarse: List[Added] = []  # what the smaller copies added: the even fill reads less around it
        restored, mask = self._add_coarse(rgb, restored, mask, window, coarse)
        # A collage's gutters, once the check has read it whole: where marks are left.
        gutters = mark_edits.gutter_mask(rgb) if mask.any() or held is not None else nothing(frame.shape)
        if gutters.any():
            frame = frame | gutters
        restored, mask = mark_edits.unframed(rgb, restored, mask, frame)  # in the gutters, and what the copies found
        restored, mask, grown = self._grown_marks(rgb, restored, mask, resampled, frame, lossless)
        region = frame_region(rgb) if border.any() else None  # the frame's lines, whole, and its colour
        if region is not None:  # paint run into the frame: a band's piece it touches may go back to it
            found = mask > 0 if held is None else (mask > 0) | held[0]
            mask = np.where(paint_in_frame(rgb, *region, found), np.uint8(255), mask)
        restored, mask = mark_edits.rejoin_held(rgb, restored, mask, held, edge, gutters, border)
        restored = mark_edits.filled(rgb, restored, mask, grown, exact, coarse, border, region, self.even_fill,
                                     unblend=self.paint_grow, keep_out=frame)
        if self.jpeg_ringing and jpeg is not None:  # the ring the file's paint left, judged from the filled marks
            ring = remove_ringing(rgb, restored, mask, jpeg.qtables, jpeg.subsampling, orientation)
            if ring.any():
                mask = np.where(ring, np.uint8(255), mask)
        return restored, mask

    def _grown_marks(self, rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray, resampled: Optional[np.ndarray],
                     frame: np.ndarray, lossless: bool) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Each mark grown over its paint (`mark_edits.paint_around`), then, in a `lossless` file, what
        lies beyond each mark's paint dropped (runtime/solid.py), in any other the marks that are photo
        (`_photo_marks`): they are read grown, so that a mark found in part of its paint reads all
        of it. Returns restored, mask and the grown pixels left (None: none)."""
        found = mask > 0 if lossless else None  # what the graph found, before the grow
        grown = mark_edits.paint_around(rgb, mask, resampled, frame, self.paint_grow)
        if grown is not None:
            mask[grown] = 255  # in place, as `mark_edits.dropped`
        if self.solid_check and mask.any():
            drop = beyond_paint(rgb, mask, found) if lossless else self._photo_marks(rgb, mask)
            if drop.any():
                restored, mask = mark_edits.dropped(rgb, restored, mask, drop)
                grown = grown & ~drop if grown is not None else None
        return restored, mask, grown if grown is not None and grown.any() else None

    def _photo_marks(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(H, W) bool: the marks of a lossy file's `mask` that are photo, not paint: those the
        colour of their surroundings (runtime/surround.py), then those of the rest that no mirrored
        view finds again (runtime/mirrored.py)."""
        return not_found_mirrored(rgb, mask, self.masks, drop=same_as_surroundings(rgb, mask))

    def _add_coarse(self, rgb: np.ndarray, restored: np.ndarray, mask: np.ndarray,
                    window: Optional[int], added: Optional[List[Added]] = None) -> Tuple[np.ndarray, np.ndarray]:
        if not self.coarse:
            return restored, mask

        def run(small: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            h, w = small.shape[:2]
            return self._full_size(small, self.tile_for(h, w, None, window), window, predicted=False)[:2]

        return add_coarse(rgb, restored, mask, run, added)

    def _full_size(self, rgb: np.ndarray, tile_size: Optional[int], window: Optional[int],
                   predicted: bool, grow: bool = False) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], int]:
        """The model on the photo inside `rgb`'s frame (`graph_box`), in one pass or in tiles."""
        box = self.graph_box(rgb)
        photo = rgb if box is None else np.ascontiguousarray(rgb[box])
        if tile_size is None:
            restored, mask, raw = self.infer(photo[None], predicted, grow)
            return (*self.in_picture(rgb, box, restored[0], mask[0, ..., 0], None if raw is None else raw[0]), 0)
        h, w = photo.shape[:2]
        # As many same-size tiles together as the batch size allows within the call budget.
        batch = max(1, min(self.batch_size, (window or self.memory.window_pixels) // self.call_pixels(h, w, tile_size)))
        infer = functools.partial(self.infer, predicted=predicted, grow=grow)
        restored, mask, raw = run_tiled(infer, photo, tile_size, self.halo, self.stride, batch)
        return (*self.in_picture(rgb, box, restored, mask[..., 0], raw),
                len(plan_tiles(h, w, tile_size, self.halo, self.stride)))

    @staticmethod
    def graph_box(rgb: np.ndarray) -> Optional[Tuple[slice, slice]]:
        """The part of `rgb` (H, W, 3) the graph reads: the photo inside its frame
        (runtime/frame.py, `photo_box`), or None for all of it. A frame's straight edge against the
        photo, ringing in a JPEG, reads to the model as paint's edge: in a frame the graph marked
        the band along it, and its false marks there and its misses near it went with it."""
        return photo_box(rgb)

    @staticmethod
    def in_picture(rgb: np.ndarray, box: Optional[Tuple[slice, slice]], restored: np.ndarray, mask: np.ndarray,
                   raw: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """The graph's outputs on `rgb[box]` (restored (h, w, 3), mask (h, w), raw (h, w, 3) or None)
        at the picture's size (H, W): the frame as it is and unmarked; as they are where `box` is None."""
        if box is None:
            return restored, mask, raw
        out = rgb.copy()
        out[box] = restored
        full = np.zeros(rgb.shape[:2], mask.dtype)
        full[box] = mask
        if raw is not None:
            raw_full = rgb.copy()
            raw_full[box] = raw
            raw = raw_full
        return out, full, raw

    # -- images --------------------------------------------------------------------------------

    def restore(self, image: Union[Image.Image, np.ndarray], tile: Optional[int] = None,
                predicted: bool = True) -> Restoration:
        """Restore one image given as a Pillow image or a numpy array.

        Pillow images of any supported mode come back in their own mode (see `runtime.images`);
        arrays: (H, W) uint8 / uint16 / bool, (H, W, 2|3|4) uint8, returned with the same dtype
        and shape. EXIF orientation is not applied here: the pixels are taken as given.

        predicted=False: `.predicted` is None, and on the CPU the image decoder runs only around
        what was found (a clean photo restores in about 60 % of the time, a painted one in less
        the less of it was found).
        """
        as_array = isinstance(image, np.ndarray)
        pil = to_pil(image) if as_array else image
        prep = prepare(pil)
        fmt = None if as_array else getattr(image, "format", None)
        coding = jpeg_coding(image) if fmt in JPEG_FORMATS else None
        # Lossless only where the image says so (a WebP opened here may be lossy; an array may hold a
        # decoded JPEG, whose paint is not solid); exact unless it is a JPEG, a WebP or a lossy TIFF.
        lossless = not as_array and lossless_source(image)
        grow = self.grows(chroma_subsampling(fmt, lossless, coding and coding.subsampling))
        exact = self.exact(lossless or fmt not in (*JPEG_FORMATS, "WEBP", "TIFF"), coding)
        notes: List[str] = []
        restored, mask, raw, tiles = self.restore_rgb(prep.rgb, tile, predicted, grow, coding, exact=exact,
                                                      lossless=lossless, notes=notes)
        out = finish(prep, restored, mask > 0)
        share = float((mask > 0).mean())
        if as_array:
            arr = np.asarray(out)
            if image.dtype == bool:
                arr = arr.astype(bool)
            return Restoration(arr, mask, raw, share, tiles, notes)
        raw_image = None if raw is None else Image.fromarray(raw, "RGB")
        return Restoration(out, Image.fromarray(mask, "L"), raw_image, share, tiles, notes)

    def restore_folder(self, input_path: Union[str, os.PathLike], output_path: Union[str, os.PathLike], **options):
        """Restore a folder (recursively) or one image into `output_path`; see `runtime.batch.run_folder`.

        Keyword options are the fields of `runtime.batch.RunOptions` (batch_size, save_mask,
        save_predicted, overwrite, format, tile, max_pixels, report, progress, ...).

        Returns:
            `runtime.batch.RunResult` with the records, the summary and the report's path.
        """
        from runtime.batch import RunOptions, run_folder

        return run_folder(self, input_path, output_path, RunOptions(**options))
