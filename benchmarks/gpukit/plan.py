"""`plan`: how many bytes each transfer to the GPU machine carries, and the calls to send.

A transfer carries the project's working tree (tracked files and untracked files git does not
ignore, and a `shared/` folder inside the checkout) plus the paths a call names in `carry`, at
most 64 MiB in all. The kit's pieces live in an ignored folder, one `transfer-K/` folder per call,
so each call carries exactly one piece. The piece size is what the limit leaves beside the tree,
less a margin for files added before the calls are sent.

The machine keeps files between calls only while it stays held (gaps under about 30 s), so every
call copies its piece out of the fresh checkout into /tmp/gpukit, and the last one reassembles,
installs and runs the check. The plan is written as JSON (for a script) and Markdown (to read).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

from restore_toolkit.fileio import atomic_write_text

LIMIT_BYTES = 64 * 2**20  # one transfer: working tree + carried paths
MARGIN_BYTES = 4 * 2**20  # room for commits made between `prepare` and the calls
STAGE_TIMEOUT_S = 120  # copying one piece and checking its sha256 takes seconds
FINAL_TIMEOUT_S = 600  # install (~30 s) + the check's own budget (CHECK_BUDGET_S)
STAGE_COMMAND = "python3 -m benchmarks.gpukit install --from {kit}"
CHECK_COMMAND = 'PYTHONUNBUFFERED=1 python3 -m benchmarks.gpukit check --out "$OUT"'


class PlanError(RuntimeError):
    """A transfer would exceed the limit (or the tree cannot be measured); the message says which."""


def _git_files(root: Path) -> List[str]:
    done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                          capture_output=True)
    if done.returncode != 0:
        raise PlanError(f"{root}: not a git checkout ({done.stderr.decode(errors='replace').strip()})")
    return [p for p in done.stdout.decode("utf-8", errors="surrogateescape").split("\0") if p]


def tree_bytes(root: Path) -> Tuple[int, int]:
    """(bytes, files) of what travels with every call: tracked and untracked-not-ignored files,
    and `shared/` where the checkout holds one (it travels even when ignored)."""
    paths = set(_git_files(root))
    shared = root / "shared"
    if shared.is_dir():
        paths |= {str(p.relative_to(root)) for p in shared.rglob("*") if not p.is_dir()}
    total = files = 0
    for rel in paths:
        try:
            total += os.lstat(root / rel).st_size  # a link travels as a link
            files += 1
        except FileNotFoundError:  # tracked but deleted in the working tree
            pass
    return total, files


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def piece_budget(tree: int, limit: int = LIMIT_BYTES, margin: int = MARGIN_BYTES, manifest: int = 64 * 1024) -> int:
    """Largest piece one call can carry beside the tree (its manifest copy included)."""
    budget = limit - tree - margin - manifest
    if budget < 2**20:
        raise PlanError(f"the working tree weighs {tree / 2**20:.1f} MiB: less than 1 MiB is left of the "
                        f"{limit / 2**20:.0f} MiB a transfer may carry (margin {margin / 2**20:.0f} MiB)")
    return budget


def make_plan(root: Path, kit_dir: Path, manifest: Dict, limit: int = LIMIT_BYTES, margin: int = MARGIN_BYTES) -> Dict:
    """The calls to send, each with its command, carry list, timeout and bytes; raises PlanError
    when one would carry more than `limit` (the tree grew: run prepare again)."""
    tree, files = tree_bytes(root)
    kit = kit_dir.resolve().relative_to(root.resolve()).as_posix()
    stage = STAGE_COMMAND.format(kit=kit)
    calls = []
    pieces = manifest["pieces"]
    for k, piece in enumerate(pieces, 1):
        folder = kit_dir / piece["folder"]
        carried = folder_bytes(folder)
        last = k == len(pieces)
        calls.append({
            "call": k,
            "tool": "run",
            "command": f"{stage}; {CHECK_COMMAND}" if last else stage,
            "carry": [f"{kit}/{piece['folder']}"],
            "timeout_s": FINAL_TIMEOUT_S if last else STAGE_TIMEOUT_S,
            "bytes": {"tree": tree, "carried": carried, "total": tree + carried, "limit": limit},
            "expect": ("pieces complete; installed into /tmp/gpukit/site; then the check's five steps and "
                       "its report in $OUT (at most 8 files)") if last else
                      f"piece {k} of {len(pieces)} staged in /tmp/gpukit ({k} of {len(pieces)} present)",
        })
    over = [c for c in calls if c["bytes"]["total"] > limit]
    if over:
        c = over[0]
        raise PlanError(f"call {c['call']} would carry {c['bytes']['total'] / 2**20:.1f} MiB (tree "
                        f"{tree / 2**20:.1f} MiB + {c['carry'][0]} {c['bytes']['carried'] / 2**20:.1f} MiB), over "
                        f"the {limit / 2**20:.0f} MiB limit: run `python -m benchmarks.gpukit prepare` again")
    return {"schema": "gpukit-plan/1", "root": str(root), "tree": {"bytes": tree, "files": files},
            "limit_bytes": limit, "margin_bytes": margin, "archive_sha256": manifest["archive"]["sha256"],
            "calls": calls}


def render_markdown(plan: Dict) -> str:
    """The plan for a reader: the rules, then each call as the `run` tool's arguments."""
    calls = plan["calls"]
    mib = 2**20
    lines = [
        "# GPU proof kit: the calls to send",
        "",
        f"Archive sha256 `{plan['archive_sha256']}`. Every call carries the working tree "
        f"({plan['tree']['bytes'] / mib:.1f} MiB, {plan['tree']['files']} files, measured when this plan was written) "
        f"and one piece; the limit is {plan['limit_bytes'] / mib:.0f} MiB.",
        "",
        "- Send the calls in order and **back to back**: the machine keeps /tmp only while it is held (gaps under",
        "  about 30 s). Each call prints which pieces /tmp/gpukit holds; if one says earlier pieces are missing,",
        "  the machine was replaced: start again at call 1 if device time allows, else send the last call anyway",
        "  (the check then runs every step that needs no onnxruntime-gpu and says why the others failed).",
        "- The last call prints the check's summary; its files come back from $OUT. Then hand the machine back.",
        "- Device time: a minute or more to start the machine, seconds per staging call plus its transfer, and at",
        f"  most {FINAL_TIMEOUT_S // 60} minutes for the last call (the check itself stops within its budget).",
        "- Commit `gpukit-report.md`/`.json` and the bench files under `benchmarks/results/` with the machine named.",
        "",
        "| call | carry | MiB carried | MiB in all | timeout_s | command |",
        "| ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for c in calls:
        b = c["bytes"]
        lines.append(f"| {c['call']} | `{c['carry'][0]}` | {b['carried'] / mib:.1f} | {b['total'] / mib:.1f} | "
                     f"{c['timeout_s']} | `{c['command']}` |")
    lines += ["", "Each call as the `run` tool's arguments:", ""]
    for c in calls:
        args = {"command": c["command"], "carry": c["carry"], "timeout_s": c["timeout_s"]}
        lines += [f"{c['call']}. {c['expect']}", "", "```json", json.dumps(args), "```", ""]
    return "\n".join(lines)


def write_plan(kit_dir: Path, plan: Dict) -> Tuple[Path, Path]:
    json_path, md_path = kit_dir / "plan.json", kit_dir / "plan.md"
    atomic_write_text(json_path, json.dumps(plan, indent=2) + "\n")
    atomic_write_text(md_path, render_markdown(plan))
    return json_path, md_path
