"""Config values typed on the command line: `restore-train --set section.key=value`.

Each key's type is read from the config dataclasses' annotations (`config.config_keys`), so a
field added to one is settable here at once: integers, numbers, true/false (also on/off, yes/no,
1/0), strings, lists ('[1, 6]' or '1,6'); 'none' or nothing unsets an optional key. Text that is
not a value of the key's type is refused with the key and the type it wanted.
"""

from __future__ import annotations

import typing
from typing import Any, Tuple

from restore_core.config import ConfigError, check_value, config_keys, optional_of, unknown_key

_BOOL_WORDS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False, "0": False}


def _unquote(raw: str) -> str:
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'" else raw


_PARSERS = {int: int, float: float, bool: lambda raw: _BOOL_WORDS[raw.lower()], str: _unquote}


def _sequence_from_text(raw: str, hint: Any) -> list:
    """'[1, 6]' or '1,6' (brackets optional, strings unquoted or quoted) -> a list of typed items."""
    body = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    items = [x.strip() for x in body.split(",")] if body.strip() else []
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list or (len(args) == 2 and args[1] is Ellipsis):
        args = (args[0],)
    item_hints = [args[min(i, len(args) - 1)] for i in range(len(items))]
    return [_from_text(x, h) for x, h in zip(items, item_hints)]


def _from_text(raw: str, hint: Any) -> Any:
    """Command-line text -> a value of `hint`'s type where it reads as one; else the text itself,
    which `config.check_value` then refuses with a message naming the key and the type it wanted."""
    inner = optional_of(hint)
    if inner is not None:
        if raw.lower() in ("", "none"):
            return None
        hint = inner
    if typing.get_origin(hint) in (tuple, list):
        return _sequence_from_text(raw, hint)
    try:
        return _PARSERS[hint](raw)
    except (KeyError, ValueError):
        return raw


def parse_value(key: str, raw: str) -> Any:
    """The value of config key `key` ('data.jpeg') written as command-line text ('0.5').

    Types come from the dataclass annotations: integers, numbers, true/false (also on/off,
    yes/no, 1/0), strings, lists ('[1, 6]' or '1,6'); 'none' or nothing unsets an optional key.

    Raises:
        ConfigError: unknown key, or text that is not a value of the key's type (names the key).
    """
    hints = config_keys()
    if key not in hints:
        raise ConfigError(unknown_key(key))
    return check_value(_from_text(raw.strip(), hints[key]), hints[key], key)


def parse_setting(text: str) -> Tuple[str, Any]:
    """One `--set` argument, 'section.key=value', -> (key, typed value); see `parse_value`."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"'{text}' is not KEY=VALUE (e.g. data.jpeg=0.5)")
    return key.strip(), parse_value(key.strip(), raw)
