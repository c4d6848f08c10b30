"""The bottom floor: what the trainer, the exporter and the torch-free runtime all need, once.

- `fileio`: atomic, durable writes (every artifact appears complete or not at all);
- `messages`: one line per error;
- `console`: the conventions of every `restore-*` command line;
- `corruption`: the synthetic squares and circles painted over clean images;
- `scores`: PSNR and mask IoU; `sheet`: before / mask / after / original contact sheets;
- `room`: the memory this process can still get (available memory, cgroup, `ulimit -v`).

Standard library, click, numpy and Pillow only, and nothing from the packages above it
(`runtime`, `restore_core`, `export`, `benchmarks`, `restore_demo`): the layers contract in
pyproject.toml, checked by `lint-imports`, keeps it so. Importing this package itself loads
nothing but the version, so a command's `--help` stays instant.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("restore-toolkit")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
