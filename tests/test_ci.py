"""The README's test command is the one CI runs, character for character."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*Run the tests\*\*.*?```bash\n(.*?)\n```", readme, re.S)
    assert block, "README has no 'Run the tests' command"
    command = block.group(1).strip()
    assert "\n" not in command and command.endswith("lint-imports && pytest"), command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci, f".ci/run does not run the README's test command:\n{command}"
