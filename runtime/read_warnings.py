"""A warning Pillow raises while it reads a file becomes that file's note, in one line.

Pillow warns, through Python's warnings, about what it reads past: an EXIF block whose offsets
point outside it ("Corrupt EXIF data"), a TIFF tag larger than the file. Printed as Python prints
warnings, each took two lines of a run's output (the message and the line of Pillow's source
that raised it), named no file, and with several readers at work could not be told apart. So
`restore-run` routes them (`route`, once): a warning raised in a reader thread while it reads a
file (`collected`) goes to that file's notes, and the run's summary names the file beside it
(`WARNED a.jpg: Corrupt EXIF data ...`); any other is shown as Python shows it.

The sink is kept per thread, because Python calls `warnings.showwarning` in the thread that
warned: two readers never mix their files' warnings.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, List

from restore_toolkit.messages import flat

PREFIX = "read with a warning: "  # the notes this module adds start so
_local = threading.local()


def route() -> None:
    """Send Pillow's warnings raised inside `collected` to its notes, every time (not once per
    place in Pillow's source, as Python's default does). Once routed, routing again does nothing;
    where something has put its own `warnings.showwarning` since (a test harness), it routes again."""
    if getattr(warnings.showwarning, "routes_read_warnings", False):
        return
    warnings.filterwarnings("always", module=r"PIL\.")
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        sink = getattr(_local, "sink", None)
        if sink is None:
            return shown(message, category, filename, lineno, file, line)
        note = PREFIX + " ".join(flat(str(message)).split())
        if note not in sink:
            sink.append(note)

    show.routes_read_warnings = True
    warnings.showwarning = show


@contextmanager
def collected(notes: List[str]) -> Iterator[List[str]]:
    """While inside, this thread's warnings (once `route`d) are added to `notes`."""
    before = getattr(_local, "sink", None)
    _local.sink = notes
    try:
        yield notes
    finally:
        _local.sink = before


def warned(notes: List[str]) -> str:
    """The warnings among a record's notes, joined for its one line ('' when none)."""
    return "; ".join(n[len(PREFIX):] for n in notes if n.startswith(PREFIX))
