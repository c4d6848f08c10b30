"""`restore-train --set section.key=value`: every config key is settable, typed from the config
dataclasses; bad keys and values are one line naming the key; the older flags still work, hidden."""

import pathlib
import typing

import pytest
from click.testing import CliRunner

import restore_core.cli as cli
import restore_core.config as config
from restore_core.cli import LEGACY_SHORTCUTS, SHORTCUTS, train_cli
from restore_core.config import Config, ConfigError, config_keys, config_to_dict
from restore_core.config_text import parse_setting, parse_value

DEFAULTS = {f"{section}.{name}": value for section, d in config_to_dict(Config()).items() for name, value in d.items()}


def _changed(value, hint):
    """A value of `hint`'s type that differs from `value` (the default), and how to write it."""
    inner = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union:
        hint = inner[0]
    if value is None:
        value = {str: "a/b", int: 0, float: 0.0, bool: False}[hint]
        return _changed(value, hint)
    if hint is bool:
        return (not value), str(not value).lower()
    if hint is int:
        return value + 3, str(value + 3)
    if hint is float:
        return value + 0.25, repr(value + 0.25)
    if hint is str:
        return value + "x", value + "x"
    # A list: each item changed (an empty one gets an item); written as '[a, b]'.
    item_hints = typing.get_args(hint) or (str,)
    items = [_changed(v, type(v))[0] for v in value] or [{str: "a", int: 1, float: 0.5, bool: True}[item_hints[0]]]
    return tuple(items), "[" + ", ".join(str(v) for v in items) + "]"


class _Stop(Exception):
    pass


def _overrides_of(args, monkeypatch):
    """The key -> value overrides restore-train derives from `args` (training never starts)."""
    seen = {}

    def capture(cfg, overrides):
        seen.update(overrides)
        raise _Stop

    monkeypatch.setattr(config, "apply_overrides", capture)
    monkeypatch.setattr(cli, "_starting_config", lambda config_path, resume: Config())  # no checkpoint to read
    result = CliRunner().invoke(train_cli, args)
    assert isinstance(result.exception, _Stop), result.output
    return seen


def test_every_key_is_listed():
    assert set(config_keys()) == set(DEFAULTS)  # a new dataclass field is a new key, with no list to edit


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_key_can_be_set_from_the_command_line(key, monkeypatch):
    value, text = _changed(DEFAULTS[key], config_keys()[key])
    assert value != DEFAULTS[key]
    assert parse_setting(f"{key}={text}") == (key, value)
    assert _overrides_of(["--set", f"{key}={text}"], monkeypatch) == {key: value}


def test_set_values_reach_the_config_and_are_checked(monkeypatch):
    import restore_core.train

    got = {}
    monkeypatch.setattr(restore_core.train, "train", lambda cfg: got.setdefault("cfg", cfg) and {"rank": 1})
    args = ["--set", "data.jpeg=0.5", "--set", "corruption.count=[2, 5]", "--set", "corruption.shapes=square,circle",
            "--set", "train.channels_last=false", "--set", "data.root=none", "--epochs", "3"]
    result = CliRunner().invoke(train_cli, args)
    assert result.exit_code == 0, result.output
    cfg = got["cfg"]
    assert (cfg.data.jpeg, cfg.corruption.count, cfg.corruption.shapes) == (0.5, (2, 5), ("square", "circle"))
    assert (cfg.train.channels_last, cfg.data.root, cfg.train.epochs) == (False, None, 3)


