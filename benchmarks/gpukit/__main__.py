"""`python -m benchmarks.gpukit prepare|plan|install|check` (and the internal `probe`, `console`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]
KIT_DIR = ROOT / ".gpukit"  # ignored by git: pieces, manifest, plan


def _prepare(args) -> int:
    from benchmarks.gpukit.pack import describe, fetch_wheels, pack
    from benchmarks.gpukit.plan import make_plan, piece_budget, tree_bytes, write_plan

    kit_dir = args.kit_dir.resolve()
    kit_dir.mkdir(parents=True, exist_ok=True)
    tree, _ = tree_bytes(ROOT)
    max_piece = int(args.piece_mib * 2**20) if args.piece_mib else piece_budget(tree, margin=int(args.margin_mib * 2**20))
    wheels, notes = fetch_wheels(kit_dir, args.wheel, args.extra_wheel)
    for line in notes:
        print(line)
    print(f"working tree {tree / 2**20:.1f} MiB: pieces of at most {max_piece / 2**20:.1f} MiB; compressing...", flush=True)
    manifest = pack(wheels, kit_dir, max_piece, preset=args.preset)
    for line in describe(manifest):
        print(line)
    return _write_plan(kit_dir, manifest, args.margin_mib, make_plan, write_plan)


def _plan(args) -> int:
    from benchmarks.gpukit.pack import MANIFEST, load_manifest
    from benchmarks.gpukit.plan import make_plan, write_plan

    kit_dir = args.kit_dir.resolve()
    return _write_plan(kit_dir, load_manifest(kit_dir / MANIFEST), args.margin_mib, make_plan, write_plan)


def _write_plan(kit_dir: Path, manifest, margin_mib: float, make_plan, write_plan) -> int:
    plan = make_plan(ROOT, kit_dir, manifest, margin=int(margin_mib * 2**20))
    json_path, md_path = write_plan(kit_dir, plan)
    worst = max(c["bytes"]["total"] for c in plan["calls"]) / 2**20
    print(f"{len(plan['calls'])} call(s), the largest carrying {worst:.1f} MiB of {plan['limit_bytes'] / 2**20:.0f}; "
          f"plan: {md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path} (and {json_path.name})")
    return 0


def _install(args) -> int:
    from benchmarks.gpukit.install import install, stash

    state = stash(args.source.resolve(), args.stash)
    total = len(state["manifest"]["pieces"])
    print(f"pieces in {args.stash}: {len(state['have'])}/{total}"
          + (f" (missing: {', '.join(state['missing'])})" if state["missing"] else ""))
    if state["missing"]:
        return 0  # staged: a later call brings the rest
    done = install(args.stash)
    print(f"{'already installed' if done['reused'] else 'installed'}: {done['files']} files in {done['site']} "
          f"(archive sha256 {done['archive_sha256'][:16]}... verified)")
    return 0


def _check(args) -> int:
    from benchmarks.gpukit.run import run_check

    site = args.site if args.site is not None else args.stash / "site"
    return run_check(args.out, args.work, site, args.budget_s)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["console"]:  # everything after the command's name is its own
        from benchmarks.gpukit.check import console_main

        return console_main(argv[1:])
    if argv[:1] == ["probe"]:
        from benchmarks.gpukit.steps import probe_main

        return probe_main(argv[1:])
    from benchmarks.gpukit.check import CHECK_BUDGET_S
    from benchmarks.gpukit.install import DEFAULT_STASH
    from benchmarks.gpukit.pack import XZ_PRESET
    from benchmarks.gpukit.plan import MARGIN_BYTES

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpukit", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("prepare", help="here: fetch the wheels, pack, split and write the plan")
    p.add_argument("--kit-dir", type=Path, default=KIT_DIR, help="where pieces and the plan go (git-ignored)")
    p.add_argument("--wheel", type=Path, help="an onnxruntime-gpu wheel to use instead of downloading it")
    p.add_argument("--extra-wheel", type=Path, action="append",
                   help="wheels to add instead of downloading pypng (repeatable)")
    p.add_argument("--piece-mib", type=float, help="piece size (default: what the limit leaves beside the tree)")
    p.add_argument("--margin-mib", type=float, default=MARGIN_BYTES / 2**20, help="room kept free in each transfer")
    p.add_argument("--preset", type=int, default=XZ_PRESET, choices=range(10), help="xz preset")
    p.set_defaults(run=_prepare)
    p = sub.add_parser("plan", help="here: re-measure the working tree and rewrite the plan")
    p.add_argument("--kit-dir", type=Path, default=KIT_DIR)
    p.add_argument("--margin-mib", type=float, default=MARGIN_BYTES / 2**20)
    p.set_defaults(run=_plan)
    p = sub.add_parser("install", help="there: stage the carried pieces; unpack when all are there")
    p.add_argument("--from", dest="source", type=Path, default=KIT_DIR, help="folder holding the carried transfer folders")
    p.add_argument("--stash", type=Path, default=DEFAULT_STASH, help="where pieces and the install live between calls")
    p.set_defaults(run=_install)
    p = sub.add_parser("check", help="there: the five steps; reports in --out")
    p.add_argument("--out", type=Path, required=True, help="folder for the report (at most 8 files)")
    p.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    p.add_argument("--stash", type=Path, default=DEFAULT_STASH)
    p.add_argument("--site", type=Path, help="the private install (default: STASH/site)")
    p.add_argument("--budget-s", type=float, default=CHECK_BUDGET_S, help="the whole check's time limit")
    p.set_defaults(run=_check)
    args = parser.parse_args(argv)
    from benchmarks.gpukit.install import InstallError
    from benchmarks.gpukit.pack import PackError
    from benchmarks.gpukit.plan import PlanError

    try:
        return args.run(args)
    except (PackError, PlanError, InstallError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
