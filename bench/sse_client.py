"""Many Server-Sent Events streams from one client process, for bench/feed.py: raw sockets
that send the request and then read and count events, cheap so that the server keeps the cores."""

from __future__ import annotations

import multiprocessing
import os
import resource
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

EVENT_MARK = b"event: incident\n"
# The last chunk of a chunked response: the feed ended the stream (and keeps the connection).
END_MARK = b"\r\n0\r\n\r\n"
TAIL = max(len(EVENT_MARK), len(END_MARK)) - 1
SAMPLED_STREAMS = 20

# -- the stream client (a process of its own) --------------------------------------------


def _open_stream(port: int, token: str) -> tuple[socket.socket | None, int | str, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        (
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = sock.recv(65536)
        if not data:
            sock.close()
            return None, "closed before headers", b""
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        sock.close()
        return None, status, b""
    sock.setblocking(False)
    return sock, 200, rest


class Chunks:
    """Decodes the chunked framing of one stream: the size of each chunk (one write of the feed:
    a batch of events, a heartbeat)."""

    def __init__(self, initial: bytes) -> None:
        self.buffer = bytearray()
        self.need: int | None = None
        self.sizes: list[int] = []
        self.done = False
        self.feed(initial)

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while not self.done:
            if self.need is None:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
                del self.buffer[: end + 2]
                if size == 0:
                    self.done = True
                    return
                self.need = size
            if len(self.buffer) < self.need + 2:
                return
            self.sizes.append(self.need)
            del self.buffer[: self.need + 2]
            self.need = None


def stream_client(
    pipe, port: int, token: str, count: int, read_interval: float, connect_threads: int
) -> None:
    """Open ``count`` streams, report, read them until told to stop, report the event counts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.perf_counter()
    with ThreadPoolExecutor(connect_threads) as pool:
        opened = list(pool.map(lambda _: _safe_open(port, token), range(count)))
    socks = [s for s, _, _ in opened if s is not None]
    failures: dict[str, int] = {}
    for s, status, _ in opened:
        if s is None:
            failures[str(status)] = failures.get(str(status), 0) + 1
    events = {s.fileno(): rest.count(EVENT_MARK) for s, _, rest in opened if s is not None}
    tails = {s.fileno(): rest[-TAIL:] for s, _, rest in opened if s is not None}
    sampled = {s.fileno(): Chunks(rest) for s, _, rest in opened[:SAMPLED_STREAMS] if s is not None}
    received = dict.fromkeys(events, 0)
    ended: set[int] = set()  # connection closed by the feed
    finished: dict[int, float] = {}  # stream ended by the feed (last chunk), when
    last_event = time.monotonic()
    by_fd = {s.fileno(): s for s in socks}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    pipe.send(
        {"opened": len(socks), "failures": failures, "seconds": round(time.perf_counter() - started, 2)}
    )

    def read_ready() -> int:
        nonlocal last_event
        got = 0
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            while True:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    ended.add(fd)
                    poller.unregister(fd)
                    break
                got += len(data)
                received[fd] += len(data)
                if fd in sampled:
                    sampled[fd].feed(data)
                buffer = tails[fd] + data
                found = buffer.count(EVENT_MARK)
                if found:
                    events[fd] += found
                    last_event = time.monotonic()
                tails[fd] = buffer[-TAIL:]
                if END_MARK in buffer and fd not in finished:
                    finished[fd] = time.monotonic()
        return got

    deadline = time.monotonic() + 3600  # bounded: the parent stops it long before
    while time.monotonic() < deadline and not pipe.poll(read_interval):
        read_ready()
    message = pipe.recv()
    # Told to stop once the feed has read every event: read on until the sockets are quiet
    # for a second (what the feed still had queued), at most 60 s. Told to abort: close now.
    stop_at = time.monotonic()
    quiet_since = stop_at
    while message == "stop" and time.monotonic() - quiet_since < 1.0 and time.monotonic() - stop_at < 60:
        time.sleep(read_interval)
        if read_ready():
            quiet_since = time.monotonic()
    for sock in socks:
        sock.close()
    pipe.send(
        {
            "events": sorted(events.values()),
            "bytes": sum(received.values()),
            "connections_closed_by_server": len(ended),
            "ended_by_server": len(finished),
            "ended_by_server_monotonic": sorted(finished.values())[:: max(1, len(finished) // 50)],
            "sampled_streams_chunks": {
                "streams": len(sampled),
                "chunks_each": [len(c.sizes) for c in sampled.values()],
                "largest_chunk_bytes": max((max(c.sizes, default=0) for c in sampled.values()), default=0),
                "last_chunks_of_first_bytes": next(iter(sampled.values())).sizes[-8:] if sampled else [],
            },
            "last_event_monotonic": last_event,
            "client_cpu_s": round(sum(os.times()[:2]), 2),
        }
    )


def _safe_open(port: int, token: str):
    try:
        return _open_stream(port, token)
    except OSError as error:
        return None, type(error).__name__, b""


class Streams:
    """N open streams held by a client process."""

    def __init__(self, port: int, token: str, count: int, read_interval: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child_end = context.Pipe()
        self.process = context.Process(
            target=stream_client, args=(child_end, port, token, count, read_interval, 32), daemon=True
        )
        self.lock = threading.Lock()
        self.result: dict | None = None
        self.process.start()
        if not self.pipe.poll(300):
            self.process.kill()
            raise SystemExit(f"the stream client did not open {count} streams within 300 s")
        self.opened = self.pipe.recv()

    def stop(self, message: str = "stop", wait: float = 120) -> dict | None:
        """Close the streams ("stop": after reading what is still coming; "abort": at once) and
        return the client's counts; None if it did not report within ``wait`` s (then it is
        killed, and the kernel closes its sockets)."""
        with self.lock:
            if self.result is None and self.process.is_alive():
                try:
                    self.pipe.send(message)
                    if self.pipe.poll(wait):
                        self.result = self.pipe.recv()
                except (EOFError, OSError):
                    pass
            if self.result is None:
                self.process.kill()
            self.process.join(30)
            return self.result
