"""The incident workflow as one explicit table: which action moves which status where, and who
may take it within which scope. ``service.perform`` applies it; nothing else changes a status.

Scopes: ``all`` (anywhere in the county), ``grid`` (the incident lies in a grid the user holds
as member, or below one), ``department`` (dispatched to the user's department),
``grid_self_handled`` (``grid``, and the grid member handled the case on the spot).
Leaders and admins take no workflow action: leaders only read, admins configure.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = (
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "in_progress",
    "registered",  # 挂账: cannot be solved now; no clock runs, still open (backlog)
    "resolved",
    "verified",
    "closed",
)
FINISHED_STATUSES = frozenset({"closed", "rejected"})
OPEN_STATUSES = tuple(status for status in STATUSES if status not in FINISHED_STATUSES)
HANDLING_LEVELS = ("grid", "village", "township", "county")

ALL, GRID, DEPARTMENT, GRID_SELF_HANDLED = "all", "grid", "department", "grid_self_handled"


@dataclass(frozen=True)
class Transition:
    action: str
    from_statuses: frozenset[str]
    to_status: str | None  # None: the status does not change
    roles: dict[str, str]  # role -> scope
    label_zh: str


def _t(action: str, sources: str, target: str | None, roles: dict[str, str], label_zh: str) -> Transition:
    return Transition(action, frozenset(sources.split()), target, roles, label_zh)


_UNFINISHED = " ".join(OPEN_STATUSES)
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t("accept", "reported", "accepted", {"operator": ALL}, "立案"),
        _t("reject", "reported", "rejected", {"operator": ALL}, "不予立案"),
        _t("link_duplicate", "reported accepted", "rejected", {"operator": ALL}, "重复件"),
        _t("dispatch", "accepted", "dispatched", {"operator": ALL}, "派遣"),
        _t("start", "dispatched", "in_progress", {"department": DEPARTMENT}, "开始处置"),
        _t(
            "resolve",
            "in_progress",
            "resolved",
            {"department": DEPARTMENT, "inspector": GRID_SELF_HANDLED},
            "处置反馈",
        ),
        _t("verify", "resolved", "verified", {"inspector": GRID, "operator": ALL}, "核查通过"),
        _t("rework", "resolved", "in_progress", {"inspector": GRID, "operator": ALL}, "返工"),
        _t("close", "verified", "closed", {"operator": ALL}, "结案"),
        _t("rate", "closed", None, {"operator": ALL}, "评价"),
        _t("return", "dispatched in_progress", "accepted", {"department": DEPARTMENT}, "退回"),
        _t("extend", "dispatched in_progress", None, {"operator": ALL}, "延期"),
        _t("register", "dispatched in_progress", "registered", {"operator": ALL}, "挂账"),
        _t("resume", "registered", "in_progress", {"operator": ALL}, "恢复处置"),
        _t(
            "escalate",
            "reported accepted dispatched in_progress",
            None,
            {"operator": ALL, "inspector": GRID},
            "上报上级",
        ),
        _t("self_handle", "reported", "resolved", {"inspector": GRID}, "自行处置"),
        _t(
            "comment",
            _UNFINISHED + " closed rejected",
            None,
            {"operator": ALL, "inspector": GRID, "department": DEPARTMENT},
            "备注",
        ),
    )
}

# Filing is not a transition (there is no incident yet) but has the same kind of rule.
REPORT_ROLES = {"inspector": GRID, "operator": ALL}

# Actions that need a written reason.
NOTE_REQUIRED = frozenset({"reject", "return", "rework", "extend", "register", "self_handle", "comment"})


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about one incident, as seen by one user."""

    status: str
    in_user_grids: bool
    in_user_department: bool
    self_handled: bool
    handling_level: str
    rated: bool


def in_scope(scope: str, facts: Facts) -> bool:
    if scope == ALL:
        return True
    if scope == GRID:
        return facts.in_user_grids
    if scope == GRID_SELF_HANDLED:
        return facts.in_user_grids and facts.self_handled
    if scope == DEPARTMENT:
        return facts.in_user_department
    raise ValueError(f"unknown scope {scope!r}")


def blocked_by_state(transition: Transition, facts: Facts) -> str | None:
    """Why the current state refuses this action, or None when it allows it."""
    if facts.status not in transition.from_statuses:
        return (
            f"事件当前状态不允许此操作 / '{transition.action}' is not possible"
            f" while the incident is {facts.status}"
        )
    if transition.action == "rate" and facts.rated:
        return "事件已评价 / the incident is already rated"
    if transition.action == "escalate" and facts.handling_level == HANDLING_LEVELS[-1]:
        return "事件已在县级处置 / the incident is already handled at county level"
    return None


def may_act(role: str, transition: Transition, facts: Facts) -> bool:
    scope = transition.roles.get(role)
    return scope is not None and in_scope(scope, facts)


def allowed_actions(role: str, facts: Facts) -> list[str]:
    """The actions this user may take on this incident now, in table order."""
    return [
        action
        for action, transition in TRANSITIONS.items()
        if may_act(role, transition, facts) and blocked_by_state(transition, facts) is None
    ]


def next_handling_level(level: str) -> str:
    return HANDLING_LEVELS[min(HANDLING_LEVELS.index(level) + 1, len(HANDLING_LEVELS) - 1)]
