"""What `restore-run` promises under bad input and faults, as one table.

Each row of MATRIX is a case a hostile user tried: what INPUT holds (and the model, options and
faults), the exit code, a fragment the console must print, and which files must (and must not)
be under OUTPUT afterwards. Exit codes: 0 ok, 1 could not start (one line why), 3 finished with
some images failed or refused. docs/restoring.md lists the same promises in words.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np
import onnx
import png
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper
from PIL import Image

import runtime.batch as rb
import runtime.job_io as rj
import runtime.report as rr
from runtime.cli import main

RNG = np.random.default_rng(12)
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Inputs: each builder writes files into INPUT.


def _rgb(h=20, w=24):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def save_png16(path: Path, array: np.ndarray) -> None:
    """A 16-bit PNG through pypng, for what Pillow cannot write: (H, W, C), C = 2 (LA), 3 (RGB), 4 (RGBA)."""
    h, w, c = array.shape
    with open(path, "wb") as f:
        png.Writer(w, h, greyscale=c == 2, alpha=c in (2, 4), bitdepth=16).write_array(f, array.astype(np.uint16).reshape(-1))


def read_png16(path: Path) -> Tuple[np.ndarray, dict]:
    """(values (H, W, C) uint16, pypng's description) of a PNG read back with pypng."""
    w, h, pixels, meta = png.Reader(filename=str(path)).read_flat()
    return np.asarray(pixels, dtype=np.uint16).reshape(h, w, meta["planes"]), meta


def one_png(name="a.png"):
    return lambda d: Image.fromarray(_rgb()).save(d / name)


def two_pngs(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    Image.fromarray(_rgb()).save(d / "b.png")


def rgb16(d):
    save_png16(d / "rgb16.png", RNG.integers(0, 65536, (12, 16, 3)))


def rgba16(d):
    save_png16(d / "rgba16.png", RNG.integers(0, 65536, (12, 16, 4)))


def la16(d):
    save_png16(d / "la16.png", RNG.integers(0, 65536, (12, 16, 2)))


def grey16(d):
    Image.fromarray(RNG.integers(0, 65536, (12, 16)).astype(np.uint16)).save(d / "grey16.png")


def pages(d):
    first, *rest = [Image.fromarray(_rgb(16, 16)) for _ in range(3)]
    first.save(d / "pages.tif", save_all=True, append_images=rest)


def apng(d):
    first, *rest = [Image.fromarray(_rgb(16, 16)) for _ in range(4)]
    first.save(d / "anim.png", save_all=True, append_images=rest, duration=100)


def animated_gif(d):
    first, *rest = [Image.fromarray(_rgb(16, 16)).convert("P") for _ in range(3)]
    first.save(d / "anim.gif", save_all=True, append_images=rest, duration=100)


def empty_gif(d):
    (d / "empty.gif").write_bytes(b"")


def still_gif(d):
    Image.fromarray(_rgb(16, 16)).convert("P").save(d / "still.gif")


def bomb_header(d):
    # A PNG header claiming 20000 x 20000 pixels and no image data.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    (d / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b""))


def over_pillow_limit(d):
    # 9500 x 9500 grey: above Pillow's own warning limit, below our --max-pixels; data truncated.
    ihdr = struct.pack(">IIBBBBB", 9500, 9500, 8, 0, 0, 0, 0)
    (d / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 100)))


