"""The GPU proof kit: prepared here, sent to a GPU machine in a few calls, proves every CUDA path.

A GPU machine is at hand only now and then, for minutes, with no network and at most 64 MiB per
transfer. What it lacks (onnxruntime-gpu, pypng) is prepared here and travels in pieces; one
command there reassembles and installs it into a private folder and runs the check: ORT's CUDA
provider loads, the tiny model trains with CUDA AMP and exports, `restore-run --device cuda`
equals the CPU run, and restore-bench times every CUDA row. See docs/gpu-kit.md.

    python -m benchmarks.gpukit prepare     # here: pieces and the plan of calls (.gpukit/plan.md)
    python -m benchmarks.gpukit plan        # here: re-measure the tree, rewrite the plan
    python -m benchmarks.gpukit install     # there: stage the carried piece; install when complete
    python -m benchmarks.gpukit check       # there: the five steps, reports in --out

Reading order: pack.py (prepare), plan.py (transfer sizes, the calls), install.py (there),
check.py (the run, its environment and time limits), steps.py (steps 1-4), report.py (step 5).
Importing this package imports nothing heavy; install runs on the standard library alone.
"""
