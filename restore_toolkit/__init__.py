"""What the four packages share and which imports nothing heavy: the toolkit's version and the
conventions of its command lines (`console`).

`restore_core`, `export`, `runtime` and `benchmarks` may all import this package; it imports
only the standard library and click, so a command's `--help` stays instant.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("restore-toolkit")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
