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
    from restore_core.cli import TRAIN_OPTIONS
    from restore_core.config import Config, config_to_dict

    built_in = config_to_dict(Config())
    for option, (key, shown) in TRAIN_OPTIONS.items():
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
    result = CliRunner().invoke(export_cli, ["onnx", "--checkpoint", str(tmp_path / "a.ckpt"),
                                             "--output", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pip install 'restore-toolkit[export]'" in lines[0]
    assert f"needs {missing}" in lines[0]


@pytest.mark.parametrize("cmd,args,patch,needle", [
    (validate_cli, ["--checkpoint", "x.ckpt", "--data", "d", "-o", "o"], "restore_core.validate.validate",
     "metrics.json was not written"),
    (export_cli, ["onnx", "--checkpoint", "x.ckpt", "--output", "m.onnx"], "export.onnx_export.check_opset",
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
