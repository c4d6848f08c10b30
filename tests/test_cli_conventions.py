"""What every command shares: --help without torch, --version, a help text and a default on every
option, one error prefix, one Ctrl-C line, the extra to install when one is missing, and no
module named like the standard library's or a dependency's."""

import importlib.metadata
import pathlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from benchmarks.cli import main as bench_cli
from export.cli import main as export_cli
from restore_core.cli import data_cli, train_cli, validate_cli
from restore_demo.cli import main as demo_cli
from restore_toolkit import __version__
from restore_toolkit.console import NamedPath
from runtime.cli import main as run_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMANDS = {"restore-data": data_cli, "restore-train": train_cli, "restore-validate": validate_cli,
            "restore-export": export_cli, "restore-run": run_cli, "restore-bench": bench_cli,
            "restore-demo": demo_cli}


def _leaf_commands():
    for name, cmd in COMMANDS.items():
        if isinstance(cmd, click.Group):
            for sub_name, sub in cmd.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, cmd


def _shows_defaults(name):
    return COMMANDS[name.split()[0]].context_settings.get("show_default")


def test_command_modules_import_no_torch():
    # --help must return at once: torch costs ~1.5 s to import, so no command module may load it.
    code = ("import sys; import restore_core.cli, export.cli, benchmarks.cli, runtime.cli, runtime.demo, restore_demo.cli; "
            "heavy = sorted(m for m in ('torch', 'onnxruntime', 'onnxscript', 'skimage') if m in sys.modules); "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at module load: {out.stdout}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_version(name):
    result = CliRunner().invoke(COMMANDS[name], ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"{name} (restore-toolkit) {__version__}"


@pytest.mark.parametrize("name,cmd", list(_leaf_commands()), ids=[n for n, _ in _leaf_commands()])
def test_every_option_has_help_and_a_default(name, cmd):
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.hidden or param.name == "help":
            continue
        assert param.help, f"{name} {param.opts[0]}: no help text"
        if param.is_flag and not param.secondary_opts:
            continue  # a plain flag is off unless given
        shows_default = param.required or param.show_default not in (None, False) or (
            _shows_defaults(name) and param.default is not None)
        assert shows_default, f"{name} {param.opts[0]}: no default shown"


def test_train_help_defaults_are_the_configs():
    from restore_core.cli import SHORTCUTS
    from restore_core.config import Config, config_to_dict

    built_in = config_to_dict(Config())
    for option, (key, _, _, shown, _) in SHORTCUTS.items():
        section, field = key.split(".")
        value = built_in[section][field]
        if value is None:
            assert isinstance(shown, str), option
        else:
            assert shown == value, (option, key, shown, value)


def test_help_constants_match_the_libraries():
    import benchmarks.backends
    import export.cli
    import export.onnx_export

    assert (export.cli.DEFAULT_OPSET, export.cli.MIN_OPSET) == (export.onnx_export.DEFAULT_OPSET,
                                                                export.onnx_export.MIN_OPSET)
    assert set(export.cli.SIGNATURE_NAMES) == set(export.onnx_export.SIGNATURES)
    assert list(bench_cli_names()) == list(benchmarks.backends.BACKEND_NAMES)


def bench_cli_names():
    import benchmarks.cli

    return benchmarks.cli.BACKEND_NAMES


def test_exported_metadata_names_the_toolkit_version():
    from export.onnx_export import exporter_versions

    assert exporter_versions()["restore-toolkit"] == __version__


@pytest.mark.parametrize("missing", ["torch", "skimage"])  # skimage: the photos parity checks run on
def test_missing_extra_is_named_in_one_line(monkeypatch, tmp_path, missing):
    import restore_toolkit.console as console

    real = console.importlib.util.find_spec
    monkeypatch.setattr(console.importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    result = CliRunner().invoke(export_cli, ["onnx", "--model", str(tmp_path / "a.ckpt"),
                                             "--output", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pip install 'restore-toolkit[export]'" in lines[0]
    assert f"needs {missing}" in lines[0]


@pytest.mark.parametrize("cmd,args,patch,needle", [
    (validate_cli, ["--model", "x.ckpt", "--data", "d", "-o", "o"], "restore_core.validate.validate",
     "metrics.json was not written"),
    (export_cli, ["onnx", "--model", "x.ckpt", "--output", "m.onnx"], "export.onnx_export.check_opset",
     "nothing was written"),
    (data_cli, ["synth", "out", "--count", "1", "--size", "16"], "restore_core.data.synthesize_dataset",
     "every file written is complete"),
])
def test_ctrl_c_says_what_was_kept_in_one_line(cmd, args, patch, needle, monkeypatch, tmp_path):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(patch, interrupt)
    result = CliRunner().invoke(cmd, args)
    assert result.exit_code == 130
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and needle in lines[0], result.output
    assert "checkpoint" not in lines[0]


def test_no_module_shadows_the_standard_library_or_a_dependency():
    taken = set(sys.stdlib_module_names)
    for dist in importlib.metadata.distributions():
        top = dist.read_text("top_level.txt") or ""
        taken.update(top.split())
    taken -= {"restore_core", "export", "runtime", "benchmarks", "restore_toolkit", "restore_demo", "tests"}  # ours
    ours = [p for pkg in ("restore_core", "export", "runtime", "benchmarks", "restore_toolkit", "restore_demo")
            for p in (ROOT / pkg).glob("*.py")]
    clashes = sorted(str(p.relative_to(ROOT)) for p in ours if p.stem in taken)
    assert clashes == []


# Older option names, hidden from --help, kept for a release: command -> {old: current}.
RENAMED = {
    "restore-validate": {"--checkpoint": "--model", "--per-photo": "--heldout-per-photo", "--out-dir": "--output"},
    "restore-export onnx": {"--checkpoint": "--model", "--force": "--overwrite"},
    "restore-export torchscript": {"--checkpoint": "--model", "--force": "--overwrite"},
    "restore-export exported-program": {"--checkpoint": "--model", "--force": "--overwrite"},
    "restore-export weights": {"--checkpoint": "--model", "--force": "--overwrite"},
    "restore-bench": {"--checkpoint": "--model", "--quality-per-photo": "--heldout-per-photo"},
    "restore-demo": {"--steps": "--max-steps"},
}


def _parsed(cmd, args):
    """The option values click parses from `args` (no required-option checks, nothing runs)."""
    ctx = click.Context(cmd)
    opts, _, _ = cmd.make_parser(ctx).parse_args(list(args))
    return opts


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_older_names_are_hidden_aliases(name):
    cmd = dict(_leaf_commands())[name]
    help_text = CliRunner().invoke(COMMANDS[name.split()[0]], name.split()[1:] + ["--help"]).output
    for old, new in RENAMED[name].items():
        assert f"{old} " not in help_text and new in help_text, (name, old)
        param = next(p for p in cmd.params if new in p.opts)
        args = [] if param.is_flag else ["x.ckpt" if param.type.name == "path" else "3"]
        assert _parsed(cmd, [old, *args]) == _parsed(cmd, [new, *args]) != {}, (name, old)


def test_every_hidden_name_is_listed():
    from restore_toolkit.console import RenamedOption

    listed = {(name, old) for name, olds in RENAMED.items() for old in olds}
    found = {(name, old) for name, cmd in _leaf_commands() for p in cmd.params
             if isinstance(p, RenamedOption) for old in p.old_names}
    assert found == listed


def test_export_precision_flags_are_hidden_aliases(tmp_path):
    from export.cli import _chosen_precision

    help_text = CliRunner().invoke(export_cli, ["onnx", "--help"]).output
    assert "--precision [fp32|fp16|int8]" in help_text and "--fp16 " not in help_text and "--int8 " not in help_text
    assert [_chosen_precision(None, False, False), _chosen_precision(None, True, False),
            _chosen_precision(None, False, True), _chosen_precision("fp16", True, False)] == ["fp32", "fp16", "int8", "fp16"]
    result = CliRunner().invoke(export_cli, ["onnx", "--model", "x.ckpt", "-o", str(tmp_path / "m.onnx"),
                                             "--int8", "--fp16"])
    assert result.exit_code == 2 and "contradictory precisions: fp16, int8" in result.output
    result = CliRunner().invoke(export_cli, ["onnx", "--model", "x.ckpt", "-o", str(tmp_path / "m.onnx"),
                                             "--precision", "fp32", "--int8"])
    assert result.exit_code == 2


def test_bench_device_all_is_the_older_auto():
    from benchmarks.cli import DeviceChoice

    assert DeviceChoice().convert("all", None, None) == "auto"
    assert "[auto|cpu|cuda]" in CliRunner().invoke(bench_cli, ["--help"]).output


def test_one_device_vocabulary():
    """Every --device takes auto|cpu|cuda."""
    for name, cmd in _leaf_commands():
        for p in cmd.params:
            if "--device" in p.opts:
                assert list(p.type.choices) == ["auto", "cpu", "cuda"], name


@pytest.mark.parametrize("name,cmd", list(_leaf_commands()), ids=[n for n, _ in _leaf_commands()])
def test_every_path_option_refuses_an_empty_name(name, cmd):
    # Path("") is the current folder: an empty name read as "." or, where the option has a
    # default, as no option at all (a run from scratch, a benchmark of random weights).
    paths = [p for p in cmd.params if isinstance(p.type, click.Path)]
    for param in paths:
        assert isinstance(param.type, NamedPath), f"{name} {param.opts[0]}: a plain click.Path"


@pytest.mark.parametrize("cmd,args,option", [
    (train_cli, ["--init", "", "-o", "{tmp}/run"], "--init"),
    (train_cli, ["--resume", "  ", "-o", "{tmp}/run"], "--resume"),
    (bench_cli, ["--model", ""], "--model"),
    (export_cli, ["onnx", "--model", "", "-o", "{tmp}/m.onnx"], "--model"),
    (validate_cli, ["--model", "", "--heldout", "-o", "{tmp}/v"], "--model"),
    (demo_cli, ["--model", "", "-o", "{tmp}/d"], "--model"),
    (run_cli, ["--model", "", "{tmp}", "{tmp}/o"], "--model"),
])
def test_an_empty_path_is_a_usage_error_naming_the_option(cmd, args, option, tmp_path):
    result = CliRunner().invoke(cmd, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert f"{option}': empty; name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_empty_init_in_a_config_is_named(tmp_path):
    from restore_core.config import Config, ConfigError, validate

    cfg = Config()
    cfg.train.init = ""
    with pytest.raises(ConfigError, match="'train.init' is empty"):
        validate(cfg)
