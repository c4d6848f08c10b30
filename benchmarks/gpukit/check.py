"""`check`, on the GPU machine: the five steps in one run of at most CHECK_BUDGET_S, one report.

The environment is set once for every process the check starts: the private install first on
PYTHONPATH (onnxruntime-gpu and pypng; the machine's own onnxruntime is the CPU build), this
checkout next (the project is not installed there), and the CUDA libraries that came with torch
on LD_LIBRARY_PATH (ONNX Runtime loads cuBLAS and cuDNN by name). Each step records pass, fail or
skip with its reason; a failed step does not stop the next ones, except that with no CUDA device
at all the check stops after step 1 (exit NO_CUDA_EXIT). Every process has a time limit drawn
from what is left of the budget, so the report is always written.

Files in --out (at most 8, the most a call brings back): gpukit-report.json, gpukit-report.md,
gpukit.log (every command and its output) and restore-bench's reports bench-{ort,eager,compile}.json
(`benchmarks.report.write_markdown` renders any of them as the bench's own Markdown).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

CHECK_BUDGET_S = 450  # with the install before it, the last call stays within 8 minutes
EXIT_OK, EXIT_FAILED, NO_CUDA_EXIT = 0, 1, 4
REPORT_FILES = ("gpukit-report.json", "gpukit-report.md", "gpukit.log",
                "bench-ort.json", "bench-eager.json", "bench-compile.json")
ROOT = Path(__file__).resolve().parents[2]
# The console scripts of pyproject.toml: the checkout is not installed on the GPU machine.
COMMANDS = {"restore-train": "restore_core.cli:train_cli", "restore-export": "export.cli:main",
            "restore-run": "runtime.cli:main", "restore-bench": "benchmarks.cli:main"}


@dataclass
class Step:
    number: int
    name: str
    proves: str
    status: str = "skip"  # pass | fail | skip
    reason: str = ""
    seconds: float = 0.0
    details: Dict = field(default_factory=dict)

    def ok(self, reason: str) -> None:
        self.status, self.reason = "pass", reason

    def fail(self, reason: str) -> None:
        self.status, self.reason = "fail", reason


@dataclass
class Done:
    """One finished (or stopped) subprocess."""

    rc: int
    seconds: float
    timed_out: bool
    stdout: str
    tail: List[str]

    def why(self) -> str:
        if self.timed_out:
            return f"stopped by the time limit after {self.seconds:.0f} s (its progress is in gpukit.log)"
        last = next((ln for ln in reversed(self.tail) if ln.strip()), "")
        return f"exit {self.rc}: {last.strip()[:300]}" if last else f"exit {self.rc}"


def nvidia_lib_dirs() -> List[str]:
    """Folders holding the CUDA libraries pip installed with torch (nvidia/*/lib, nvidia/cu13/lib)."""
    import importlib.util

    spec = importlib.util.find_spec("nvidia")
    dirs = []
    for base in (spec.submodule_search_locations or []) if spec else []:
        for lib in sorted(Path(base).glob("*/lib")) + sorted(Path(base).glob("*/*/lib")):
            if any(lib.glob("*.so*")):
                dirs.append(str(lib))
    return dirs


def gpu_names() -> List[str]:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [ln.strip() for ln in done.stdout.splitlines() if ln.strip()] if done.returncode == 0 else []


class Kit:
    """The run's paths, environment, clock and log; starts every subprocess."""

    def __init__(self, out: Path, work: Path, site: Optional[Path], budget_s: float):
        self.out, self.work, self.site = out, work, site
        self.deadline = time.monotonic() + budget_s
        self.log_path = out / "gpukit.log"
        self.no_cuda: Optional[str] = None
        self.trt_problem: Optional[str] = "not probed"
        self.bench_reports: Dict[str, Dict] = {}
        from benchmarks.gpukit.install import installed_state

        stash = site.parent if site else None
        self.install_state = installed_state(stash) if stash else {"installed": False, "note": "no --site given"}
        paths = ([str(site)] if site and site.is_dir() else []) + [str(ROOT)]
        libs = nvidia_lib_dirs()
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                        PYTHONUNBUFFERED="1")
        if libs:
            self.env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
        self.environment = {"PYTHONPATH": self.env["PYTHONPATH"], "LD_LIBRARY_PATH": self.env.get("LD_LIBRARY_PATH")}

    def say(self, line: str) -> None:
        print(line, flush=True)
        with open(self.log_path, "a") as log:
            log.write(line + "\n")

    def python(self, label: str, args: List[str], cap_s: Optional[float]) -> Done:
        """Run `python ARGS` in the repository root with the kit's environment, at most `cap_s`
        seconds and never past the budget; its output goes to the log (stdout also returned)."""
        left = self.deadline - time.monotonic() - 10  # keep time to write the report
        limit = left if cap_s is None else min(cap_s, left)
        if limit < 15:
            return Done(rc=-1, seconds=0.0, timed_out=False, stdout="", tail=["not started: the check's time budget is spent"])
        self.say(f"$ {label} (limit {limit:.0f} s): {' '.join(args)}")
        t0 = time.monotonic()
        with tempfile.TemporaryFile("w+") as err, tempfile.TemporaryFile("w+") as out:
            # A session of its own: a time limit stops its workers (DataLoader, inductor) too.
            proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=out, stderr=err,
                                    text=True, start_new_session=True)
            try:
                rc, timed_out = proc.wait(timeout=limit), False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc, timed_out = proc.wait(), True
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        seconds = time.monotonic() - t0
        with open(self.log_path, "a") as log:
            log.write(stdout + stderr + f"# {label}: exit {rc} after {seconds:.1f} s{' (time limit)' if timed_out else ''}\n")
        return Done(rc, seconds, timed_out, stdout, (stderr or stdout).splitlines()[-20:])

    def console(self, command: str, args: List[str], cap_s: Optional[float]) -> Done:
        return self.python(command, ["-m", "benchmarks.gpukit", "console", command, *args], cap_s)


def console_main(argv: List[str]) -> int:
    """`python -m benchmarks.gpukit console restore-run ARGS`: a console script of this checkout."""
    import importlib

    if not argv or argv[0] not in COMMANDS:
        print(f"error: console needs one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, function = COMMANDS[argv[0]].split(":")
    sys.argv = [argv[0], *argv[1:]]
    return getattr(importlib.import_module(module), function)()