@pytest.mark.parametrize("setting,needles", [
    ("data.jpg=0.5", ["unknown config key 'data.jpg'", "jpeg"]),
    ("dat.jpeg=0.5", ["unknown config key 'dat.jpeg'", "sections: model, data"]),
    ("data.jpeg=lots", ["data.jpeg", "must be a number", "'lots'"]),
    ("train.epochs=2.5", ["train.epochs", "must be an integer"]),
    ("train.progress=maybe", ["train.progress", "true or false"]),
    ("corruption.count=[1]", ["corruption.count", "list of 2 values"]),
    ("data.jpeg=1.5", ["data.jpeg", "[0, 1]"]),  # in range: checked with the whole config
    ("data.zoom=[2, 1]", ["data.zoom", "0 < min <= max", "[2.0, 1.0]"]),
    ("data.jpeg", ["'data.jpeg' is not KEY=VALUE"]),
])
def test_bad_key_or_value_is_one_line_naming_it(setting, needles):
    result = CliRunner().invoke(train_cli, ["--set", setting])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_a_key_given_twice_differently_is_refused():
    result = CliRunner().invoke(train_cli, ["--epochs", "3", "--set", "train.epochs=4"])
    assert result.exit_code == 1 and "train.epochs" in result.output and "twice" in result.output


def test_shortcuts_are_the_same_as_set(monkeypatch):
    values = {"data": "d", "source": "s", "epochs": "3", "batch_size": "5", "lr": "0.002", "max_steps": "7", "max_minutes": "2.5",
              "seed": "9", "device": "cpu", "precision": "bf16", "threads": "2", "output": "o", "resume": "r",
              "init": "default"}
    assert set(values) == set(SHORTCUTS)
    flags = [a for name, v in values.items() for a in (SHORTCUTS[name].flags[-1], v)]
    sets = [a for name, v in values.items() for a in ("--set", f"{SHORTCUTS[name].key}={v}")]
    assert _overrides_of(flags + ["--config", "configs/default.toml"], monkeypatch) == _overrides_of(
        sets + ["--config", "configs/default.toml"], monkeypatch)


def test_older_flags_are_hidden_aliases(monkeypatch):
    help_text = CliRunner().invoke(train_cli, ["--help"]).output
    legacy = {"--size": "32", "--epoch-samples": "8", "--val-count": "2", "--num-workers": "0", "--patience": "1",
              "--threshold": "0.2", "--base-channels": "4", "--depth": "2"}
    assert set(legacy) == set(LEGACY_SHORTCUTS)
    old = [a for flag, v in legacy.items() for a in (flag, v)] + ["--no-channels-last", "--save-dir", "runs/x",
                                                                 "--bf16", "--no-progress"]
    new = [a for flag, v in legacy.items() for a in ("--set", f"{LEGACY_SHORTCUTS[flag]}={v}")] + [
        "--set", "train.channels_last=false", "-o", "runs/x", "--precision", "bf16", "-q"]
    assert _overrides_of(old, monkeypatch) == _overrides_of(new, monkeypatch)
    for flag in [*legacy, "--channels-last", "--save-dir", "--summary-json", "--bf16", "--no-progress"]:
        assert f"{flag} " not in help_text and f"{flag}/" not in help_text, flag


def test_legacy_flag_with_a_bad_value_names_the_key():
    result = CliRunner().invoke(train_cli, ["--size", "big"])
    assert result.exit_code == 1 and "data.size" in result.output and "integer" in result.output


def test_parse_value_rejects_unknown_keys_directly():
    with pytest.raises(ConfigError, match="unknown config key 'train.speed'"):
        parse_value("train.speed", "1")


CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").rglob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name if p.parent.name == "configs" else f"{p.parent.name}/{p.name}"
                                               for p in CONFIGS])
def test_every_committed_config_loads(path):
    cfg = config.load_config(path)
    # configs/default.toml is the reference design (width 24); configs/shipped-model/ the shipped model (16).
    assert cfg.model.base_channels == (16 if path.parent.name == "shipped-model" else 24)


def test_shipped_model_phases_are_numbered_from_one():
    names = sorted((p.name for p in CONFIGS if p.parent.name == "shipped-model"), key=lambda n: (len(n), n))
    assert names == [f"phase{i}.toml" for i in range(1, len(names) + 1)] and len(names) >= 2


def test_resume_given_by_set_reads_the_checkpoint_config_like_resume(tmp_path):
    for args in (["--resume", str(tmp_path / "none.ckpt")], ["--set", f"train.resume={tmp_path / 'none.ckpt'}"]):
        result = CliRunner().invoke(train_cli, args)
        assert result.exit_code == 1 and "none.ckpt" in result.output, result.output
