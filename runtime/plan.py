"""Planning a `restore-run`: which entries, where their outputs go, and what may not happen.

Everything here runs before the model loads and before anything is written:

- `check_request`: the arguments alone (INPUT there and readable, OUTPUT a folder that can be
  made, ...). A wrong argument is answered with one line and costs nothing.
- `plan_run`: INPUT walked (runtime/scan.py), one job per entry. Entries that are not images to
  restore keep their record (skipped or failed, with the reason), so every entry is accounted for.
  Outputs are then checked: none may land on an input or on the report (the run does not start),
  two inputs may not share an output, names must fit the file system, and an output path that
  holds something not written by this tool (a folder, a link, an empty file) fails its entry
  rather than counting as "already there".
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from restore_toolkit.fileio import NAME_MAX
from restore_toolkit.messages import flat
from runtime.images import FORMAT_SUFFIX, FORMATS, SUFFIX_FORMAT, WRITABLE_MODES
from runtime.report import ALREADY_THERE, REPORT_NAME, Record, earlier_outputs, fail, is_report
from runtime.scan import Entry, file_kind, scan

if TYPE_CHECKING:
    from runtime.batch import RunOptions

MASKS_DIR = "masks"
PREDICTED_DIR = "predicted"
FINISHED = "a finished file"
SUFFIXES = ".png, .jpg, .webp, .bmp, .tif or .gif"


class PlanError(ValueError):
    """The run cannot start (missing input, OUTPUT that would overwrite inputs...); one line says why."""


@dataclass
class Job:
    source: Path
    output: Optional[Path]  # None: an entry that is not restored (its record says why)
    format: str  # Pillow format name of the output
    mask: Optional[Path]
    predicted: Optional[Path]
    record: Record


# (source, name relative to INPUT, output path, Pillow format of the output)
Pair = Tuple[Path, str, Path, str]


def output_format(suffix: str, fmt: Optional[str]) -> Tuple[str, str]:
    """(Pillow format, output suffix) for an input suffix and the --format option."""
    if fmt is None:
        return SUFFIX_FORMAT[suffix.lower()], suffix
    pil = FORMATS[fmt.lower()]
    # Keep the input's own spelling (.jpeg, .tiff) when it already is that format.
    return pil, suffix if SUFFIX_FORMAT.get(suffix.lower()) == pil else FORMAT_SUFFIX[pil]


def report_path(options: "RunOptions", root: Path) -> Path:
    return Path(options.report) if options.report else root / REPORT_NAME


# ---------------------------------------------------------------------------------------------
# The arguments alone.


def check_format(options: "RunOptions") -> None:
    if options.format is not None and options.format.lower() not in FORMATS:
        raise PlanError(f"unknown --format {options.format!r}; choose png, jpeg, webp, bmp or tiff")
    if options.batch_size < 1:
        raise PlanError("--batch-size must be at least 1")


def check_request(input_path, output_path, options: "RunOptions") -> None:
    """What the arguments alone can tell: checked before the model loads.

    Raises:
        PlanError: INPUT missing, unreadable or not a file or folder; OUTPUT (or --report) where
            it cannot be; an unknown --format.
    """
    check_format(options)
    inp, out = Path(input_path), Path(output_path)
    _check_creatable(_output_root(inp, out, _input_mode(inp)), "OUTPUT")
    if options.report == "":
        raise PlanError("--report is empty; name the report's file")
    if options.report:
        if Path(options.report).is_dir():
            raise PlanError(f"--report {flat(options.report)} is a folder; name the report's file")
        _check_creatable(Path(options.report).parent, "--report's folder")


def _input_mode(inp: Path) -> int:
    """INPUT's st_mode, once it is known to be a readable folder or an image file."""
    try:
        mode = os.stat(inp).st_mode
    except FileNotFoundError:
        raise PlanError(f"{flat(inp)}: no such file or folder") from None
    except OSError as e:
        raise PlanError(f"{flat(inp)}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        try:
            os.scandir(inp).close()
        except OSError as e:
            raise PlanError(f"{flat(inp)}: folder cannot be read ({e.strerror or e})") from None
    elif not stat.S_ISREG(mode):
        raise PlanError(f"{flat(inp)}: a {file_kind(mode) or 'special file'}, not an image file or a folder")
    elif inp.suffix.lower() not in SUFFIX_FORMAT:
        raise PlanError(f"{flat(inp)}: not a {SUFFIXES} file")
    return mode


def _output_root(inp: Path, out: Path, input_mode: int) -> Path:
    """The folder the outputs go to; OUTPUT that is an existing file is refused unless it names the image."""
    names_file = not stat.S_ISDIR(input_mode) and out.suffix.lower() in SUFFIX_FORMAT and not out.is_dir()
    if os.path.exists(out) and not out.is_dir() and not names_file:
        if stat.S_ISDIR(input_mode):
            raise PlanError(f"OUTPUT {flat(out)} is a file; INPUT is a folder, so OUTPUT must be a folder")
        raise PlanError(f"OUTPUT {flat(out)} is a file; name a folder or the image file to write ({SUFFIXES})")
    return out.parent if names_file else out


def _check_creatable(folder: Path, what: str) -> None:
    """`folder` is one, or can be made: its nearest existing ancestor is a folder we may write to."""
    here = folder
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    if os.path.exists(here) and not here.is_dir():
        raise PlanError(f"{what} {flat(folder)} cannot be made: {flat(here)} is a file")
    if here != folder and os.path.isdir(here) and not os.access(here, os.W_OK | os.X_OK):
        raise PlanError(f"{what} {flat(folder)} cannot be made: {flat(here)} is not writable")
    if here == folder and os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
        raise PlanError(f"{what} {flat(folder)} is not writable")


# ---------------------------------------------------------------------------------------------
# The jobs.


def plan_file(inp: Path, out: Path, fmt: Optional[str]) -> Tuple[Path, List[Pair]]:
    """One image in: OUTPUT is the restored file itself (an image suffix) or its folder."""
    if out.suffix.lower() in SUFFIX_FORMAT and not out.is_dir():
        # OUTPUT names the restored file itself: its suffix picks the format, and --format, if
        # given, must be the same (a WebP under a .jpg name is read as a JPEG by every viewer).
        pil, asked = SUFFIX_FORMAT[out.suffix.lower()], FORMATS[fmt.lower()] if fmt else None
        if asked and asked != pil:
            raise PlanError(f"OUTPUT {flat(out)} names a {pil} file but --format asks for {asked}; "
                            f"name it {flat(out.with_suffix(FORMAT_SUFFIX[asked]).name)} or drop --format")
        if pil not in WRITABLE_MODES:
            names = [FORMAT_SUFFIX[f] for f in WRITABLE_MODES]
            raise PlanError(f"OUTPUT {flat(out)}: {pil} is read but not written; name a {', '.join(names[:-1])} "
                            f"or {names[-1]} file")
        return out.parent, [(inp, inp.name, out, pil)]
    pil, suffix = output_format(inp.suffix, fmt)
    return out, [(inp, inp.name, out / (inp.stem + suffix), pil)]


def _folder_jobs(inp: Path, out: Path, options: "RunOptions", report: Path) -> List[Job]:
    """A job for every entry under INPUT, minus our own outputs when OUTPUT is INPUT or holds it."""
    inp_r, out_r = os.path.realpath(inp), os.path.realpath(out)
    # OUTPUT inside INPUT: never read our own outputs back as inputs (nor list the report). A
    # report named like an image stays listed, so that it is refused as an input's overwrite.
    listed = [] if report.suffix.lower() in SUFFIX_FORMAT else [report]
    exclude = listed if inp_r == out_r else [out, *listed]
    # OUTPUT is INPUT (or holds it): what the earlier run's report lists as written is ours, not
    # an input, so a rerun (or a resumed run) of the same command plans the same jobs.
    holds = inp_r == out_r or inp_r.startswith(out_r.rstrip(os.sep) + os.sep)
    ours = earlier_outputs(report, Path(inp_r)) if holds else set()
    jobs = []
    for entry in scan(inp, exclude):
        if entry.status != "image":
            jobs.append(entry_job(entry))
        elif not (ours and Path(os.path.realpath(entry.path)) in ours):
            pil, suffix = output_format(Path(entry.rel).suffix, options.format)
            jobs.append(make_job((entry.path, entry.rel, out / Path(entry.rel).with_suffix(suffix), pil), out, options))
    return jobs


def entry_job(entry: Entry) -> Job:
    """The record of an entry that is not restored (skipped or failed at planning, with the reason)."""
    record = Record(input=entry.rel, status=entry.status)
    if entry.status == "failed":
        record.error = flat(entry.reason)
    else:
        record.reason = entry.reason
    return Job(source=entry.path, output=None, format="", mask=None, predicted=None, record=record)


def make_job(pair: Pair, root: Path, options: "RunOptions") -> Job:
    src, rel, target, fmt = pair
    # Masks and predictions are PNG (lossless) named after the output: a.png → masks/a.png,
    # a.jpg → masks/a.jpg.png, so a.png and a.jpg never share a mask.
    rel_out = target.relative_to(root)
    side = rel_out if rel_out.suffix.lower() == ".png" else rel_out.with_name(rel_out.name + ".png")
    job = Job(
        source=src, output=target, format=fmt,
        mask=root / MASKS_DIR / side if options.save_mask else None,
        predicted=root / PREDICTED_DIR / side if options.save_predicted else None,
        record=Record(input=rel, output=str(target)),
    )
    job.record.mask = str(job.mask) if job.mask else None
    job.record.predicted = str(job.predicted) if job.predicted else None
    return job


def job_outputs(job: Job) -> List[Path]:
    return [path for _, path in _roles(job)]


def _roles(job: Job) -> List[Tuple[str, Path]]:
    roles = (("output", job.output), ("mask", job.mask), ("prediction", job.predicted))
    return [(role, path) for role, path in roles if path is not None]


def _pending(jobs: List[Job]) -> List[Job]:
    return [job for job in jobs if job.record.status == "pending"]


# ---------------------------------------------------------------------------------------------
# What the outputs may not do.


def claim_outputs(jobs: List[Job], report: Path) -> Dict[str, List[Tuple[Job, str]]]:
    """Who writes each output path, in which role; refuses outputs that land on an input or the report.

    Raises:
        PlanError: an output (or the report) would overwrite an input.
    """
    # An input is both its entry (a link itself) and the file it leads to.
    inputs = {real: job.record.input for job in jobs for real in (_place(job.source), os.path.realpath(job.source))}
    claims: Dict[str, List[Tuple[Job, str]]] = {}
    for job in jobs:
        for role, path in _roles(job):
            real = _place(path)
            if real in inputs:
                raise PlanError(
                    f"{flat(path)} would overwrite the input {flat(inputs[real])}: OUTPUT may not be INPUT "
                    f"(or hold inputs) unless the output names cannot collide; choose another OUTPUT"
                )
            claims.setdefault(real, []).append((job, role))
    real_report = _place(report)
    if real_report in inputs or real_report in claims:
        raise PlanError(f"the report {flat(report)} would overwrite an input or an output; pass --report elsewhere")
    return claims


def check_report_target(report: Path, overwrite: bool) -> None:
    """A file already where the report goes is replaced only when it is an earlier run's report
    (or with --overwrite): a user's own file there (OUTPUT is INPUT) is not lost to a rerun.

    Raises:
        PlanError: a non-empty regular file there that does not start as a report does.
    """
    try:
        st = os.lstat(report)
    except OSError:  # nothing there (or nothing readable: the write itself will say why)
        return
    if overwrite or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return
    try:
        ours = is_report(report)
    except OSError as e:
        raise PlanError(f"the report {flat(report)} cannot be read to check it is one ({e.strerror or e}); "
                        "pass --report elsewhere") from None
    if not ours:
        raise PlanError(f"the report {flat(report)} is a file that is not a report of this tool; pass --report "
                        "elsewhere, move it away or pass --overwrite")


def _place(path: Path) -> str:
    """Where a write to `path` lands: its folder resolved, its own name kept (a rename replaces a
    link there, never the file the link leads to)."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def fail_collisions(claims: Dict[str, List[Tuple[Job, str]]], options: "RunOptions") -> None:
    """Two inputs mapping onto one output path (a.png and a.jpg with --format png; the masks of a.jpg
    and a.jpg.png): all of them fail, each naming the others and a way out that works."""
    for owners in claims.values():
        if len(owners) < 2:
            continue
        roles = {role for _, role in owners}
        flags = [flag for role, flag in (("mask", "--save-mask"), ("prediction", "--save-predicted")) if role in roles]
        if not flags and options.format:
            flags = ["--format"]
        fix = "rename one of them" + (f" or drop {' and '.join(flags)}" if flags else "")
        shown = flat(dict(_roles(owners[0][0]))[owners[0][1]])  # as planned, not resolved
        for job, role in owners:
            others = ", ".join(f"the {r} of {o.record.input}" for o, r in owners if o is not job)
            fail(job.record, f"its {role} {shown} would also be {others}; {fix}")


def fail_unwritable(jobs: List[Job]) -> None:
    """Formats we read but do not write (GIF) fail before any work, with the way out."""
    for job in _pending(jobs):
        if job.format not in WRITABLE_MODES:  # an empty file is said so first, as every other empty input
            empty = os.path.isfile(job.source) and os.path.getsize(job.source) == 0
            fail(job.record, "empty file (0 bytes)" if empty else f"{job.format} is read but not written back "
                 "(Pillow's writer may reorder the palette and frames); pass --format png to restore it into a PNG")


def fail_long_names(jobs: List[Job], options: "RunOptions") -> None:
    """An output name the file system cannot hold (a 255-byte a.jpg's mask is a.jpg.png) fails its entry."""
    flags = {"output": "--format" if options.format else "", "mask": "--save-mask", "prediction": "--save-predicted"}
    for job in _pending(jobs):
        for role, path in _roles(job):
            size = len(os.fsencode(path.name))
            if size > NAME_MAX:
                way_out = f"rename the input or drop {flags[role]}" if flags[role] else "rename the input"
                fail(job.record, f"its {role}'s name would be {size} bytes, over the {NAME_MAX}-byte limit of a "
                                 f"file name; {way_out}")


def check_existing(jobs: List[Job], overwrite: bool) -> None:
    """Skip an entry whose outputs are all there; fail one whose output path holds something else.

    Only a non-empty regular file counts as a finished output (every output is renamed into place
    complete), and not the input itself (a hard link to it). A folder there, or a file where a
    folder of the path should be, always fails the entry; anything else fails it unless
    --overwrite, which replaces it.
    """
    for job in _pending(jobs):
        found = [(role, path, _found(path, job.source)) for role, path in _roles(job)]
        for role, path, what in found:
            if what not in (None, FINISHED) and (what in _IN_THE_WAY or not overwrite):
                way_out = "move it away" if what in _IN_THE_WAY else "move it away or pass --overwrite"
                problem = what if what == _BLOCKED else f"is {what}, not an output of this tool"
                fail(job.record, f"its {role} {flat(path)} {problem}; not written ({way_out})")
                break
        else:
            if not overwrite and all(what == FINISHED for _, _, what in found):
                job.record.status, job.record.reason = "skipped", ALREADY_THERE


_BLOCKED = "cannot be made: a file stands where one of its folders goes"
_IN_THE_WAY = ("a folder", _BLOCKED)  # what --overwrite cannot replace


def _found(path: Path, source: Path) -> Optional[str]:
    """What stands at `path`: None (nothing), FINISHED (a non-empty file), or what else it is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return _BLOCKED
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if stat.S_ISREG(st.st_mode):
        if st.st_size == 0:
            return "an empty file"
        return "the input itself (a hard link)" if _same_file(st, source) else FINISHED
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    return f"a {file_kind(st.st_mode) or 'special file'}"


def _same_file(st: os.stat_result, source: Path) -> bool:
    try:
        other = os.stat(source)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def settle(jobs: List[Job], report: Path, options: "RunOptions") -> None:
    """The checks on planned outputs, shared by every way of listing inputs (a folder, a URI)."""
    fail_collisions(claim_outputs(jobs, report), options)
    check_report_target(report, options.overwrite)
    fail_unwritable(jobs)
    fail_long_names(jobs, options)
    check_existing(jobs, options.overwrite)


def plan_run(input_path, output_path, options: "RunOptions") -> Tuple[List[Job], Path]:
    """List the jobs of a run (one per entry of INPUT) and where the report goes.

    Raises:
        PlanError: INPUT missing or unsupported, OUTPUT where it cannot be, or outputs that
            would overwrite inputs.
    """
    check_request(input_path, output_path, options)
    inp, out = Path(input_path), Path(output_path)
    if inp.is_dir():
        report = report_path(options, out)
        jobs = _folder_jobs(inp, out, options, report)
    else:
        root, pairs = plan_file(inp, out, options.format)
        report = report_path(options, root)
        jobs = [make_job(pair, root, options) for pair in pairs]
    settle(jobs, report, options)
    return jobs, report
