"""The memory a training run or a synthetic sample needs, estimated before anything is allocated,
and the one-line refusal of a config that could never fit.

A mistyped size (`--size 100000`, `data.size=100000`) or width must be said at once, not found
out by a swap storm minutes later. The estimate is a fit to measured peaks, with a margin; it
only has to tell the absurd from the ordinary, so it errs high and still passes the shipped
configs on a 24 GiB machine by far.

Measured on an AMD EPYC (2 cores, avx2; no avx512, no amx), torch 2.13 CPU, the whole process's
peak RSS (`ru_maxrss` of a child of a small parent: Linux counts the parent's size at the fork
in it) of `train()` run for two steps and one validation pass of `train.batch_size` crops, no DataLoader workers (fp32 unless said; width = model.base_channels,
depth 4, one block per stage unless said; MB = 10^6 bytes):

    size x batch  width      peak MB      size x batch  width          peak MB
    64 x 2        16          463         128 x 8       8               688
    128 x 2       16          560         128 x 8       24             1273
    256 x 2       16          984         128 x 8       32             1544
    128 x 8       16         1003         128 x 8       64             2260
    256 x 8       16         2276         128 x 8       16, depth 3     972
    256 x 4       32         2293         128 x 8       16, 2 blocks   1184
    128 x 4       16 bf16     726         256 x 4       16 bf16        1219

Least squares over the fp32 rows: 438 MB + 498 B per crop pixel + 95 B per channel-pixel +
28 B per parameter (channel-pixels: `channel_pixels`), every row from 0.7 GB up within 9 % of it
(the two smallest runs lie below it). bf16
autocast on this CPU saves little (BatchNorm and the casts stay fp32: 1219 MB against about
1400 in fp32; 726, 861, 1296 MB at 128 x 4 w16, 128 x 8 w16, 128 x 8 w32), so both are costed
alike. Each DataLoader worker (forked: its pages shared until written) held 12 MB of its own at
128 x 8, 21 MB at 256 x 8 (Private_* of smaps_rollup, two workers). `restore-data synth --count 1`:
296 MB at 64 and 256 px, 333 at 1024, 477 at 2048, 1055 at 4096: 46 B per pixel above the process.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, astuple, replace
from typing import Optional, Tuple

from restore_core.config import Config, ConfigError
from restore_core.model import ModelConfig

# The fit above, rounded up; the variable part is then taken MARGIN times.
PROCESS_BYTES = 500_000_000  # torch, the source photos and the data loaded, before the first step
PIXEL_BYTES = 500  # per crop pixel whatever the width: inputs, targets, loss, validation's outputs
CHANNEL_PIXEL_BYTES = 100  # per channel-pixel: activations kept for backward and their gradients
PARAMETER_BYTES = 32  # weights, gradients, AdamW's two moments, and the checkpoint's copy
SYNTH_PROCESS_BYTES = 300_000_000  # restore-data synth before the first sample
SYNTH_PIXEL_BYTES = 46  # one sample: the photo crop scaled, the corruption, the three PNGs' buffers
SAMPLE_BYTES = 7  # a sample in a batch: corrupted and clean RGB, the mask, uint8
WORKER_BYTES = 20_000_000  # a worker's own pages besides its samples: 10 MB measured, a long run touches more
PREFETCH = 2  # batches each DataLoader worker holds ready (torch's default)
MARGIN = 1.5


def channel_pixels(model: ModelConfig) -> float:
    """Channels a crop pixel carries through the network: each stage's width at its resolution
    (a quarter of the pixels a stage down), times (1 + blocks) / 2 for the blocks per stage
    (a second block measured 18 % more than one; counted 50 %)."""
    spread = sum(w / 4**i for i, w in enumerate(model.widths()))
    return spread * (1 + model.blocks_per_stage) / 2


def parameters(model: ModelConfig) -> int:
    """The network's parameters, counted on the meta device: no memory, however wide."""
    return _parameters(astuple(model))


@functools.lru_cache(maxsize=16)
def _parameters(fields: tuple) -> int:
    import torch

    from restore_core.model import DualDecoderUNet, count_parameters

    with torch.device("meta"):  # building the network takes a tenth of a second: done once per config
        return count_parameters(DualDecoderUNet(ModelConfig(*fields)))


