"""An HTTP request handler served on a background thread for the length of a block.

The privacy marshaller runs this way (`mlplat monitor serve`, the demo), and so can anything that
stands in for a server beside the code under way: one owner of the order that leaves no port or thread
behind (stop the serving loop, close the socket, join the thread).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0, poll_interval: float = 0.5
) -> Iterator[str]:
    """Serve `handler` on `host`:`port` (0: a free port) for the block; yields the base URL.

    Leaving the block waits for the serving loop's next poll (`poll_interval` seconds, the standard
    library's default 0.5): a stand-in started once per test passes a shorter one."""
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def tcp_port(text: str) -> int:
    """An argparse type for a port to serve on: 0-65535, refused when parsed rather than by bind() later."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535)")
    return port
