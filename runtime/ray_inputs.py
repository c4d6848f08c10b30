"""`restore-run --engine ray`'s INPUT: a path every node sees, or a URI read through pyarrow.

A URI (s3://, gs://, hdfs://, file://...) is planned as the local runner plans a folder
(`runtime.plan.plan_run`: the same jobs, names, skips and refusals), its files listed through
pyarrow's file system; OUTPUT is always a path every node sees. A worker copies each input it
restores to a local scratch file (`fetch`) and reads it with the local reader. Jobs travel to
the workers with absolute paths (`absolute_job`): workers do not share the driver's cwd.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import List, Optional

from restore_toolkit.messages import flat, one_line
from runtime.batch import RunOptions
from runtime.images import SUFFIX_FORMAT
from runtime.plan import (
    SUFFIXES,
    Job,
    PlanError,
    check_format,
    entry_job,
    make_job,
    output_format,
    plan_file,
    plan_run,
    report_path,
    settle,
)
from runtime.report import fail
from runtime.scan import Entry, restorable, skip_reason, walk_order


def fetch(fs, job: Job, scratch: Path) -> Optional[Job]:
    """Copy an input from a pyarrow file system to a worker-local file for the local reader."""
    try:
        with fs.open_input_stream(job.source.as_posix()) as f:
            data = f.read()
    except PermissionError:
        fail(job.record, "permission denied")
        return None
    except OSError as e:
        fail(job.record, f"cannot read the file ({one_line(e)})")
        return None
    local = scratch / f"input{job.source.suffix}"
    local.write_bytes(data)
    return replace(job, source=local)


def absolute_job(job: Job, local_source: bool = True) -> Job:
    """The job as a worker needs it: absolute paths (workers do not share the driver's cwd)."""
    def absolute(p: Optional[Path]) -> Optional[Path]:
        return None if p is None else p.absolute()

    source = absolute(job.source) if local_source else job.source  # a URI's path is the file system's own
    return Job(source=source, output=absolute(job.output), format=job.format, mask=absolute(job.mask),
               predicted=absolute(job.predicted), record=job.record)


def is_uri(path) -> bool:
    """INPUT named by a URI (s3://, gs://, hdfs://, file://...): read through pyarrow's file systems."""
    return isinstance(path, str) and "://" in path


def plan_input(input_path, output_path, options: RunOptions):
    """(jobs, report path, file system) of a run: `plan_uri` for a URI, else `plan_run` (no file system)."""
    if is_uri(input_path):
        return plan_uri(input_path, output_path, options)
    return (*plan_run(input_path, output_path, options), None)


def plan_uri(uri: str, output_path, options: RunOptions):
    """`plan_run` for an INPUT URI: the same jobs, names, skips and refusals; OUTPUT is a path.

    Returns:
        (jobs, report path, the pyarrow file system the sources are read through).
    """
    import pyarrow.fs as pafs

    check_format(options)
    fs, base, kind = _open_uri(uri)
    out = Path(output_path)
    if kind == pafs.FileType.File:
        if Path(base).suffix.lower() not in SUFFIX_FORMAT:
            raise PlanError(f"{flat(uri)}: not a {SUFFIXES} file")
        root, pairs = plan_file(Path(base), out, options.format)
        jobs = [make_job(pair, root, options) for pair in pairs]
    else:
        root, jobs = out, _uri_folder_jobs(fs, base, out, options)
    report = report_path(options, root)
    settle(jobs, report, options)
    return jobs, report, fs


def _open_uri(uri: str):
    """(file system, base path, FileType) of a URI, or PlanError saying why not."""
    import pyarrow.fs as pafs

    try:
        fs, base = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(base)
    except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError
        raise PlanError(f"{flat(uri)}: {one_line(e, with_type=False)}") from None
    if info.type == pafs.FileType.NotFound:
        raise PlanError(f"{flat(uri)}: no such file or folder")
    return fs, base.rstrip("/"), info.type


def _uri_folder_jobs(fs, base: str, out: Path, options: RunOptions) -> List[Job]:
    """A job per file under the URI's folder, in the local runner's order; files not restored are skipped."""
    import pyarrow.fs as pafs

    found = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    rels = sorted((i.path[len(base) + 1:] for i in found if i.type == pafs.FileType.File), key=walk_order)
    jobs = []
    for rel in rels:
        source = Path(f"{base}/{rel}")
        if restorable(rel):
            pil, suffix = output_format(Path(rel).suffix, options.format)
            jobs.append(make_job((source, rel, out / Path(rel).with_suffix(suffix), pil), out, options))
        else:
            jobs.append(entry_job(Entry(source, rel, "skipped", skip_reason(rel))))
    return jobs
