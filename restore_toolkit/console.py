"""The conventions every `restore-*` command follows, in one place.

- `--help`/`-h` and `--version` on every command; every option has a help text and shows its
  default. Heavy imports (torch, onnxruntime) happen inside the command body, never at module
  load, so `--help` returns at once.
- One spelling per idea: `--output` (`-o`) for where results go (a positional OUTPUT where
  the command maps an input tree to an output tree), `--overwrite` to replace existing
  results, `--quiet` (`-q`) for no progress bar, `--device auto|cpu|cuda`, `--threads N` (0:
  all usable cores), `--report FILE` for a JSON report written to a file and `--json` for JSON
  on stdout instead of the human-readable text.
- One name per idea across commands: `--model` for the model a command reads (a file or
  `default`), `--precision` for its number format, `--heldout-per-photo` for crops per held-out
  photo. An older spelling stays a hidden alias for a release (`renamed_option`).
- Errors: one line on stderr starting with `error: `, exit 1; usage errors are click's, exit 2;
  Ctrl-C prints one line saying what was kept and exits 130.
- A command whose optional dependencies are missing names the extra to install.
- Library code logs through `logging`; commands print (`log_to_console` routes the library's
  records to the console while a command runs).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Tuple, Type

import click

from restore_toolkit import __version__

ERROR_PREFIX = "error: "
COMMAND_SETTINGS = {"help_option_names": ["-h", "--help"], "show_default": True, "max_content_width": 100}

# The extra that brings each optional module, for "pip install 'restore-toolkit[EXTRA]'".
EXTRA_OF = {"torch": "train", "safetensors": "train", "skimage": "train", "tomli": "train", "onnxscript": "export"}


class MissingExtraError(click.ClickException):
    """An optional dependency of this command is not installed; the message names the extra."""

    def __init__(self, module: str, extra: str, command: str):
        super().__init__(f"{command} needs {module}, which is not installed: "
                         f"pip install 'restore-toolkit[{extra}]'")

    def show(self, file=None) -> None:
        click.echo(ERROR_PREFIX + self.format_message(), err=True)


def require(modules: Iterable[str], extra: str, command: str) -> None:
    """Raise `MissingExtraError` naming `extra` if any of `modules` cannot be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(module, extra, command)


def fail(message: str, code: int = 1) -> None:
    """Print one error line on stderr and exit with `code`."""
    click.echo(ERROR_PREFIX + message, err=True)
    sys.exit(code)


def version_option(prog_name: str):
    """`--version`: the toolkit's version (the same for every command)."""
    return click.version_option(__version__, "--version", prog_name=prog_name,
                                message="%(prog)s (restore-toolkit) %(version)s",
                                help="Show the toolkit's version and exit.")


def handle_errors(user_errors: Callable[[], Tuple[Type[BaseException], ...]], interrupted: str,
                  extra: Optional[str] = None):
    """Decorate a command: the library's named errors become one line and exit 1; Ctrl-C prints
    `interrupted` (what was kept) on one line and exits 130.

    Args:
        user_errors: returns the exception classes that mean "bad input" (a function, so that
            the modules defining them are imported only when the command runs).
        interrupted: what the user should know after Ctrl-C, e.g. which files are complete.
        extra: the extra that brings this command's optional dependencies (default: the one
            that brings the missing module).
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                from restore_toolkit.targets import TargetError

                errors = (*user_errors(), TargetError)  # a place it must not write: said the same everywhere
                try:
                    return fn(*args, **kwargs)
                except errors as e:
                    fail(str(e))
            except ModuleNotFoundError as e:
                top = (e.name or "").split(".")[0]
                if top not in EXTRA_OF:
                    raise
                raise MissingExtraError(top, extra or EXTRA_OF[top], click.get_current_context().command_path) from None
            except KeyboardInterrupt:
                click.echo(f"interrupted: {interrupted}", err=True)
                sys.exit(130)

        return wrapper

    return decorate


class _EchoHandler(logging.Handler):
    """Log records as plain lines on stdout (INFO) or stderr (WARNING and up), through click."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=record.levelno >= logging.WARNING)
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def log_to_console(*names: str, level: int = logging.INFO) -> None:
    """Route the records of the named library loggers to the console while a command runs."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
            logger.addHandler(_EchoHandler())
        logger.setLevel(level)
        logger.propagate = False


def quiet_option(help_text: str = "No progress bar.", hidden_alias: Optional[str] = None):
    """`--quiet/-q`; `hidden_alias` names an older spelling that still works."""

    def decorate(fn):
        fn = click.option("-q", "--quiet", is_flag=True, help=help_text)(fn)
        if hidden_alias:
            fn = click.option(hidden_alias, "quiet_alias", is_flag=True, hidden=True)(fn)
        return fn

    return decorate


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2 CPU quota.

    `os.cpu_count()` reports the host's cores inside containers, and more threads than usable
    cores makes every thread wait on the others.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def capped_threads(threads: int) -> int:
    """--threads, lowered to `available_cpus` with one note: threads beyond them only wait on
    each other (on a 2-CPU machine one small image took 1.8 s with 2 ONNX Runtime threads, 79 s
    with 500, and 10,000 never finished; torch's OpenBLAS crashed at 100,000)."""
    usable = available_cpus()
    if threads > usable:
        click.echo(f"note: --threads {threads} lowered to {usable}, the CPUs this process may use "
                   "(more threads would only wait on each other)", err=True)
        return usable
    return threads


def finite(_ctx, _param, value: Optional[float]) -> Optional[float]:
    """A float option's callback refusing nan and infinities: a range check lets nan through, as
    nan compares false with every bound, and a bound of nan would be found out only after the work."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


class NamedPath(click.Path):
    """`click.Path` that refuses an empty name. `Path("")` is the current folder, so an empty
    `--model ''` (a shell variable left unset) was read as `.`, or, where the option has a
    default, as no option at all: training from scratch, a benchmark of random weights."""

    def __init__(self, *args, what: Optional[str] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.what = what or {(True, False): "a file", (False, True): "a folder"}.get(
            (self.file_okay, self.dir_okay), "a file or folder")

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail(f"empty; name {self.what}", param, ctx)
        return super().convert(value, param, ctx)


def threads_option(what: str):
    return click.option("--threads", type=click.IntRange(min=0), default=0,
                        help=f"CPU threads for {what}; 0: all cores this process may use.")


def device_option(default: Optional[str] = "auto", default_text: Optional[str] = None):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=default,
                        show_default=default_text or True,
                        help="auto: CUDA when it really works; cuda: fail if it does not (never a silent CPU run).")


class RenamedOption(click.Option):
    """An option that still answers to its older names, which --help and error hints no longer
    show: one name per idea across commands, old scripts keep working for a release."""

    def __init__(self, *args, old_names: Tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.old_names = tuple(old_names)

    def _current(self, names):
        return [n for n in names if n not in self.old_names]

    def get_help_record(self, ctx):
        opts, secondary = self.opts, self.secondary_opts
        self.opts, self.secondary_opts = self._current(opts), self._current(secondary)
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts, self.secondary_opts = opts, secondary

    def get_error_hint(self, ctx) -> str:
        return " / ".join(f"'{n}'" for n in self._current(self.opts))


def renamed_option(*param_decls: str, old: Iterable[str], **kwargs):
    """`click.option(*param_decls, ...)` that also accepts the hidden older names `old`."""
    old = tuple(old)
    return click.option(*param_decls, *old, cls=RenamedOption, old_names=old, **kwargs)
