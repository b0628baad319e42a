"""Open streams and the fan-out of change events to them, each stream seeing only its scope.

Pure asyncio, no I/O of its own: the server (server/feed/app.py) writes what a stream's queue
holds. A batch of events is encoded once per distinct scope, not once per stream, so the wall
screens and operators (all of one scope) share one payload.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from server.auth.scope import Scope, scope_of
from server.auth.users import User
from server.errors import GridwatchError, TooManyRequests

# Bytes of events a stream may have waiting to be written; a client that falls this far behind
# (about 400 events) is dropped, and reconnects with Last-Event-ID (EventSource does so by itself):
# the feed's memory stays bounded however slowly its clients read.
LAG_LIMIT_BYTES = 512 * 1024
HEARTBEAT = b": keep-alive\n\n"
# What one write to a stream holds at most (see ``pieces``).
PIECE_BYTES = 32 * 1024


class FeedFull(GridwatchError):
    status = 503
    code = "feed_full"


def encode(document: dict) -> bytes:
    """One event as Server-Sent Events text."""
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return f"id: {document['id']}\nevent: incident\ndata: {data}\n\n".encode()


def events_past(chunk: bytes, after: int) -> bytes:
    """The events of an encoded chunk whose ids are above ``after``. A resuming stream is sent the
    backlog up to some id, and the first batch the listener publishes after it may begin below
    that id (notifications of one batch window span the backlog's end): those events were sent."""
    # Each event ends with a blank line, and its JSON has no raw newline (json.dumps escapes them).
    events = chunk.split(b"\n\n")[:-1]
    return b"".join(event + b"\n\n" for event in events if int(event[4 : event.index(b"\n")]) > after)


@dataclass(eq=False)
class Stream:
    """One open event stream: who reads it, until when, and what waits to be written."""

    user: User
    scope: Scope
    token_id: int | None = None  # the API token it was opened with
    session_id: int | None = None  # or the login session
    ends_at: float | None = None  # time.time() when its session ends unless renewed
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    closed: bool = False
    waiting_bytes: int = 0

    def behind(self) -> bool:
        """Whether its client reads too slowly to keep: it has more than ``LAG_LIMIT_BYTES``
        waiting. Asked before a batch, so a stream that keeps up takes any batch, however large
        a burst made it."""
        return self.waiting_bytes > LAG_LIMIT_BYTES

    def send(self, last_id: int, chunk: bytes) -> None:
        """Queue ``chunk`` (events up to ``last_id``, or 0 for a heartbeat) for writing."""
        if self.closed:
            return
        self.waiting_bytes += len(chunk)
        self.queue.put_nowait((last_id, chunk))

    async def next_chunk(self) -> tuple[int, bytes] | None:
        """What to write next, or None when the stream has ended."""
        item = await self.queue.get()
        if item is not None:
            self.waiting_bytes -= len(item[1])
        return item

    def close(self) -> None:
        """End the stream: its writer stops after what it is writing now."""
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.waiting_bytes = 0
        self.queue.put_nowait(None)


def visible(scope: Scope, row: dict, departments: dict[int, int | None]) -> bool:
    """Whether a change event (a tiles.change_events row) is in scope. Its grid_ids run from the
    county down to the incident's own grid; ``departments`` holds incidents' departments now."""
    if row["kind"] == "bulk":
        return True
    grid_ids = row["grid_ids"] or [None]
    return scope.sees(grid_id=grid_ids[-1], department_id=departments.get(row["incident_id"]))


def scoped_document(scope: Scope, document: dict) -> dict:
    """A bulk change as a limited viewer gets it: that something changed, not where or how much."""
    if document["kind"] == "bulk" and scope.kind != "all":
        return {"id": document["id"], "at": document["at"], "kind": "bulk"}
    return document


def pieces(
    scope: Scope, rows: list[dict], documents: list[dict], departments: dict[int, int | None]
) -> list[tuple[int, bytes]]:
    """The events this scope may read, encoded and cut into pieces of at most ``PIECE_BYTES``
    (a larger single event stands alone), each with the id of its last event. A stream's socket
    buffer then holds at most about one piece: the writer waits for it to drain before the next,
    and the pieces themselves are shared by every stream of the scope."""
    result: list[tuple[int, bytes]] = []
    piece: list[bytes] = []
    size = last_id = 0
    for row, document in zip(rows, documents, strict=True):
        if not visible(scope, row, departments):
            continue
        encoded = encode(scoped_document(scope, document))
        if piece and size + len(encoded) > PIECE_BYTES:
            result.append((last_id, b"".join(piece)))
            piece, size = [], 0
        piece.append(encoded)
        size += len(encoded)
        last_id = row["id"]
    if piece:
        result.append((last_id, b"".join(piece)))
    return result


class Hub:
    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = per_user
        self.total = total
        self._by_user: dict[int, set[Stream]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def streams(self) -> Iterable[Stream]:
        return [stream for streams in self._by_user.values() for stream in streams]

    def of_user(self, user_id: int) -> list[Stream]:
        return list(self._by_user.get(user_id, ()))

    def wants_departments(self) -> bool:
        return any(stream.scope.kind == "department" for stream in self.streams())

    def open(self, stream: Stream) -> None:
        mine = self._by_user.setdefault(stream.user.id, set())
        if len(mine) >= self.per_user:
            raise TooManyRequests(
                f"已打开 {len(mine)} 个实时连接，请关闭不用的页面 / {self.per_user} open event streams is the"
                " limit per user: close a tab or window that shows the live map",
                limit=self.per_user,
            )
        if self._count >= self.total:
            raise FeedFull(f"服务器实时连接已满 / the server holds its limit of {self.total} event streams")
        mine.add(stream)
        self._count += 1

    def remove(self, stream: Stream) -> None:
        stream.close()
        mine = self._by_user.get(stream.user.id)
        if mine is not None and stream in mine:
            mine.discard(stream)
            self._count -= 1
            if not mine:
                del self._by_user[stream.user.id]

    def publish(self, rows: list[dict], documents: list[dict], departments: dict[int, int | None]) -> None:
        by_scope: dict[str, list[tuple[int, bytes]]] = {}
        for stream in self.streams():
            if stream.behind():
                self.remove(stream)
                continue
            key = stream.scope.key
            if key not in by_scope:
                by_scope[key] = pieces(stream.scope, rows, documents, departments)
            for last_id, piece in by_scope[key]:
                stream.send(last_id, piece)

    def beat(self, now: float | None = None) -> int:
        """A heartbeat to every stream, and the end of those whose session ended or that fell
        behind; returns how many ended."""
        now = time.time() if now is None else now
        ended = 0
        for stream in self.streams():
            if stream.behind() or (stream.ends_at is not None and now >= stream.ends_at):
                self.remove(stream)
                ended += 1
            else:
                stream.send(0, HEARTBEAT)
        return ended

    def end_token(self, token_id: int) -> None:
        for stream in self.streams():
            if stream.token_id == token_id:
                self.remove(stream)

    def end_session(self, session_id: int) -> None:
        for stream in self.streams():
            if stream.session_id == session_id:
                self.remove(stream)

    def end_user(self, user_id: int) -> None:
        for stream in self.of_user(user_id):
            self.remove(stream)

    def rescope(self, users: dict[int, User | None]) -> None:
        """New scopes for these users' streams (their grids changed); None ends them."""
        for user_id, user in users.items():
            for stream in self.of_user(user_id):
                if user is None:
                    self.remove(stream)
                else:
                    stream.user, stream.scope = user, scope_of(user)
