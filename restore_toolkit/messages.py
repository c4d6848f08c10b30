"""One line per error: what every command prints when something fails.

Exceptions arrive with empty messages (`MemoryError()`), multi-line messages (ORT, protobuf,
PyTorch's unpickler) and file names holding newlines. A user, a log parser and the JSON report
all need exactly one line, so every error path in the project formats through `one_line`.

Standard library only: the torch-free runtime, the exporter and the trainer all import it.
"""

from __future__ import annotations

_CONTROL = {ord(c): " " for c in "\r\n\t\v\f\x85\u2028\u2029"}


def shown(text: object) -> str:
    """`text` printable: a file name's bytes that are not UTF-8 shown as `\\xNN` escapes.

    Python carries such bytes of an OS name as lone surrogates (`os.fsdecode`'s surrogateescape),
    which no terminal, log or UTF-8 file can take; their escapes can.
    """
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that did not come from an OS name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def flat(text: object) -> str:
    """`text` on one line and printable: line breaks and tabs become spaces, non-UTF-8 bytes of
    a name `\\xNN` escapes (`shown`)."""
    return shown(text).translate(_CONTROL)


def one_line(error: BaseException | str, limit: int = 200, with_type: bool = True) -> str:
    """The first non-empty line of an exception's message, shortened to `limit` characters.

    Args:
        error: an exception (or a message).
        limit: the most characters kept of the message (an ellipsis marks a cut).
        with_type: prefix the exception's type, `OSError: ...`; an empty message gives the type alone.

    Returns:
        One line, never empty for an exception.
    """
    text = shown(error)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > limit:
        first = first[: limit - 1].rstrip() + "…"
    if isinstance(error, BaseException) and with_type:
        name = type(error).__name__
        return f"{name}: {first}" if first else name
    return first or (type(error).__name__ if isinstance(error, BaseException) else "")
