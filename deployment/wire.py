"""Bytes on the wire: a loopback TCP relay between a SuperNode and the SuperLink that counts what passes each way.

TLS passes through untouched (the relay sees ciphertext only), so the figure is what the site's network carries.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


@dataclass
class WireCount:
    """Bytes a site sent to the SuperLink (up) and received from it (down)."""

    up: int = 0
    down: int = 0


@dataclass
class CountingRelay:
    """Listens on 127.0.0.1:port (0 = any free port) and relays each connection to target, counting bytes."""

    target_host: str
    target_port: int
    count: WireCount = field(default_factory=WireCount)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def start(self) -> int:
        """Start relaying in a background thread; return the port to connect to."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port))
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            server.close()
            connections = asyncio.all_tasks(self._loop)
            for task in connections:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="wire-relay", daemon=True)
        self._thread.start()
        ready.wait()
        return self.port

    def stop(self) -> None:
        """Stop relaying."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, upstream_writer, up=True), self._pipe(upstream_reader, writer, up=False)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if up:
                    self.count.up += len(chunk)
                else:
                    self.count.down += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
