"""`restore-bench`: every deployment path of the restoration model, timed on the same photos and
weights, with parity against eager PyTorch fp32.

Reading order: timing.py (the harness), peak.py (the machine's fp32 matmul peak), inputs.py
(corrupted photos), context.py (the model and its exported files), backend.py (the protocol),
backends_torch.py and backends_onnx.py (one class per path), backends.py (their list),
subject.py (the model under test), reference.py (parity and quality against the reference),
runner.py (one run into a report), report.py (JSON, Markdown, tables, --compare), cli.py.
"""
