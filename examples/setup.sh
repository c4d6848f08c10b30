#!/usr/bin/env bash
# Install the npm packages of the non-Python examples (examples/node, examples/web) from their
# lock files. Their tests skip when this has not run; without node/npm it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "examples/setup.sh: node or npm not found; skipping (the examples' tests will skip)"
  exit 0
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "examples/setup.sh: node $(node --version) is older than 18; skipping (the examples' tests will skip)"
  exit 0
fi

# onnxruntime-node's install step would fetch CUDA provider libraries from outside the npm
# registry; its CPU runtime is inside the package, which is all the example uses.
export ONNXRUNTIME_NODE_INSTALL=skip

status=0
for dir in node web; do
  echo "examples/setup.sh: npm ci in examples/$dir"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "examples/setup.sh: npm ci failed in examples/$dir; its tests will skip" >&2
    status=1
  fi
done
# A failed install must not stop the Python suite: report it above and carry on.
[ "$status" -eq 0 ] || echo "examples/setup.sh: finished with errors (see above)"
exit 0