def bad_files(d):
    Image.fromarray(_rgb()).save(d / "good.png")
    (d / "empty.png").write_bytes(b"")
    (d / "fake.jpg").write_text("not an image")
    full = (d / "good.png").read_bytes()
    (d / "trunc.png").write_bytes(full[: len(full) // 2])


def odd_names(d):
    for name in ("with space.png", "ünï €.png", "new\nline.png"):
        Image.fromarray(_rgb(9, 7)).save(d / name)


def broken_odd_name(d):
    (d / "bad\nname.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")


def modes(d):
    Image.fromarray(_rgb()).convert("P").save(d / "p.png", transparency=0)
    Image.fromarray(_rgb()).convert("LA").save(d / "la.png")
    Image.fromarray(_rgb()).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(_rgb(1, 1)).save(d / "tiny.png")
    Image.fromarray(_rgb(17, 13)).save(d / "odd.bmp")


def exif_rotated(d):
    img = Image.fromarray(_rgb(10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    img.save(d / "rot.jpg", exif=exif)


def nested_and_symlink(d):
    (d / "x" / "y").mkdir(parents=True)
    Image.fromarray(_rgb()).save(d / "x" / "y" / "deep.png")
    Image.fromarray(_rgb()).save(d / "real.png")
    (d / "link.png").symlink_to(d / "real.png")


NOT_UTF8 = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a legal Linux name that is not UTF-8
NOT_UTF8_DIR = os.fsdecode(b"f\xeate")


def not_utf8_names(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    Image.fromarray(_rgb()).save(d / NOT_UTF8)
    (d / NOT_UTF8_DIR).mkdir()
    Image.fromarray(_rgb()).save(d / NOT_UTF8_DIR / "in.png")
    (d / os.fsdecode(b"bad\xff.png")).write_bytes(b"\x89PNG\r\n\x1a\nbroken")


def symlink_loops(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    (d / "loop.png").symlink_to("loop.png")  # a link to itself
    (d / "sub").mkdir()
    Image.fromarray(_rgb()).save(d / "sub" / "b.png")
    (d / "sub" / "up").symlink_to("..")  # a folder link back to INPUT


def special_files(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    os.mkfifo(d / "fifo.png")  # opening it would block until a writer comes
    (d / "null.png").symlink_to(os.devnull)  # a character device
    cwd = os.getcwd()
    os.chdir(d)  # a socket's path is limited to about 100 bytes: bind a relative one
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind("sock.png")
        sock.close()
    finally:
        os.chdir(cwd)


def odd_entries(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    (d / "gone.png").symlink_to("nowhere.png")  # dangling
    (d / "dir.png").mkdir()  # a folder named like an image: walked as a folder
    Image.fromarray(_rgb()).save(d / "dir.png" / "inner.png")


def linked_folders(d):
    outside = d.parent / "outside"
    outside.mkdir()
    Image.fromarray(_rgb()).save(outside / "c.png")
    (d / "ext").symlink_to(outside)  # outside INPUT: followed, restored under the link's name
    (d / "real").mkdir()
    Image.fromarray(_rgb()).save(d / "real" / "r.png")
    (d / "alias").symlink_to("real")  # a second way into a folder INPUT holds: named, not walked twice


def locked_folder(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    (d / "locked").mkdir()
    Image.fromarray(_rgb()).save(d / "locked" / "hidden.png")


def other_formats(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    (d / "x.heic").write_bytes(b"\0\0\0\x18ftypheic")
    Image.fromarray(_rgb()).save(d / "y.ppm")
    (d / "notes.txt").write_text("not an image")


def long_names(d):
    Image.fromarray(_rgb()).save(d / ("p" * 251 + ".png"))  # 255 bytes: the longest legal name
    Image.fromarray(_rgb()).save(d / ("j" * 251 + ".jpg"))  # its mask would be NAME.jpg.png: 259 bytes


def private_input(d):
    Image.fromarray(_rgb()).save(d / "private.png")
    Image.fromarray(_rgb()).save(d / "shared.png")
    (d / "private.png").chmod(0o600)
    (d / "shared.png").chmod(0o644)


def mask_collision(d):
    Image.fromarray(_rgb()).save(d / "a.jpg")
    Image.fromarray(_rgb()).save(d / "a.jpg.png")  # its output a.jpg.png; a.jpg's mask masks/a.jpg.png


def masks_folder_in_input(d):
    Image.fromarray(_rgb()).save(d / "x.png")
    (d / "masks").mkdir()
    Image.fromarray(_rgb()).save(d / "masks" / "x.png")  # its output is x.png's mask


def no_input(d):
    d.rmdir()


# ---------------------------------------------------------------------------------------------
# Models: each builder returns a model path (given the good tiny model and a scratch folder).


def foreign_identity(good: Path, d: Path) -> Path:
    """A foreign graph (Identity) wearing copied `restore.*` metadata."""
    x = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])
    y = helper.make_tensor_value_info("restored", TensorProto.UINT8, ["N", "H", "W", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["restored"])], "foreign", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = onnx.load(str(good)).ir_version
    for prop in onnx.load(str(good)).metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    path = d / "foreign.onnx"
    onnx.save(model, str(path))
    return path


def renamed_output(good: Path, d: Path) -> Path:
    model = onnx.load(str(good))
    for node in model.graph.node:
        node.output[:] = ["restored_v2" if o == "restored" else o for o in node.output]
    for out in model.graph.output:
        if out.name == "restored":
            out.name = "restored_v2"
    path = d / "renamed.onnx"
    onnx.save(model, str(path))
    return path


def external_outside(good: Path, d: Path) -> Path:
    model = onnx.load(str(good))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../etc/passwd")
    path = d / "escape.onnx"
    onnx.save(model, str(path))
    return path


# ---------------------------------------------------------------------------------------------
# Faults: each patch gets pytest's monkeypatch.


def disk_full_after_first_image(mp):
    real, written = rj.atomic_write_group, []

    def write(files, durable=True, mode=None):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(files[0][0]))
        written.append(files)
        real(files, durable, mode)

    def no_space(path, data, durable=True):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    mp.setattr(rj, "atomic_write_group", write)
    mp.setattr(rr, "atomic_write_bytes", no_space)


def killed_after_first_image(mp):
    """The first run stops (as if killed) when its second image is due; the rerun is not disturbed.

    The writes take turns: a killed process has no writer left, but here the rerun runs in the
    same process, and a first write still under way in a writer thread would leave its temp file
    in the folder the rerun scans."""
    real, state, turn = rj.atomic_write_group, {"writes": 0}, threading.Lock()

    def write(files, durable=True, mode=None):
        with turn:
            state["writes"] += 1
            if state["writes"] == 2:
                raise KeyboardInterrupt
            real(files, durable, mode)

    mp.setattr(rj, "atomic_write_group", write)


def scandir_denied(mp):
    """A sub-folder that cannot be listed (chmod 0 does not stop root, so the refusal is simulated)."""
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path)

    mp.setattr(os, "scandir", scandir)


def _after_planning(change: Callable[[Path], None]):
    """A fault that changes INPUT's b.png after the walk, before it is read."""

    def fault(mp):
        real = rb.plan_run

        def plan_run(input_path, output_path, options):
            planned = real(input_path, output_path, options)
            change(Path(input_path) / "b.png")
            return planned

        mp.setattr(rb, "plan_run", plan_run)

    return fault


def _fifo_instead(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def disk_full_at_the_mask(mp):
    """ENOSPC while the mask's temp file is written (the image's is already written)."""
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.parent.name == "masks":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    mp.setattr(Path, "write_bytes", write_bytes)


def mask_rename_fails(mp):
    """The image is renamed into place, then the mask's rename fails: the group is taken back."""
    import restore_toolkit.fileio as rf

    real = os.replace

    def replace(src, dst):
        if Path(dst).parent.name == "masks" and Path(src).name.endswith(".tmp"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst)

    mp.setattr(rf.os, "replace", replace)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def folder_at_output(out: Path):
    (out / "a.png").mkdir(parents=True)


def empty_file_at_output(out: Path):
    out.mkdir(parents=True)
    (out / "a.png").write_bytes(b"")


def old_outputs(out: Path):
    (out / "masks").mkdir(parents=True)
    (out / "a.png").write_bytes(b"old image")
    (out / "masks" / "a.png").write_bytes(b"old mask")


def link_to_input_at_output(out: Path):
    out.mkdir(parents=True)
    (out / "a.png").symlink_to(out.parent / "in" / "a.png")  # the harness's INPUT


def _input_untouched(inp, out, _):
    assert Image.open(inp / "a.png").size == (24, 20) and not (inp / "a.png").is_symlink()
    assert Image.open(out / "a.png").size == (24, 20)


def hard_link_and_file_in_the_way(out: Path):
    out.mkdir(parents=True)
    os.link(out.parent / "in" / "a.png", out / "a.png")  # the input itself, not a restored image
    (out / "sub").write_bytes(b"a file where the folder sub/ goes")


def a_and_sub_b(d):
    Image.fromarray(_rgb()).save(d / "a.png")
    (d / "sub").mkdir()
    Image.fromarray(_rgb()).save(d / "sub" / "b.png")


def output_is_a_file(out: Path):
    out.write_bytes(b"a file, not a folder")


def stale_temps(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    (out / f".a.png.{_dead_pid()}.abcd1234.tmp").write_bytes(b"half")  # a killed run's
    (out / f".b.png.{os.getpid()}.live_123.tmp").write_bytes(b"busy")  # a live writer's


# ---------------------------------------------------------------------------------------------
# The matrix.


@dataclass
class Case:
    name: str
    make: Callable[[Path], None]  # fills INPUT
    args: Tuple[str, ...] = ()
    exit: int = 0
    says: Tuple[str, ...] = ()  # fragments of the console output (stdout and stderr)
    outputs: Tuple[str, ...] = ()  # must exist under OUTPUT
    absent: Tuple[str, ...] = ()  # must not exist under OUTPUT
    model: Optional[Callable[[Path, Path], Path]] = None
    fault: Optional[Callable] = None  # patches, given monkeypatch
    before: Optional[Callable[[Path], None]] = None  # prepares OUTPUT
    in_place: bool = False  # OUTPUT is INPUT
    runs: int = 1  # the same command this many times; the last run is judged
    never: Tuple[str, ...] = ("Traceback", "Warning")  # must not be printed
    check: Optional[Callable[[Path, Path, str], None]] = field(default=None, repr=False)


def _kept_16bit_grey(inp, out, _):
    src, got = np.asarray(Image.open(inp / "grey16.png")), Image.open(out / "grey16.png")
    mask = np.asarray(Image.open(out / "masks" / "grey16.png")) > 0
    assert got.mode == "I;16" and np.array_equal(np.asarray(got)[~mask], src[~mask])


def _kept_16bit_colour(name: str, planes: int):
    """OUTPUT/name is a 16-bit PNG of the input's colour type: unmasked values (alpha everywhere) equal,
    masked ones the model's 8-bit result × 257."""

    def check(inp, out, _):
        src, _meta = read_png16(inp / name)
        got, meta = read_png16(out / name)
        assert meta["bitdepth"] == 16 and meta["planes"] == planes and got.shape == src.shape
        assert meta["alpha"] == (planes in (2, 4)) and meta["greyscale"] == (planes == 2)
        mask = np.asarray(Image.open(out / "masks" / name)) > 0
        assert mask.any()  # the masked values below are checked, not vacuously
        assert np.array_equal(got[~mask], src[~mask])  # every channel, all 16 bits
        if planes in (2, 4):
            assert np.array_equal(got[..., -1], src[..., -1])  # alpha, masked or not
        colour = got[..., :3] if planes >= 3 else got[..., :1]
        assert not np.any(colour[mask] % 257)  # 8-bit predictions scaled to 16 bits

    return check


def _no_temp_left(inp, out, _):
    assert not [p for p in out.rglob(".*.tmp")], list(out.rglob(".*.tmp"))


def _disk_full(inp, out, text):
    """The first image written lands; the other is named as not written. Which of the two is
    written first depends on the writer threads, so either may be the one that landed."""
    _no_temp_left(inp, out, text)
    written = sorted(p.name for p in out.iterdir())
    assert written in (["a.png"], ["b.png"]), written
    lost = ({"a.png", "b.png"} - set(written)).pop()
    assert f"FAILED {lost}: not written:" in text, text
    start = text.index("{")
    report = json.loads(text[start:])  # the report, on stderr, after the summary
    status = {Path(r["input"]).name: r["status"] for r in report["records"]}
    assert status == {written[0]: "ok", lost: "failed"}, status


def _swept(inp, out, _):
    names = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
    assert len(names) == 1 and f".{os.getpid()}." in names[0]  # the live writer's file stays


def _gif_as_png(inp, out, _):
    src, got = Image.open(inp / "still.gif"), Image.open(out / "still.png")
    assert got.mode == "P" and got.getpalette() == src.getpalette()


def _one_line_names(inp, out, text):
    failed = [line for line in text.splitlines() if "FAILED" in line]
    assert failed == ["FAILED bad name.png: a PNG file whose header cannot be read (SyntaxError: broken PNG file (chunk b'en'))"]


def _not_utf8_kept(inp, out, text):
    assert "FAILED bad\\xff.png: a PNG file whose header cannot be read" in text  # shown escaped, on one line
    report = (out / "restore-report.json").read_bytes().decode("utf-8")  # valid UTF-8
    inputs = {r["input"] for r in json.loads(report)["records"]}
    assert NOT_UTF8 in inputs and os.fsencode(NOT_UTF8) == b"caf\xe9.png"  # the OS name, byte for byte


def _group_absent(inp, out, text):
    _no_temp_left(inp, out, text)
    assert not (out / "a.png").exists() and not (out / "masks" / "a.png").exists()


def _old_files_back(inp, out, text):
    _no_temp_left(inp, out, text)
    assert (out / "a.png").read_bytes() == b"old image" and (out / "masks" / "a.png").read_bytes() == b"old mask"


def _modes_kept(inp, out, _):
    umask = os.umask(0)
    os.umask(umask)
    for name, mode in (("private.png", 0o600), ("shared.png", 0o644)):
        for path in (out / name, out / "masks" / name):
            assert path.stat().st_mode & 0o777 == mode & ~umask, (path, oct(path.stat().st_mode))


def _one_line_only(inp, out, text):
    assert len([line for line in text.splitlines() if line.strip()]) == 1, text


MATRIX = [
    # -- the seven that lost data -------------------------------------------------------------
    Case("16-bit RGB PNG kept", rgb16, ("--save-mask",), exit=0, says=("1 restored",),
         never=("Traceback", "Warning", "LOSSY"), outputs=("rgb16.png",), check=_kept_16bit_colour("rgb16.png", 3)),
    Case("16-bit RGBA PNG kept, alpha too", rgba16, ("--save-mask",), exit=0, says=("1 restored",),
         never=("Traceback", "Warning", "LOSSY"), outputs=("rgba16.png",), check=_kept_16bit_colour("rgba16.png", 4)),
    Case("16-bit grey+alpha PNG kept", la16, ("--save-mask",), exit=0, says=("1 restored",),
         never=("Traceback", "Warning", "LOSSY"), outputs=("la16.png",), check=_kept_16bit_colour("la16.png", 2)),
    Case("16-bit RGB PNG to JPEG refused", rgb16, ("--format", "jpeg"), exit=3,
         says=("FAILED rgb16.png: cannot be written back whole: 16-bit RGB written as 8-bit", "--allow-lossy"),
         absent=("rgb16.jpg",)),
    Case("16-bit RGB PNG to JPEG, --allow-lossy", rgb16, ("--format", "jpeg", "--allow-lossy"), exit=0,
         says=("1 restored (1 lossy", "LOSSY rgb16.png: 16-bit RGB written as 8-bit"), outputs=("rgb16.jpg",)),
    Case("16-bit grey PNG kept", grey16, ("--save-mask",), exit=0, says=("1 restored",),
         outputs=("grey16.png",), check=_kept_16bit_grey),
    Case("multi-page TIFF refused", pages, exit=3, says=("FAILED pages.tif: cannot be written back whole: "
                                                         "pages 2-3 of 3 dropped",), absent=("pages.tif",)),
    Case("multi-page TIFF, --allow-lossy", pages, ("--allow-lossy",), exit=0,
         says=("1 restored (1 lossy", "LOSSY pages.tif: pages 2-3 of 3 dropped"), outputs=("pages.tif",)),
    Case("animated PNG refused", apng, exit=3, says=("FAILED anim.png: cannot be written back whole: "
                                                     "frames 2-4 of 4 dropped",), absent=("anim.png",)),
    Case("animated GIF counted and refused", animated_gif, exit=3,
         says=("0 restored, 0 skipped (already there), 1 failed, of 1", "FAILED anim.gif: GIF is read but not written"),
         absent=("anim.gif",)),
    Case("animated GIF to PNG refused", animated_gif, ("--format", "png"), exit=3,
         says=("FAILED anim.gif: cannot be written back whole: frames 2-3 of 3 dropped",), absent=("anim.png",)),
    Case("empty GIF said empty, not unwritable", empty_gif, exit=3, says=("FAILED empty.gif: empty file (0 bytes)",),
         never=("not written back",)),
    Case("still GIF to PNG, palette kept", still_gif, ("--format", "png"), exit=0, says=("1 restored",),
         outputs=("still.png",), check=_gif_as_png),
    Case("--format jpeg into INPUT, run twice", one_png("g0.png"), ("--format", "jpeg", "--save-mask"), in_place=True,
         runs=2, exit=0, says=("0 restored, 1 skipped",), outputs=("g0.png", "g0.jpg", "masks/g0.jpg.png")),
    Case("--format jpeg into INPUT, killed, resumed", two_pngs, ("--format", "jpeg", "--batch-size", "1"), in_place=True,
         runs=2, fault=killed_after_first_image, exit=0, says=("1 restored, 1 skipped",), outputs=("a.jpg", "b.jpg")),
    Case("foreign graph with copied metadata", one_png(), model=foreign_identity, exit=1,
         says=("not a pixels graph", "outputs lack 'mask', 'predicted'")),
    Case("pixels graph with a renamed output", one_png(), model=renamed_output, exit=1,
         says=("outputs lack 'restored'",)),
    Case("disk full after one image", two_pngs, fault=disk_full_after_first_image, exit=3,
         says=("1 restored", ".png: not written:", "No space left on device", "report NOT written"),
         absent=("restore-report.json",), check=_disk_full),
    # -- round 3: one entry never stops the run ---------------------------------------------------
    Case("file and folder names that are not UTF-8", not_utf8_names, exit=3, says=("3 restored", "1 failed"),
         outputs=(NOT_UTF8, "a.png", f"{NOT_UTF8_DIR}/in.png"), check=_not_utf8_kept),
    Case("symlink loops inside INPUT", symlink_loops, exit=3,
         says=("2 restored", "FAILED loop.png: symlink loop", "SKIPPED sub/up/: symlink loop back to ./: not followed"),
         outputs=("a.png", "sub/b.png"), absent=("sub/up",)),
    Case("FIFO, socket and device named like images", special_files, exit=3,
         says=("1 restored", "FAILED fifo.png: a FIFO, not a regular file: not opened",
               "FAILED sock.png: a socket, not a regular file", "FAILED null.png: a character device, not a regular file"),
         outputs=("a.png",), absent=("fifo.png", "sock.png", "null.png")),
    Case("dangling link, folder named x.png", odd_entries, exit=3,
         says=("2 restored", "FAILED gone.png: broken symbolic link"), outputs=("a.png", "dir.png/inner.png")),
    Case("file removed between walk and read", two_pngs, fault=_after_planning(Path.unlink), exit=3,
         says=("1 restored", "FAILED b.png: no such file (removed since it was listed or named?)"), absent=("b.png",)),
    Case("FIFO swapped in between walk and read", two_pngs, fault=_after_planning(_fifo_instead), exit=3,
         says=("1 restored", "FAILED b.png: a FIFO, not a regular file: not opened"), absent=("b.png",)),
    # -- round 3: no silent skip, no false "already there" ----------------------------------------
    Case("symlinked folders", linked_folders, exit=0,
         says=("2 restored, 0 skipped (already there), 1 skipped (see SKIPPED below)",
               "SKIPPED alias/: the same folder as real/, restored there"),
         outputs=("ext/c.png", "real/r.png"), absent=("alias",)),
    Case("unreadable sub-folder", locked_folder, fault=scandir_denied, exit=3,
         says=("1 restored", "FAILED locked/: folder not read (Permission denied): the images in it are not restored"),
         outputs=("a.png",)),
    Case("image formats not restored, other files", other_formats, exit=0,
         says=("1 restored, 0 skipped (already there), 3 skipped (see SKIPPED below)",
               "SKIPPED x.heic: .heic images are not restored", "SKIPPED y.ppm: .ppm images are not restored",
               "SKIPPED 1 file(s) that are not images (1 .txt"),
         outputs=("a.png",)),
    Case("a folder where an output goes", one_png(), before=folder_at_output, exit=3,
         says=("0 skipped (already there)", "a.png is a folder, not an output of this tool; not written (move it away)")),
    Case("an empty file where an output goes", one_png(), before=empty_file_at_output, exit=3,
         says=("0 skipped (already there)", "a.png is an empty file, not an output of this tool")),
    Case("an empty file where an output goes, --overwrite", one_png(), ("--overwrite",), before=empty_file_at_output,
         exit=0, says=("1 restored",), check=lambda inp, out, _: Image.open(out / "a.png").size == (24, 20)),
    Case("a link to the input where its output goes", one_png(), before=link_to_input_at_output, exit=3,
         says=("a.png is a symbolic link, not an output of this tool; not written (move it away or pass --overwrite)",),
         check=_input_untouched),
    Case("a link to the input where its output goes, --overwrite", one_png(), ("--overwrite",),
         before=link_to_input_at_output, exit=0, says=("1 restored",),
         check=lambda inp, out, text: (_input_untouched(inp, out, text), not (out / "a.png").is_symlink() or
                                       pytest.fail("the link was followed"))),
    Case("a hard link to the input, a file where a folder goes", a_and_sub_b, before=hard_link_and_file_in_the_way,
         exit=3, says=("0 skipped (already there)", "a.png is the input itself (a hard link), not an output of this "
                       "tool; not written (move it away or pass --overwrite)",
                       "sub/b.png cannot be made: a file stands where one of its folders goes; not written (move it "
                       "away)")),
    # -- round 3: an entry's files land together or not at all --------------------------------------
    Case("disk full while the mask is written", one_png(), ("--save-mask",), fault=disk_full_at_the_mask, exit=3,
         says=("FAILED a.png: not written:", "masks/a.png: No space left on device"), check=_group_absent),
    Case("the mask's rename fails, --overwrite", one_png(), ("--save-mask", "--overwrite"), before=old_outputs,
         fault=mask_rename_fails, exit=3, says=("FAILED a.png: not written:",), check=_old_files_back),
    Case("255-byte names", long_names, ("--save-mask",), exit=3,
         says=("1 restored", "its mask's name would be 259 bytes, over the 255-byte limit of a file name; rename the "
                             "input or drop --save-mask"),
         outputs=("p" * 251 + ".png", "masks/" + "p" * 251 + ".png"), absent=("j" * 251 + ".jpg",), check=_no_temp_left),
    Case("outputs keep the input's permission bits", private_input, ("--save-mask",), exit=0, says=("2 restored",),
         check=_modes_kept),
    # -- round 3: messages ------------------------------------------------------------------------
    Case("mask name collision", mask_collision, ("--save-mask",), exit=3,
         says=("masks/a.jpg.png would also be the mask of a.jpg.png; rename one of them or drop --save-mask",
               "masks/a.jpg.png would also be the mask of a.jpg; rename one of them or drop --save-mask"),
         never=("Traceback", "Warning", "--format"), absent=("a.jpg", "a.jpg.png")),
    Case("a masks/ folder in INPUT", masks_folder_in_input, ("--save-mask",), exit=3,
         says=("FAILED masks/x.png: its output ", "masks/x.png would also be the mask of x.png; rename one of them or "
               "drop --save-mask")),
    Case("OUTPUT is a file", one_png(), before=output_is_a_file, exit=1,
         says=("OUTPUT", "is a file; INPUT is a folder, so OUTPUT must be a folder"), never=("Traceback", "{", "model"),
         check=_one_line_only),
    Case("missing INPUT, before the model loads", no_input, model=lambda good, d: d / "garbage.onnx", exit=1,
         says=("no such file or folder",), never=("Traceback", "model", "garbage"), check=_one_line_only),
    # -- the extra findings --------------------------------------------------------------------
    Case("temp file of a killed run swept", one_png(), before=stale_temps, exit=0,
         says=("removed 1 temp file(s)",), outputs=("a.png",), check=_swept),
    Case("bomb header vs --max-pixels", bomb_header, ("--max-pixels", "1000"), exit=3,
         says=("400,000,000 pixels exceeds the limit of 1,000 (--max-pixels)",), absent=("bomb.png",)),
    Case("above Pillow's limit, allowed by ours", over_pillow_limit, ("--max-pixels", "100000000", "--max-memory", "4000"), exit=3,
         says=("FAILED big.png: truncated or corrupt",), never=("Traceback", "Warning", "DecompressionBomb")),
    Case("newline in a failing file's name", broken_odd_name, exit=3, check=_one_line_names),
    # -- cases that held, kept held ----------------------------------------------------------
    Case("empty, fake and truncated files", bad_files, exit=3,
         says=("1 restored", "FAILED empty.png: empty file (0 bytes)", "FAILED fake.jpg: not a PNG",
               "FAILED trunc.png: truncated or corrupt"), outputs=("good.png",),
         absent=("empty.png", "fake.jpg", "trunc.png"), check=_no_temp_left),
    Case("names with spaces, unicode, newlines", odd_names, exit=0, says=("3 restored",),
         outputs=("with space.png", "ünï €.png", "new\nline.png")),
    Case("modes, odd sizes, 1x1", modes, exit=0, says=("5 restored",),
         outputs=("p.png", "la.png", "cmyk.jpg", "tiny.png", "odd.bmp")),
    Case("EXIF rotation applied", exif_rotated, exit=0, says=("1 restored",), outputs=("rot.jpg",),
         check=lambda inp, out, _: Image.open(out / "rot.jpg").size == (10, 20) or pytest.fail("not rotated")),
    Case("nested tree and a symlink", nested_and_symlink, exit=0, says=("3 restored",),
         outputs=("x/y/deep.png", "real.png", "link.png")),
    Case("ONNX external data outside its folder", one_png(), model=external_outside, exit=1,
         says=("keeps its data outside the model's folder",)),
]


@pytest.mark.parametrize("case", MATRIX, ids=[c.name for c in MATRIX])
def test_fault_matrix(case: Case, tiny_onnx, tmp_path, monkeypatch):
    inp = tmp_path / "in"
    inp.mkdir()
    try:
        case.make(inp)
    except OSError as e:  # e.g. no symlinks or odd names on this file system
        pytest.skip(f"cannot build the input here: {e}")
    out = inp if case.in_place else tmp_path / "out"
    if case.before:
        case.before(out)
    model = case.model(tiny_onnx, tmp_path) if case.model else tiny_onnx
    if case.fault:
        case.fault(monkeypatch)
    args = ["--model", str(model), str(inp), str(out), "--device", "cpu", "--quiet", *case.args]
    for _ in range(case.runs):
        result = CliRunner().invoke(main, args)
    text = result.output
    assert result.exit_code == case.exit, text
    for fragment in case.says:
        assert fragment in text, text
    for fragment in case.never:
        assert fragment not in text, text
    if case.exit == 1:  # could not start: exactly one line, nothing written
        assert len([line for line in text.splitlines() if line.strip()]) <= 2, text  # the model line + the error
        assert "error:" in text and not (out.is_dir() and any(out.iterdir()))
    for rel in case.outputs:
        assert (out / rel).is_file(), f"{rel} missing: {text}"
    for rel in case.absent:
        assert not (out / rel).exists(), f"{rel} written: {text}"
    if case.check:
        case.check(inp, out, text)


# ---------------------------------------------------------------------------------------------
# Promises that are not one run of the command.


def test_library_call_leaves_pillow_global_limit_alone(tiny_onnx, tmp_path):
    from runtime import Restorer

    before = Image.MAX_IMAGE_PIXELS
    one_png()(tmp_path)
    Restorer(tiny_onnx, device="cpu").restore_folder(tmp_path, tmp_path / "out", max_pixels=10**10, progress=False)
    assert Image.MAX_IMAGE_PIXELS == before


def test_one_line_for_any_exception():
    from restore_toolkit.messages import one_line

    assert one_line(MemoryError()) == "MemoryError"
    assert one_line(ValueError("\n\n first \nsecond")) == "ValueError: first"
    assert one_line(OSError("x" * 500), limit=20).endswith("…")
    assert one_line(RuntimeError(""), with_type=False) == "RuntimeError"


def test_export_errors_survive_empty_messages(tiny_pipeline, monkeypatch):
    """An exception with no message used to raise IndexError inside our own error path."""
    import export.onnx_export as eo

    def boom(*a, **k):
        raise RuntimeError()

    monkeypatch.setattr(eo.torch.onnx, "export", boom)
    with pytest.raises(eo.ExportError, match=r"ONNX export failed at opset \d+: RuntimeError$"):
        eo.to_onnx_proto(tiny_pipeline, "pixels")


def test_malicious_checkpoint_refused_in_one_clean_line(tmp_path):
    import torch

    from restore_core.checkpoint import CheckpointError, load_checkpoint

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    torch.save({"model": Evil()}, tmp_path / "evil.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / "evil.ckpt")
    message = str(info.value)
    assert "\n" not in message and "asks to load" in message and "system" in message
    assert not caught, [str(w.message) for w in caught]


def test_artifacts_are_synced_before_rename_and_images_optionally(tiny_onnx, tmp_path, monkeypatch):
    import restore_toolkit.fileio as rf
    from runtime import Restorer

    synced = []
    real = os.fsync
    monkeypatch.setattr(rf.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    one_png()(tmp_path)
    restorer = Restorer(tiny_onnx, device="cpu")
    restorer.restore_folder(tmp_path, tmp_path / "out", progress=False)
    with_images = len(synced)
    synced.clear()
    restorer.restore_folder(tmp_path, tmp_path / "out2", progress=False, sync_images=False)
    # Each durable write syncs the file and its folder: two reports, plus the image when asked.
    assert synced and with_images == len(synced) + 2


def test_a_temp_name_is_only_swept_when_its_process_is_gone(tmp_path):
    from restore_toolkit.fileio import sweep_stale_temps

    dead, live = _dead_pid(), os.getpid()
    keep = [tmp_path / f".a.png.{live}.abcdefgh.tmp", tmp_path / ".a.png.tmp", tmp_path / f"a.png.{dead}.abcdefgh.tmp"]
    gone = tmp_path / f".a.png.{dead}.abcdefgh.tmp"
    for path in [*keep, gone]:
        path.write_bytes(b"x")
    assert sweep_stale_temps([tmp_path]) == [gone]
    assert all(p.exists() for p in keep)


def test_two_runs_at_once_into_one_output(tiny_onnx, tmp_path):
    """Both finish; every output is a complete image; neither removes the other's temp files."""
    from concurrent.futures import ThreadPoolExecutor

    from runtime import Restorer

    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(_rgb(16, 16)).save(src / f"{i}.png")
    restorers = [Restorer(tiny_onnx, device="cpu", threads=1) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda r: r.restore_folder(src, tmp_path / "out", progress=False), restorers))
    assert all(r.exit_code == 0 for r in results), [r.lines for r in results]
    for i in range(6):
        assert Image.open(tmp_path / "out" / f"{i}.png").size == (16, 16)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def _failing_graph(good: Path, d: Path) -> Path:
    """A pixels graph (the tiny model's metadata) that fails at run time for any size but 16x16."""
    x = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.UINT8, ["N", "H", "W", c])
            for n, c in (("restored", 3), ("mask", 1), ("predicted", 3))]
    consts = [helper.make_tensor("shape", TensorProto.INT64, [4], [1, 16, 16, 3]),
              helper.make_tensor("zero", TensorProto.INT64, [1], [0]), helper.make_tensor("one", TensorProto.INT64, [1], [1]),
              helper.make_tensor("axis", TensorProto.INT64, [1], [3])]
    nodes = [helper.make_node("Reshape", ["image", "shape"], ["restored"]),
             helper.make_node("Slice", ["restored", "zero", "one", "axis"], ["mask"]),
             helper.make_node("Identity", ["restored"], ["predicted"])]
    model = helper.make_model(helper.make_graph(nodes, "fails", [x], outs, initializer=consts),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = onnx.load(str(good)).ir_version
    for prop in onnx.load(str(good)).metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    path = d / "fails.onnx"
    onnx.save(model, str(path))
    return path


def test_onnx_runtime_log_lines_only_with_verbose(tiny_onnx, tmp_path):
    """ONNX Runtime logs from C++ straight to the terminal (fd 2): only --verbose lets it through."""
    one_png()(tmp_path)
    model = _failing_graph(tiny_onnx, tmp_path)
    base = [sys.executable, "-m", "runtime.cli", "--model", str(model), str(tmp_path / "a.png"), str(tmp_path / "out"),
            "--device", "cpu", "--quiet"]
    quiet = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 3 and "FAILED a.png: inference failed" in quiet.stdout, quiet.stderr
    assert "onnxruntime:" not in quiet.stderr + quiet.stdout, quiet.stderr
    verbose = subprocess.run([*base, "--verbose"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 3 and "[E:onnxruntime:" in verbose.stderr, verbose.stderr


def test_ctrl_c_while_a_read_hangs_stops_at_once(tiny_onnx, tmp_path):
    """SIGINT while a reader is stuck (a hung mount): one line, exit 130 at once; nothing half-written."""
    import signal

    src = tmp_path / "in"
    src.mkdir()
    two_pngs(src)
    script = f"""
import sys, time
import runtime.job_io as rj
real = rj.read_image
def read_image(path, *args, **kwargs):
    if path.name == "b.png":
        print("hanging", flush=True)
        time.sleep(600)
    return real(path, *args, **kwargs)
rj.read_image = read_image
from runtime.cli import main
sys.argv = ["restore-run", "--model", {str(tiny_onnx)!r}, {str(src)!r}, {str(tmp_path / "out")!r}, "--device", "cpu",
            "--quiet", "--batch-size", "1"]
main()
"""
    # A shell ignores SIGINT in the commands it starts in the background, and the child would inherit
    # that (a test suite run with `&`, as CI may do); a user's Ctrl-C reaches a command that has it.
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "hanging"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # the read would hang for 600 s
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: finished outputs are complete" in err and "Traceback" not in err, err
    assert not (tmp_path / "out" / "b.png").exists() and not list((tmp_path / "out").glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------
# Memory (issue 23): headers before reads, nothing read whole, sizes refused before allocation.
# Run through test_fault_matrix, in a table of their own.


def dev_zero_link(d):
    Image.fromarray(_rgb()).save(d / "good.png")
    (d / "zero.png").symlink_to("/dev/zero")


def fifo_image(d):
    Image.fromarray(_rgb()).save(d / "good.png")
    os.mkfifo(d / "fifo.png")


def sparse_6gib(d):
    # A PNG signature and header, then 6 GiB of holes: nothing may read it whole.
    with open(d / "sparse.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)))
        f.truncate(6 << 30)


def tiff_tag_claims_gigabytes(d):
    # One TIFF tag (strip offsets) claiming 2**28 longs = 1 GiB, in a 2 GiB sparse file.
    with open(d / "tag.tif", "wb") as f:
        f.write(b"II*\0" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 273, 4, 1 << 28, 100))
        f.truncate(2 << 30)


def png_256mpx(d):
    # 16000 x 16000 grey (256 Mpx, just over the default --max-pixels) from under 300 kB of zero rows.
    side = 16000
    z = zlib.compressobj(9)
    row = z.compress(b"\0" * (side + 1))
    data = row + b"".join(z.compress(b"\0" * (side + 1)) for _ in range(side - 1)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    (d / "bomb256.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    assert (d / "bomb256.png").stat().st_size < 300_000


MEMORY_MATRIX = [
    Case("link to /dev/zero", dev_zero_link, exit=3, says=("1 restored", "zero.png", "a character device"),
         outputs=("good.png",), absent=("zero.png",)),
    Case("FIFO named like an image", fifo_image, exit=3, says=("1 restored", "fifo.png", "FIFO"),
         outputs=("good.png",), absent=("fifo.png",)),
    Case("6 GiB sparse file", sparse_6gib, exit=3, says=("FAILED sparse.png: a PNG file whose header cannot be read",), absent=("sparse.png",)),
    Case("TIFF tag claiming 1 GiB", tiff_tag_claims_gigabytes, exit=3,
         says=("FAILED tag.tif: its header claims more than 64 MiB before the image data",), absent=("tag.tif",)),
    Case("small PNG decoding to 256 Mpx, default limits", png_256mpx, exit=3,
         says=("FAILED bomb256.png: 16000x16000 = 256,000,000 pixels exceeds the limit of 250,000,000 (--max-pixels)",),
         never=("Traceback", "Warning", "MemoryError", "out of memory"), absent=("bomb256.png",)),
]


@pytest.mark.parametrize("case", MEMORY_MATRIX, ids=[c.name for c in MEMORY_MATRIX])
def test_memory_matrix(case: Case, tiny_onnx, tmp_path, monkeypatch):
    test_fault_matrix(case, tiny_onnx, tmp_path, monkeypatch)
