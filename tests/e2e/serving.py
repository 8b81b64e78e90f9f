"""`pulse serve` started by a test on a port the server itself chose (`--port 0`).

A port picked by the test (bind to 0, close, pass the number on) can be picked again by another xdist
worker before the server binds it; two servers with SO_REUSEPORT would then share it silently and
answer each other's requests. The server's own `serving ... on http://host:port/` line says which port
it holds."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

PULSE = str(Path(sys.executable).parent / "pulse")
ANNOUNCED = re.compile(r" on http://[^\s/]+:(\d+)/api/v4/")


def announced_port(process: subprocess.Popen, timeout: float = 60) -> int:
    """Read the server's stderr up to its `serving ... on` line and return the port in it (the rest
    of stderr is left to the caller). Raises with what it printed when it exits or stays silent."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in iter(process.stderr.readline, "" if process.text_mode else b""):
            text = line if isinstance(line, str) else line.decode(errors="replace")
            lines.put(text)
            if ANNOUNCED.search(text):
                return
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if match := ANNOUNCED.search(line):
            return int(match.group(1))
    process.kill()
    raise RuntimeError(f"`pulse serve` announced no port: {''.join(seen)[-2000:]}")


def start_serve(env: dict[str, str], *args: str, **popen: object) -> tuple[subprocess.Popen, int]:
    """`pulse serve --port 0 *args` and the port it announced (it may not answer yet)."""
    process = subprocess.Popen([PULSE, "serve", "--port", "0", *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, **popen)
    return process, announced_port(process)
