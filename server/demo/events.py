"""The event log of the generated incidents, as binary COPY batches (see bulk.py).

One batch per kind of step, so that every text field of a batch is a constant: the same
actions, statuses, notes and data that server/incidents/service.py writes for each step.
Event ids run step by step; the log of one incident reads in time order (`ORDER BY at, id`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from server.demo.bulk import NEVER, Column, Constant

REJECT_REASON = "不属于受理范围"
REWORK_REASON = "核查未通过，退回重办"
EXTEND_NOTE = "申请延期获批"
ESCALATE_NOTE = "overdue / 超期自动升级"
SELF_HANDLE_NOTE = "网格员现场处置"
REGISTER_REASON = "涉及权属争议，需县级协调，暂列挂账"

# The steps that change a case's status, in the order a case takes them, and the status each
# leads to (a case takes each at most once).
_STATUS_STEPS = (
    ("accepted_at", "accepted"), ("first_dispatched_at", "dispatched"), ("started_at", "in_progress"),
    ("registered_at", "registered"), ("resumed_at", "in_progress"), ("first_resolved_at", "resolved"),
    ("reworked_at", "in_progress"), ("resolved_at", "resolved"), ("verified_at", "verified"),
)  # fmt: skip


def _iso(times_us: np.ndarray) -> np.ndarray:
    """UTC ISO 8601 with microseconds and offset, as datetime.isoformat() writes it."""
    text = np.datetime_as_string(times_us.astype("datetime64[us]"), unit="us")
    return np.char.add(text.astype("S26"), b"+00:00")


def _jsonb(parts: list[bytes | np.ndarray]) -> np.ndarray:
    """Concatenate constant bytes and fixed-width byte arrays into jsonb binary values."""
    result = np.array(b"\x01")
    for part in parts:
        result = np.char.add(result, part)
    return result


def _in_status(col: dict[str, np.ndarray], at: np.ndarray) -> dict[str, np.ndarray]:
    """For each status, which cases were in it at the time `at` (of those with one): the last
    status step taken by then decides."""
    rows = np.flatnonzero(at != NEVER)
    step = np.zeros(len(rows), dtype=np.int8)  # 0: reported, k: the k-th of _STATUS_STEPS
    for number, (name, _) in enumerate(_STATUS_STEPS, start=1):
        step[col[name][rows] <= at[rows]] = number
    statuses = ["reported", *(to_status for _, to_status in _STATUS_STEPS)]
    masks = {}
    for number, status in enumerate(statuses):
        mask = masks.setdefault(status, np.zeros(len(at), dtype=bool))
        mask[rows[step == number]] = True
    return masks


def event_batches(
    incidents: dict[str, tuple[str, np.ndarray]], departments: dict[int, str]
) -> Iterator[dict]:
    """Batches of incident_events rows (column → (type, values)) for the staged incidents."""
    col = {name: values for name, (_, values) in incidents.items()}
    ids, reported, dispatched = col["id"], col["reported_at"], col["first_dispatched_at"]
    first_due, due = col["first_due_at"], col["due_at"]
    on_spot = col["self_handled"].astype(bool)
    reworked = col["rework_count"] > 0
    started = col["started_at"]
    next_id = 1

    def batch(at, mask, actor, action, from_status, to_status, note=None, data: Column | None = None):
        nonlocal next_id
        rows = np.flatnonzero(mask & (at != NEVER))
        for actor_known in (True, False):
            part = rows[(actor[rows] > 0) == actor_known]
            if len(part) == 0:
                continue
            if data is None:
                event_data: Column = Constant.jsonb(None)
            elif isinstance(data, Constant):
                event_data = data
            else:
                event_data = data[np.searchsorted(rows, part)]
            yield {
                "id": ("bigint", np.arange(next_id, next_id + len(part), dtype=np.int64)),
                "incident_id": ("bigint", ids[part]),
                "at": ("timestamptz", at[part]),
                "actor_id": ("integer", actor[part] if actor_known else Constant(None)),
                "action": ("text", Constant.text(action)),
                "from_status": ("text", Constant.text(from_status)),
                "to_status": ("text", Constant.text(to_status)),
                "note": ("text", Constant.text(note)),
                "data": ("jsonb", event_data),
            }
            next_id += len(part)

    everyone = np.ones(len(ids), dtype=bool)
    nobody = np.zeros(len(ids), dtype=np.int32)
    operator, handler, verifier = col["operator_id"], col["handler_id"], col["verifier_id"]

    yield from batch(reported, everyone, col["reporter_id"], "report", None, "reported")
    yield from batch(
        col["rejected_at"], everyone, operator, "reject", "reported", "rejected", REJECT_REASON,
        Constant.jsonb(f'{{"reason": "{REJECT_REASON}"}}'),
    )  # fmt: skip
    yield from batch(col["accepted_at"], everyone, operator, "accept", "reported", "accepted")
    for department_id, code in departments.items():
        mine = col["department_id"] == department_id
        rows = np.flatnonzero(mine & (dispatched != NEVER))
        data = _jsonb([f'{{"department": "{code}", "due_at": "'.encode(), _iso(first_due[rows]), b'"}'])
        yield from batch(dispatched, mine, operator, "dispatch", "accepted", "dispatched", None, data)
    yield from batch(started, everyone, handler, "start", "dispatched", "in_progress")

    registered, resumed = col["registered_at"], col["resumed_at"]
    rows = np.flatnonzero(registered != NEVER)
    data = _jsonb([f'{{"reason": "{REGISTER_REASON}", "due_at": "'.encode(), _iso(first_due[rows]), b'"}'])
    yield from batch(
        registered, everyone, operator, "register", "in_progress", "registered", REGISTER_REASON, data
    )
    rows = np.flatnonzero(resumed != NEVER)
    # The new clock's due time is the incident's own: no extension follows a resumption.
    data = _jsonb([b'{"due_at": "', _iso(due[rows]), b'", "dispatched_at": "', _iso(dispatched[rows]), b'"}'])
    yield from batch(resumed, everyone, operator, "resume", "registered", "in_progress", None, data)

    extended = col["extended_at"]
    in_status = _in_status(col, extended)
    for state in ("dispatched", "in_progress"):
        mask = in_status[state]
        rows = np.flatnonzero(mask & (extended != NEVER))
        data = _jsonb([b'{"from": "', _iso(first_due[rows]), b'", "due_at": "', _iso(due[rows]), b'"}'])
        yield from batch(extended, mask, operator, "extend", state, state, EXTEND_NOTE, data)
    levels = ("grid", "village", "township", "county")
    for lower, level in zip(levels, levels[1:], strict=False):
        at = col[f"escalated_{level}_at"]
        data = Constant.jsonb(f'{{"from": "{lower}", "to": "{level}", "automatic": true}}')
        in_status = _in_status(col, at)
        for state in ("dispatched", "in_progress", "resolved", "verified"):
            yield from batch(at, in_status[state], nobody, "escalate", state, state, ESCALATE_NOTE, data)

    first_resolved, resolved = col["first_resolved_at"], col["resolved_at"]
    yield from batch(
        first_resolved, on_spot, handler, "self_handle", "reported", "resolved", SELF_HANDLE_NOTE
    )
    yield from batch(first_resolved, ~on_spot, handler, "resolve", "in_progress", "resolved")
    yield from batch(
        col["reworked_at"], everyone, verifier, "rework", "resolved", "in_progress", REWORK_REASON,
        Constant.jsonb(f'{{"reason": "{REWORK_REASON}"}}'),
    )  # fmt: skip
    yield from batch(
        resolved, on_spot & ~reworked, handler, "self_handle", "reported", "resolved", SELF_HANDLE_NOTE
    )
    yield from batch(resolved, ~on_spot | reworked, handler, "resolve", "in_progress", "resolved")
    yield from batch(col["verified_at"], everyone, verifier, "verify", "resolved", "verified")
    yield from batch(col["closed_at"], everyone, operator, "close", "verified", "closed")
    for rating in range(1, 6):
        yield from batch(
            col["rated_at"], col["rating"] == rating, operator, "rate", "closed", "closed", None,
            Constant.jsonb(f'{{"rating": {rating}}}'),
        )  # fmt: skip
