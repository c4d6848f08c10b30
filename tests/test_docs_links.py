"""Every figure in the docs is backed: each link and each results path the README, the model card
and docs/*.md name exists, and each committed benchmark result says which command made it on
which CPU."""

import itertools
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]
RESULTS = ROOT / "benchmarks" / "results"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target)
RESULT_PATH = re.compile(r"`((?:\.\./)*benchmarks/results/[^`\s]*)`")  # `benchmarks/results/x.{json,md}`


def _expand(path: str):
    """'a.{json,md}' -> ['a.json', 'a.md'] (shell-style braces, as the docs write them)."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(md: pathlib.Path):
    text = md.read_text(encoding="utf-8")
    headings = {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.+)$", text, re.M)}
    return headings | set(re.findall(r'<a id="([^"]+)"></a>', text))  # explicit anchors too


def _targets():
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target):  # not http(s):, mailto:
                yield doc, target
        for path in RESULT_PATH.findall(text):
            for one in _expand(path):
                # README names result paths from the root; docs/ ones may too.
                yield doc, one if one.startswith("..") or doc.parent == ROOT else "../" + one


TARGETS = sorted(set(_targets()), key=lambda t: (str(t[0]), t[1]))


@pytest.mark.parametrize("doc,target", TARGETS, ids=[f"{d.name}:{t}" for d, t in TARGETS])
def test_every_link_and_results_path_exists(doc, target):
    path, _, anchor = target.partition("#")
    file = (doc.parent / path).resolve() if path else doc
    assert file.exists(), f"{doc.relative_to(ROOT)} links {target}: no such file"
    if anchor and file.suffix == ".md":
        assert anchor in _anchors(file), f"{doc.relative_to(ROOT)} links {target}: no such heading"


def test_results_are_linked_from_the_docs():
    linked = {(d.parent / t.partition("#")[0]).resolve() for d, t in TARGETS}
    for result in sorted(RESULTS.glob("*.json")):
        assert result in linked or result.with_suffix(".md") in linked, f"{result.name} is linked from no doc"


@pytest.mark.parametrize("result", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_result_names_its_command_and_cpu(result):
    report = json.loads(result.read_text(encoding="utf-8"))
    command = report.get("command")
    sibling = result.with_name(result.stem + ".command.txt")
    assert command or sibling.is_file(), f"{result.name}: no command recorded"
    assert (report.get("machine") or {}).get("cpu"), f"{result.name}: the CPU is not named"


def test_slug_and_brace_expansion():
    assert _slug("How well it does on photos it never saw") == "how-well-it-does-on-photos-it-never-saw"
    assert _slug("`restore-run`: the ONNX contract") == "restore-run-the-onnx-contract"
    assert _expand("benchmarks/results/cpu-256.{json,md}") == ["benchmarks/results/cpu-256.json",
                                                                "benchmarks/results/cpu-256.md"]


FIGURE_ROW = re.compile(r"^\|.*\d\.\d", re.M)  # a table row holding a decimal figure


@pytest.mark.parametrize("doc", [ROOT / "README.md", ROOT / "MODEL_CARD.md"], ids=lambda p: p.name)
def test_tables_of_figures_sit_under_a_result(doc):
    """A table with a decimal figure in README.md or the model card sits in a section (the text
    from one heading to the next) that names a committed result under benchmarks/results/."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.M | re.S)
    for section in re.split(r"^(?=#{1,6} )", text, flags=re.M):
        rows = FIGURE_ROW.findall(section)
        if rows:
            heading = section.splitlines()[0] if section.startswith("#") else "(top)"
            assert "benchmarks/results/" in section, f"{doc.name} {heading}: figures with no result linked: {rows[0][:80]}"
