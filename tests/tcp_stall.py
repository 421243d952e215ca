"""A TCP relay that can stall: the network between the server and Redis dropping packets.

Connections are still accepted (the kernel does that) and what clients send is read and
counted, but while stalled nothing reaches the real server behind, and nothing comes back,
so a client waits for its socket timeout, as behind a dead link or a frozen server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class StallingRelay:
    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.flowing = threading.Event()
        self.flowing.set()
        self.held_bytes = 0  # sent by clients while stalled: what they still asked of Redis
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
        self._pump(client, server, True)

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if not self.flowing.is_set():
                    if from_client:
                        self.held_bytes += len(data)
                    continue  # dropped: the link is dead, the client will time out
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.close()


@contextmanager
def stalling_relay(port: int) -> Iterator[StallingRelay]:
    relay = StallingRelay(("127.0.0.1", port))
    try:
        yield relay
    finally:
        relay.close()
