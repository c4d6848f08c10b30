"""Batch restoration through ONNX Runtime, without PyTorch.

`from runtime import Restorer` is the embedding API; `restore-run` is its command line.
Importing this package imports nothing heavy: the Restorer (and onnxruntime) load on first use.
"""

__all__ = ["Restorer", "Restoration"]


def __getattr__(name):
    # Lazy so that `import runtime.metadata` (used by the exporter) stays cheap.
    if name in __all__:
        from runtime import restorer

        return getattr(restorer, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