def step_bytes(cfg: Config, on_gpu: bool = False) -> int:
    """Peak bytes of a training run's step and its validation pass: the fit's variable part times
    MARGIN, with the process and its DataLoader workers unless `on_gpu` (then the GPU's tensors
    only, at the fp32 figures: bf16 or fp16 there would need less).

    The validation pass is counted as `train.batch_size` crops of `data.size`, as synthetic data
    has it; a dataset root's validation images go whole, at sizes known only once the dataset is
    read, and are not counted here."""
    pixels = cfg.train.batch_size * cfg.data.size**2
    grown = pixels * (PIXEL_BYTES + CHANNEL_PIXEL_BYTES * channel_pixels(cfg.model))
    grown += PARAMETER_BYTES * parameters(cfg.model)
    if on_gpu:
        return int(MARGIN * grown)
    return int(PROCESS_BYTES + MARGIN * (grown + cfg.data.num_workers * _worker_bytes(cfg)))


def _worker_bytes(cfg: Config) -> int:
    """What one DataLoader worker adds: a sample synthesized (painted larger when the save chain
    resizes it afterwards) and the batches it holds ready. Without workers the main process
    synthesizes, within the fit."""
    side = cfg.data.size
    if cfg.data.degraded and cfg.degrade.resize:
        side = side / min(cfg.degrade.scale)
    batches = PREFETCH * cfg.train.batch_size * SAMPLE_BYTES * cfg.data.size**2
    return int(WORKER_BYTES + SYNTH_PIXEL_BYTES * side**2 + batches)


def synth_bytes(size: int) -> int:
    """Peak bytes of `restore-data synth` drawing samples of `size` x `size` (one at a time)."""
    return int(SYNTH_PROCESS_BYTES + MARGIN * SYNTH_PIXEL_BYTES * size**2)


def room(device: str = "cpu") -> Tuple[Optional[int], str]:
    """(bytes the run may use, where that figure comes from); None when nothing says.

    On CUDA the GPU's free memory (the step's tensors live there): that branch is not measured,
    it takes the CPU's per-pixel figures without the process (no GPU was at hand to fit one)."""
    if _on_cuda(device):
        import torch

        try:
            free, _total = torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", 0)))
            return free, "the GPU's free memory"
        except (RuntimeError, AssertionError):  # a GPU that does not work: resolve_device says why, later
            return None, ""
    from restore_toolkit.room import machine_room

    return machine_room()


def _on_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def shown(n: float) -> str:
    """Bytes as a person reads them: 1.2 TB, 20.1 GB, 460 MB (decimal units)."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n / 1e6:,.0f} MB"


# The settings a step's memory grows with, and what a message suggests lowering for each.
_KNOBS = {"data.size": "data.size or train.batch_size", "train.batch_size": "train.batch_size or data.size",
          "model.base_channels": "model.base_channels or model.max_channels",
          "model.max_channels": "model.max_channels or model.base_channels",
          "model.blocks_per_stage": "model.blocks_per_stage", "data.num_workers": "data.num_workers"}


def _culprit(cfg: Config, need: int, on_gpu: bool) -> str:
    """The setting whose built-in value would save the most: the one to name."""
    default = Config()
    saved = {}
    for key in _KNOBS:
        section, name = key.split(".")
        ours, theirs = getattr(cfg, section), getattr(default, section)
        if getattr(ours, name) > getattr(theirs, name):
            lowered = replace(cfg, **{section: replace(ours, **{name: getattr(theirs, name)})})
            saved[key] = need - step_bytes(lowered, on_gpu)
    return max(saved, key=saved.get) if saved else "data.size"


def check_training(cfg: Config) -> None:
    """Refuse, before the model and data are built, a config whose training step could never fit.

    Raises:
        ConfigError: one line naming the setting, the estimate and the room.
    """
    on_gpu = _on_cuda(cfg.train.device)
    free, what = room(cfg.train.device)
    if free is None:
        return
    need = step_bytes(cfg, on_gpu)
    if need <= free:
        return
    key = _culprit(cfg, need, on_gpu)
    section, name = key.split(".")
    value = asdict(getattr(cfg, section))[name]
    raise ConfigError(f"{key}={value}: one training step needs about {shown(need)}, this process may use "
                      f"{shown(free)} ({what}); lower {_KNOBS[key]}")


def check_synth(size: int) -> None:
    """Refuse, before any sample is drawn, a `restore-data synth --size` whose one sample could never fit.

    Raises:
        ConfigError: one line naming --size, the estimate and the room.
    """
    free, what = room()
    need = synth_bytes(size)
    if free is not None and need > free:
        raise ConfigError(f"--size {size}: one sample needs about {shown(need)}, this process may use "
                          f"{shown(free)} ({what}); lower --size")
