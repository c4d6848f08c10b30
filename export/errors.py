"""The error every export raises when it cannot finish; nothing is written then.

Its own module, below every other one of `export`: the parity check (`export.verify`) raises
its subclass `ParityError` and the exporters that run that check raise it too, so it can belong
to neither without a cycle.
"""


class ExportError(RuntimeError):
    """An export that could not be completed; nothing was written."""
