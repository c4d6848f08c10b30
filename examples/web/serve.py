"""Serve examples/ for the browser example, cross-origin isolated, on 127.0.0.1.

    python examples/web/serve.py [--port 8000]   ->   http://127.0.0.1:8000/web/

Every response carries `Cross-Origin-Opener-Policy: same-origin` and
`Cross-Origin-Embedder-Policy: require-corp`, so the page is cross-origin isolated
(`self.crossOriginIsolated`): browsers then allow SharedArrayBuffer and ONNX Runtime Web runs its
threaded SIMD WebAssembly build (a plain `python -m http.server` sends neither header, and the
page falls back to one thread). Everything the page loads comes from this origin. Python's
standard library only.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class IsolatedHandler(SimpleHTTPRequestHandler):
    """A static file handler that makes the page cross-origin isolated."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm"}

    def end_headers(self):
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def make_server(port: int = 0, directory: Path = EXAMPLES, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for `directory` on 127.0.0.1 (`port` 0: an ephemeral one); call serve_forever()."""
    handler = functools.partial(IsolatedHandler, directory=str(directory))
    if quiet:
        handler = functools.partial(_Quiet, directory=str(directory))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


class _Quiet(IsolatedHandler):
    def log_message(self, format, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = make_server(args.port)
    print(f"serving {EXAMPLES} cross-origin isolated at http://127.0.0.1:{server.server_address[1]}/web/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
