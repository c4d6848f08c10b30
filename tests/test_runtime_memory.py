"""Memory stays bounded: headers before reads, a gate for images in flight, graph calls bounded by pixels.

The figures (peak memory and MP/s against megapixels for the default model) are in
benchmarks/results/memory-cpu.md; these tests check the mechanisms on the tiny model.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

from export.parity import FP32, pixel_parity, violations
from runtime import batch, memory
from runtime import image_read as rr
from runtime import images as ri
from runtime.batch import RunOptions, run_folder
from runtime.images import Header
from runtime.memory import (
    DEFAULT_RUN_MEMORY,
    IMAGE_BYTES_PER_PIXEL,
    JPEG_BYTES_PER_PIXEL,
    JPEG_WRITE_BYTES_PER_PIXEL,
    MB,
    PREDICTED_BYTES_PER_PIXEL,
    TURNED_WRITE_BYTES_PER_PIXEL,
    WEBP_BYTES_PER_PIXEL,
    WIDE_BYTES_PER_PIXEL,
    GraphCost,
    MemoryGate,
    MemoryPlan,
    in_flight_bytes,
)
from runtime.restorer import Restorer
from runtime.tiling import largest_window, plan_tiles, tile_size_for, window_core, window_side

RNG = np.random.default_rng(23)
ROOT = Path(__file__).resolve().parent.parent


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bomb(path: Path, width: int, height: int) -> None:
    """A grey PNG of width x height whose rows are all zero: a few kB that decode to width * height bytes."""
    raw = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def restorer(tiny_onnx):
    return Restorer(tiny_onnx, device="cpu")


# ---------------------------------------------------------------------------------------------
# Reading: the header first, never the whole file.


def test_devices_fifos_and_sparse_files_cost_nothing(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.png")
    with open(tmp_path / "sparse.png", "wb") as f:  # a valid header, then 6 GiB of holes
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 8, 2, 0, 0, 0)))
        f.truncate(6 << 30)
    with open(tmp_path / "tag.tif", "wb") as f:  # one TIFF tag claiming 1 GiB of values
        f.write(b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 273, 4, 1 << 28, 100))
        f.truncate(2 << 30)
    reasons = {"zero.png": "a character device, not a regular file: not opened", "fifo.png": "a FIFO, not a regular file: not opened",
               "sparse.png": "a PNG file whose header cannot be read", "tag.tif": "header claims more than 64 MiB"}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for name, reason in reasons.items():
        with pytest.raises(ri.ImageError, match=reason):
            rr.read_image(tmp_path / name)
    assert time.perf_counter() - start < 10  # nothing waited on the FIFO or read the holes
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # kB: no large read


def test_admit_sees_the_header_size_before_any_decoding(tmp_path):
    png_bomb(tmp_path / "bomb.png", 5000, 4000)
    seen = []

    def admit(header):
        seen.append(header)
        raise ri.ImageError("no room")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ri.ImageError, match="no room"):
        rr.read_image(tmp_path / "bomb.png", admit=admit)
    size = (tmp_path / "bomb.png").stat().st_size
    assert seen == [Header(5000, 4000, "L", "PNG", held=0, file_bytes=size)]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10 * 1024  # 20 MB were never decoded


def test_webp_is_checked_before_pillow_reads_it_whole(tmp_path):
    Image.fromarray(RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "a.webp", lossless=True)
    seen = []
    img, info = rr.read_image(tmp_path / "a.webp", admit=seen.append)
    size = (tmp_path / "a.webp").stat().st_size
    assert seen == [Header(40, 30, "RGBA", "WEBP", held=size, file_bytes=size)] and img.size == (40, 30) and info.lossless


def _header(path, write_format=None) -> Header:
    seen = []
    rr.read_image(path, write_format=write_format, admit=seen.append, allow_lossy=True)
    return seen[0]


def test_the_header_says_what_the_image_will_hold(tmp_path):
    rgb = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for sampling, per_pixel in ((0, 3.0), (1, 2.0), (2, 1.5)):  # 4:4:4, 4:2:2, 4:2:0
        Image.fromarray(rgb).save(tmp_path / f"s{sampling}.jpg", quality=90, subsampling=sampling)
        assert _header(tmp_path / f"s{sampling}.jpg").coefficients == per_pixel
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.jpg")
    assert _header(tmp_path / "grey.jpg").coefficients == 1.0 and _header(tmp_path / "grey.jpg").mode == "L"
    assert _header(tmp_path / "s0.jpg", "PNG").coefficients == 0  # written as PNG: no blocks kept
    assert not _header(tmp_path / "s2.jpg").turned
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright
    Image.fromarray(rgb).save(tmp_path / "turned.jpg", quality=90, exif=exif.tobytes())
    assert _header(tmp_path / "turned.jpg").turned and _header(tmp_path / "turned.jpg").width == 64  # as coded
    assert not _header(tmp_path / "turned.jpg", "PNG").turned  # no block write to turn back for
    deep = (RNG.integers(0, 65536, (48, 64 * 3))).astype(np.uint16)
    with open(tmp_path / "deep.png", "wb") as f:
        png.Writer(64, 48, greyscale=False, bitdepth=16).write(f, deep)
    assert _header(tmp_path / "deep.png").mode == "RGB;16"
    assert _header(tmp_path / "deep.png", "JPEG").mode == "RGB"  # written as 8 bits: the 8-bit view only
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(tmp_path / "a.png")
    assert _header(tmp_path / "a.png").mode == "RGBA"


def test_in_flight_bytes_follow_what_the_image_holds():
    px = 4000 * 3000
    rgb, grey = Header(4000, 3000, "RGB"), Header(4000, 3000, "L")
    assert in_flight_bytes(rgb) == in_flight_bytes(grey) == px * IMAGE_BYTES_PER_PIXEL
    assert in_flight_bytes(Header(4000, 3000, "RGBA")) == in_flight_bytes(Header(4000, 3000, "RGB;16")) \
        == px * WIDE_BYTES_PER_PIXEL["RGBA"] > in_flight_bytes(rgb)
    assert in_flight_bytes(Header(4000, 3000, "RGBA;16")) > in_flight_bytes(Header(4000, 3000, "RGBA"))
    # A JPEG written block by block: its coefficients (held twice) and its file (three times) at the end.
    j444 = Header(4000, 3000, "RGB", file_bytes=6_000_000, coefficients=3.0)
    assert in_flight_bytes(j444) == px * (JPEG_WRITE_BYTES_PER_PIXEL + 2 * 2 * 3) + 3 * 6_000_000 > in_flight_bytes(rgb)
    j420 = Header(4000, 3000, "RGB", file_bytes=1_000_000, coefficients=1.5)
    assert in_flight_bytes(j420) == px * (JPEG_WRITE_BYTES_PER_PIXEL + 2 * 2 * 1.5) + 3 * 1_000_000 < in_flight_bytes(rgb)
    # Its steps before the write hold less than other 8-bit kinds' (decoded to RGB at once) ...
    small_write = Header(4000, 3000, "RGB", file_bytes=1, coefficients=0.01)
    assert in_flight_bytes(small_write) == px * JPEG_BYTES_PER_PIXEL < in_flight_bytes(rgb)
    # ... but not a grey JPEG's (its L pixels and their RGB view).
    assert in_flight_bytes(Header(4000, 3000, "L", file_bytes=1, coefficients=0.01)) == in_flight_bytes(grey)
    # Turned by EXIF, its write holds its pixels and masks turned back too.
    turned = Header(4000, 3000, "RGB", file_bytes=1_000_000, coefficients=1.5, turned=True)
    assert in_flight_bytes(turned) == in_flight_bytes(j420) + px * TURNED_WRITE_BYTES_PER_PIXEL
    assert in_flight_bytes(Header(40, 30, "RGBA", held=5000)) == 40 * 30 * WIDE_BYTES_PER_PIXEL["RGBA"] + 5000
    assert in_flight_bytes(rgb, predicted=True) == px * (IMAGE_BYTES_PER_PIXEL + PREDICTED_BYTES_PER_PIXEL)
    webp = Header(40, 30, "RGBA", "WEBP", held=5000, file_bytes=5000)  # its encoder's buffers, and its file while decoded
    assert in_flight_bytes(webp) == 40 * 30 * WEBP_BYTES_PER_PIXEL + 5000


def test_the_refusal_names_the_largest_image_of_its_kind():
    plan = _plan(100)
    gate = MemoryGate(plan)
    with pytest.raises(ri.ImageError) as rgb:
        gate.admit(0, Header(4000, 3000, "RGB"), lambda window: window)
    with pytest.raises(ri.ImageError) as rgba:
        gate.admit(1, Header(4000, 3000, "RGBA"), lambda window: window)
    largest = [float(str(e.value).rsplit("up to about ", 1)[1].split(" Mpx")[0]) for e in (rgb, rgba)]
    assert largest[0] > largest[1] > 0
    assert largest[0] == pytest.approx(largest[1] * WIDE_BYTES_PER_PIXEL["RGBA"] / IMAGE_BYTES_PER_PIXEL, rel=0.05)


# ---------------------------------------------------------------------------------------------
# The gate.


RGB_1MP = Header(1000, 1000, "RGB")


def _plan(capacity_mb: float, graph_bpp: int = 100, fastest: int = 1 << 20) -> MemoryPlan:
    return MemoryPlan(limit=int(capacity_mb * MB) + 50 * MB, why="a test limit", base=50 * MB,
                      graph=GraphCost(graph_bpp), fastest_window=fastest)


def test_gate_refuses_what_never_fits_and_names_size_and_limit():
    plan = _plan(100)
    gate = MemoryGate(plan)
    side = int((100 * MB / IMAGE_BYTES_PER_PIXEL) ** 0.5) + 10
    with pytest.raises(ri.ImageError) as e:
        gate.admit(0, Header(side, side, "RGB"), lambda window: window)
    text = str(e.value)
    assert f"{side}x{side} = {side * side:,} pixels needs about" in text and "a test limit allows 100 MB" in text
    r = gate.admit(1, RGB_1MP, lambda window: window)  # the refused ticket gave up its turn
    assert r.image_bytes == 1000 * 1000 * IMAGE_BYTES_PER_PIXEL
    assert r.window == plan.window_for(r.image_bytes) and r.graph_bytes == 100 * r.window
    assert gate.used == r.image_bytes + r.graph_bytes <= plan.capacity


def test_the_gates_verdict_alone_takes_no_room_and_never_waits():
    plan = _plan(100)
    gate = MemoryGate(plan)
    side = int((100 * MB / IMAGE_BYTES_PER_PIXEL) ** 0.5) + 10
    held = gate.admit(0, RGB_1MP, lambda window: window)  # ticket 1's turn is next; nothing may pass it
    assert gate.refusal(RGB_1MP, lambda window: window) is None  # would fit alone
    why = gate.refusal(Header(side, side, "RGB"), lambda window: window)
    assert why.startswith("needs about ") and "a test limit allows 100 MB" in why
    assert gate.used == held.image_bytes + held.graph_bytes  # asked twice, nothing taken
    gate.release(held)
    assert gate.used == 0


# ---------------------------------------------------------------------------------------------
# The default budget: half of what the machine can still give, at least DEFAULT_RUN_MEMORY.


def _room(monkeypatch, mb, what="the machine's available memory"):
    monkeypatch.setattr(memory, "machine_room", lambda: (None if mb is None else mb * MB, what))


def test_the_default_budget_is_half_the_free_memory_and_never_under_the_floor(monkeypatch):
    cost = GraphCost(300)
    monkeypatch.setattr(memory, "process_rss", lambda: 100 * MB)
    _room(monkeypatch, 22_000)  # a 24 GB machine: a 200 Mpx JPEG (4.3 GB at full speed) fits
    plan = memory.plan_memory(cost, 1 << 20)
    assert plan.base == 100 * MB and plan.capacity == 11_000 * MB
    assert plan.why == "the default of 11,000 MB per run (50% of the 22,000 MB free, --max-memory sets another)"
    _room(monkeypatch, 2_000)  # half of it is under the floor: the floor
    plan = memory.plan_memory(cost, 1 << 20)
    assert plan.capacity == DEFAULT_RUN_MEMORY
    assert plan.why == "the default of 1,200 MB per run (--max-memory sets another)"
    _room(monkeypatch, 1_000, "the cgroup's memory.max")  # the floor is more than is free: 90 % of what is
    plan = memory.plan_memory(cost, 1 << 20)
    assert plan.capacity == 900 * MB and plan.why == "the cgroup's memory.max (1,000 MB free)"
    _room(monkeypatch, None)  # nothing says: the floor
    assert memory.plan_memory(cost, 1 << 20).capacity == DEFAULT_RUN_MEMORY
    _room(monkeypatch, 22_000)  # --max-memory: the figure named, lowered only to what the machine has
    assert memory.plan_memory(cost, 1 << 20, 500 * MB).capacity == 500 * MB
    assert memory.plan_memory(cost, 1 << 20, 30_000 * MB).capacity == int(22_000 * MB * 0.9)


def test_the_arena_region_stays_at_the_floor_or_what_the_machine_has(monkeypatch):
    # The graph's calls stop at the fastest size: a larger default budget buys the arena nothing.
    _room(monkeypatch, 64_000)
    assert memory.arena_region() == DEFAULT_RUN_MEMORY
    _room(monkeypatch, None)
    assert memory.arena_region() == DEFAULT_RUN_MEMORY
    _room(monkeypatch, 1_000, "the address-space limit (ulimit -v)")
    assert memory.arena_region() == 900 * MB


def test_a_phones_200_mpx_photo_passes_the_default_pixel_limit(restorer, tmp_path):
    # 16320 x 12240, the largest phone sensors' photo: not refused as a bomb; only the memory
    # named here is too little for it, and the line says what it needs.
    src = tmp_path / "in"
    src.mkdir()
    png_bomb(src / "phone200.png", 16320, 12240)
    rec = run_folder(restorer, src, tmp_path / "out", RunOptions(max_memory=20 * MB, progress=False)).records[0]
    assert rec.status == "failed"
    assert rec.error.startswith("16320x12240 = 199,756,800 pixels needs about "), rec.error
    assert "--max-pixels" not in rec.error and "--max-memory 20 MB allows" in rec.error


def test_over_max_pixels_and_the_budget_says_both(restorer, tmp_path):
    # A photo over --max-pixels that the memory budget could not hold either: one line says both,
    # so one more command (with both flags) restores it.
    src = tmp_path / "in"
    src.mkdir()
    png_bomb(src / "big.png", 2000, 1500)
    Image.fromarray(RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(src / "good.png")
    over = run_folder(restorer, src, tmp_path / "o1", RunOptions(max_pixels=1_000_000, max_memory=20 * MB, progress=False))
    rec = {r.input: r for r in over.records}
    assert rec["big.png"].status == "failed" and rec["good.png"].status == "ok", rec["good.png"].error
    error = rec["big.png"].error
    assert error.startswith("2000x1500 = 3,000,000 pixels exceeds the limit of 1,000,000 (--max-pixels), and needs about ")
    assert "MB at full speed); --max-memory 20 MB allows" in error
    # The small photo beside it ran in one call, though the budget cannot hold a call of the
    # smallest size worth tiling with: it needs none.
    roomy = run_folder(restorer, src, tmp_path / "o2", RunOptions(max_pixels=1_000_000, progress=False))
    error = {r.input: r for r in roomy.records}["big.png"].error
    assert error == "2000x1500 = 3,000,000 pixels exceeds the limit of 1,000,000 (--max-pixels)"  # memory: no word
    both = run_folder(restorer, src, tmp_path / "o3", RunOptions(max_pixels=4_000_000, progress=False))
    assert all(r.status == "ok" for r in both.records), [r.error for r in both.records]


def test_gate_admits_in_order_and_only_when_there_is_room():
    per = IMAGE_BYTES_PER_PIXEL  # MB for each 1 Mpx RGB image
    plan = _plan(3.5 * per + 10, fastest=100_000)  # graph: 10 MB held once; room for three images, not four
    gate = MemoryGate(plan)
    order = []
    held = [gate.admit(t, RGB_1MP, lambda w: w) for t in range(3)]
    assert gate.used == 3 * per * MB + 10 * MB

    def later(ticket):
        order.append(("admitted", ticket, gate.admit(ticket, RGB_1MP, lambda w: w)))

    threads = [threading.Thread(target=later, args=(t,)) for t in (4, 3)]  # 4 asks first; 3 goes first
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert order == []  # no room for a fourth image
    gate.release(held[0])
    time.sleep(0.2)
    assert [o[1] for o in order] == [3]  # in ticket order, and only one fits
    gate.release(held[1])
    for t in threads:
        t.join(5)
    assert [o[1] for o in order] == [3, 4] and gate.used <= plan.capacity


def test_gate_close_wakes_waiting_readers():
    gate = MemoryGate(_plan(40))  # one 1 Mpx image (18 MB) and the graph fit, two do not
    gate.admit(0, RGB_1MP, lambda w: w)
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(ri.ImageError, gate.admit, 1, RGB_1MP, lambda w: w)))
    t.start()
    time.sleep(0.1)
    gate.close()
    t.join(5)
    assert not t.is_alive() and "the run stopped" in str(errors[0].value)


# ---------------------------------------------------------------------------------------------
# Graph calls bounded by pixels: tiles and batches.


def window_pixels(tiles):
    """(the largest window's pixels, all windows' pixels) of a tiling."""
    areas = [(t.y1 - t.y0) * (t.x1 - t.x0) for t in tiles]
    return max(areas), sum(areas)


def test_window_core_fits_its_window():
    for budget in (3_000, 65_536, 1_000_000, 1_761_000):
        for halo, stride in ((29, 4), (137, 16)):
            core = window_core(budget, halo, stride)
            assert core % stride == 0
            assert window_side(core, halo, stride) ** 2 <= budget or core == stride
            assert window_side(core + stride, halo, stride) ** 2 > budget
            # The automatic tile is at least the square one, and its windows fit the budget too.
            tile = tile_size_for(4000, 3000, None, budget, halo, stride)
            largest, _ = window_pixels(plan_tiles(4000, 3000, tile, halo, stride))
            assert tile >= core and (largest <= budget or tile == core)


def test_automatic_tiles_compute_the_fewest_pixels_within_the_budget():
    halo, stride, budget = 137, 16, 2_500_000
    # A 12 Mpx photo: 3x3 tiles of 1344 (windows up to 2.13 Mpx) instead of 4x3 square tiles of
    # 1264, the largest square window that fits; 6 % fewer pixels computed.
    square = window_core(budget, halo, stride)
    tile = tile_size_for(3000, 4000, None, budget, halo, stride)
    assert (square, tile) == (1264, 1344)
    chosen, squared = (window_pixels(plan_tiles(3000, 4000, t, halo, stride)) for t in (tile, square))
    assert len(plan_tiles(3000, 4000, tile, halo, stride)) == 9 and len(plan_tiles(3000, 4000, square, halo, stride)) == 12
    assert chosen[0] <= budget and chosen[1] < 0.95 * squared[1]
    # Equal cores: no sliver of a tile at the far edge paying a whole halo.
    widths = [t.cx1 - t.cx0 for t in plan_tiles(3000, 4000, 1264, halo, stride) if t.cy0 == 0]
    assert widths == [1008, 1008, 1008, 976]
    # A strip one pixel high is tiled along its length only, in two calls.
    assert tile_size_for(1, 100_000, None, 65_536, halo, stride) == 50_000
    for shape, t in (((3000, 4000), 1264), ((9459, 9459), 16), ((1, 100_000), 50_000), ((37, 53), 8)):
        assert largest_window(*shape, t, halo, stride) == window_pixels(plan_tiles(*shape, t, halo, stride))[0]


def test_batches_are_sized_by_pixels(restorer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.fromarray(RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(src / f"p{i}.png")
    calls = []
    real = restorer.infer

    def infer(batch, **kwargs):
        calls.append(batch.shape)
        return real(batch, **kwargs)

    restorer.infer = infer
    try:
        result = run_folder(restorer, src, tmp_path / "out",
                            RunOptions(batch_size=4, tile_budget=2 * 64 * 80 + 100, progress=False))
    finally:
        del restorer.infer
    assert result.summary.ok == 4
    assert sorted(calls) == [(2, 64, 80, 3), (2, 64, 80, 3)]  # four fit the batch size, two fit the pixels


def test_default_tiling_equals_untiled(restorer):
    rgb = RNG.integers(0, 256, (150, 170, 3), dtype=np.uint8)
    window = 120 * 120  # a tile of 48 and its halo; the image is larger, so it is tiled
    size = restorer.tile_for(150, 170, None, window)
    assert size >= window_core(window, restorer.halo, restorer.stride)
    assert restorer.call_pixels(150, 170, size) <= window
    tiled = restorer.run_rgb(rgb, size, window)
    whole = restorer.restore_rgb(rgb, tile=0)
    assert tiled[3] > 1 and whole[3] == 0
    figures = pixel_parity(rgb[None], [whole[0][None], whole[1][None, ..., None], whole[2][None]],
                           [tiled[0][None], tiled[1][None, ..., None], tiled[2][None]])
    assert violations(figures, FP32) == [], figures


def test_tile_zero_on_an_image_whose_graph_call_cannot_fit_is_refused(restorer, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(RNG.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(src / "a.png")
    assert restorer.graph_cost.bytes(300 * 400) > 40 * MB  # the tiny graph, run whole
    limit = 30 * MB  # what the run may add
    result = run_folder(restorer, src, tmp_path / "out", RunOptions(tile=0, max_memory=limit, progress=False))
    rec = result.records[0]
    assert rec.status == "failed" and "400x300 = 120,000 pixels needs about" in rec.error, rec.error
    tiled = run_folder(restorer, src, tmp_path / "out2", RunOptions(tile_budget=10_000, max_memory=limit, progress=False))
    assert tiled.records[0].status == "ok" and tiled.records[0].tiles > 1, tiled.records[0].error


# ---------------------------------------------------------------------------------------------
# A bomb under a real memory cap: one line, no MemoryError.


def test_small_file_huge_image_under_a_memory_cap(tiny_onnx, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    png_bomb(src / "bomb.png", 4000, 3000)  # 12 Mpx from about 12 kB
    assert (src / "bomb.png").stat().st_size < 100_000
    Image.fromarray(RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(src / "good.png")
    probe = subprocess.run([sys.executable, "-c", "import runtime.cli, onnxruntime, numpy, PIL.Image;"
                            "print(open('/proc/self/statm').read().split()[0])"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    vm = int(probe.stdout.split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = vm + 600 * MB  # address space: the session and threads take some; the bomb needs over 300 MB more

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    run = subprocess.run([sys.executable, "-m", "runtime.cli", "--model", str(tiny_onnx), str(src), str(out),
                          "--device", "cpu", "--quiet", "--threads", "1"], capture_output=True, text=True,
                         preexec_fn=limit, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    text = run.stdout + run.stderr
    assert run.returncode == 3, text
    assert "MemoryError" not in text and "Traceback" not in text and "out of memory" not in text, text
    failed = [line for line in text.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "bomb.png: 4000x3000 = 12,000,000 pixels needs about" in failed[0], text
    assert "address-space limit" in failed[0], text
    assert "1 restored" in text and (out / "good.png").is_file()


def test_small_images_still_batch_and_read_ahead(restorer, tmp_path):
    # Each small image is charged the batch call it may join, not the whole window: they are
    # admitted together and run in full batches.
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(RNG.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(src / f"s{i}.png")
    calls = []
    real = restorer.infer

    def infer(batch, **kwargs):
        calls.append(batch.shape[0])
        return real(batch, **kwargs)

    restorer.infer = infer
    try:
        result = run_folder(restorer, src, tmp_path / "out", RunOptions(batch_size=3, progress=False))
    finally:
        del restorer.infer
    assert result.summary.ok == 6 and calls == [3, 3]


def test_images_waiting_for_partners_give_way_to_a_reader_waiting_for_memory(restorer, tmp_path):
    # Room for two 64x80 images beside the batch call, batches of four: the third image's reader
    # waits for memory the two waiting in their bucket hold; the run must run them, not wait on itself.
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        Image.fromarray(RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(src / f"w{i}.png")
    px = 64 * 80
    graph = restorer.graph_cost.bytes(4 * px)
    room = graph + 2 * px * IMAGE_BYTES_PER_PIXEL + px * IMAGE_BYTES_PER_PIXEL // 2
    calls, done = [], {}
    real = restorer.infer

    def infer(batch, **kwargs):
        calls.append(batch.shape[0])
        return real(batch, **kwargs)

    restorer.infer = infer
    opts = RunOptions(batch_size=4, tile_budget=4 * px, max_memory=room, progress=False)
    runner = threading.Thread(target=lambda: done.setdefault("r", run_folder(restorer, src, tmp_path / "out", opts)),
                              daemon=True)  # a run that waits on itself must not keep pytest alive
    try:
        runner.start()
        runner.join(60)
    finally:
        del restorer.infer
    assert not runner.is_alive(), "the run waits on itself"
    assert done["r"].summary.ok == 5 and max(calls) <= 2 and sum(calls) == 5, calls


def test_a_folder_of_mixed_sizes_stays_within_the_run_budget(tmp_path):
    # Every new image size asks ONNX Runtime's arena for blocks of new sizes; over a folder of
    # mixed sizes the shipped int8 graph (run as two halves, runtime/split.py) must still stay
    # within what the run may add to its process. (With an arena that grows by exactly what is
    # asked this folder peaked at 860 MB against a limit of 714.)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(7)
    photo = np.asarray(Image.open(ROOT / "runtime" / "assets" / "samples" / "chelsea.jpg").convert("RGB"))
    for i in range(8):
        megapixels, aspect = rng.uniform(0.3, 3.0), rng.uniform(0.5, 2.0)
        w = int((megapixels * 1e6 * aspect) ** 0.5)
        Image.fromarray(photo).resize((w, int(megapixels * 1e6 / w))).save(src / f"p{i}.jpg", quality=90)
    budget = 600 * MB
    script = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024); sys.exit(r.returncode)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = subprocess.run([sys.executable, "-c", script, sys.executable, "-c",
                           "from runtime import Restorer; Restorer(device='cpu')"],
                          capture_output=True, text=True, env=env, check=True)
    run = subprocess.run([sys.executable, "-c", script, sys.executable, "-m", "runtime.cli", str(src), str(out),
                          "--device", "cpu", "--quiet", "--max-memory", str(budget // MB)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    loaded, peak = int(base.stdout.split()[-1]), int(run.stdout.split()[-1])
    assert peak <= loaded + budget, (loaded / MB, peak / MB)


def test_an_image_the_budget_squeezes_is_named_slow_with_the_budget_that_frees_it(restorer, tmp_path, monkeypatch):
    # The tiny graph's halo is 30 pixels, so its tiles never cost as much as the real one's (144):
    # the threshold is lowered to what its squeezed tiling reaches (1.6 times the pixels).
    monkeypatch.setattr(batch, "SQUEEZED", 1.5)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(RNG.integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(src / "a.png")
    image = 600 * 800 * IMAGE_BYTES_PER_PIXEL
    fastest = 1000 * 1000  # one call would take the whole image
    # Room for calls of 300² beside the image: many tiles, each mostly halo.
    squeezed = image + restorer.graph_cost.bytes(300 * 300)
    opts = dict(tile_budget=fastest, progress=False)
    got = run_folder(restorer, src, tmp_path / "o1", RunOptions(max_memory=squeezed, **opts))
    rec = got.records[0]
    assert rec.status == "ok" and rec.tiles > 1 and rec.slow, rec
    assert rec.slow.startswith("the memory budget left calls of 0.09 Mpx beside it: "), rec.slow
    computed = len(plan_tiles(600, 800, restorer.tile_for(600, 800, None, 300 * 300), restorer.halo,
                              restorer.stride)) * largest_window(600, 800, restorer.tile_for(600, 800, None, 300 * 300),
                                                                 restorer.halo, restorer.stride)
    assert f"{computed / (600 * 800):.1f} times its pixels computed, against 1.0 in calls of 1.0 Mpx" in rec.slow
    assert any(line.startswith("SLOW a.png: the memory budget") for line in got.lines), got.lines
    need = int(rec.slow.rsplit("--max-memory ", 1)[1].rstrip(")"))
    assert need * MB >= image + restorer.graph_cost.bytes(fastest) and need % 100 == 0
    # That budget runs it in one call, and nothing is named slow; neither is an image a budget cannot squeeze.
    freed = run_folder(restorer, src, tmp_path / "o2", RunOptions(max_memory=need * MB, **opts)).records[0]
    assert freed.status == "ok" and freed.tiles == 0 and freed.slow is None
    asked = run_folder(restorer, src, tmp_path / "o3", RunOptions(max_memory=squeezed, tile=128, **opts)).records[0]
    assert asked.status == "ok" and asked.slow is None  # --tile: the user chose the tiles
