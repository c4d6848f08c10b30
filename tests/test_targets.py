"""Where a command writes is checked first (restore_toolkit/targets.py)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from restore_toolkit.console import handle_errors
from restore_toolkit.targets import TargetError, check_file, check_folder


def test_a_file_target_refuses_what_would_lose_something(tmp_path):
    (tmp_path / "user.json").write_text("{}")
    (tmp_path / "run").mkdir()
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.write_bytes(b"weights")
    cases = [("", "an empty path"), (tmp_path / "run", "is a folder"), (tmp_path / "user.json", "already exists; pass --overwrite")]
    for path, says in cases:
        with pytest.raises(TargetError, match=says):
            check_file(path, "--report")
    with pytest.raises(TargetError, match=r"--report .*last.ckpt: is also an input of this command"):
        check_file(tmp_path / "run" / ".." / "run" / "last.ckpt", "--report", overwrite=True, inputs=[ckpt])
    with pytest.raises(TargetError, match="is also another output"):
        check_file(tmp_path / "r.md", "--markdown", outputs=[None, tmp_path / "r.md"])
    assert check_file(tmp_path / "user.json", "--report", overwrite=True) == tmp_path / "user.json"
    assert check_file(tmp_path / "user.json", "--report", ours=lambda p: p.read_text() == "{}")
    assert check_file(tmp_path / "new" / "deeper" / "r.json", "--report").parent.is_dir()
    assert (tmp_path / "user.json").read_text() == "{}" and ckpt.read_bytes() == b"weights"


def test_a_folder_target_refuses_one_holding_what_it_writes(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.ckpt").write_bytes(b"w")
    with pytest.raises(TargetError, match="an empty path"):
        check_folder("", "--output")
    with pytest.raises(TargetError, match="is a file"):
        check_folder(tmp_path / "a_file", "--output")
    with pytest.raises(TargetError, match=r"already holds best.ckpt; pass --overwrite"):
        check_folder(tmp_path / "run", "--output", writes=["best.ckpt", "last.ckpt"])
    assert check_folder(tmp_path / "run", "--output", overwrite=True, writes=["best.ckpt"]) == tmp_path / "run"
    assert check_folder(tmp_path / "fresh", "--output", writes=["best.ckpt"]).is_dir()


def test_an_unwritable_place_is_said_in_one_line_by_every_command(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)  # as a locked folder answers a non-root user

    @click.command()
    @handle_errors(lambda: (), "nothing written")
    def command():
        check_file(tmp_path / "out.json", "--report")

    result = CliRunner().invoke(command, [])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: --report {tmp_path / 'out.json'}: cannot write there (Permission denied)"
