"""No function of the package is over cyclomatic complexity 15 (radon's count, boolean operators
included): past that, a function is split into named steps, as the rest of the code reads."""

import pathlib

import pytest

radon = pytest.importorskip("radon.complexity", reason="pip install -e '.[test]' brings radon")

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("restore_toolkit", "runtime", "restore_core", "export", "benchmarks", "restore_demo")
LIMIT = 15


def test_no_function_is_over_the_limit():
    over = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for block in radon.cc_visit(path.read_text(encoding="utf-8")):
                if block.complexity > LIMIT:
                    over.append(f"{path.relative_to(ROOT)}:{block.lineno} {block.name} ({block.complexity})")
    assert not over, "split into named steps: " + "; ".join(over)
