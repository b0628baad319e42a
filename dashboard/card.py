"""The incident card: what a case is, where it stands, its history, and the actions the viewer's
role may take now. Reading and acting go through ``server.incidents.service``, the functions
behind the REST API, so the dashboard cannot bypass a workflow or visibility rule."""

from __future__ import annotations

from datetime import datetime

import psycopg
from dash import dcc, html

from dashboard.i18n import LOCAL_TIME, format_duration, format_time, translate
from dashboard.reference import name_in, options
from server.auth import User
from server.errors import InvalidInput
from server.incidents import service

# The actions the card offers (the grid centre's: accept, dispatch, escalate, extend, verify,
# close, 挂账 and its resumption, and the two refusals that need a reason). Others stay with the
# phone page and the API.
CARD_ACTIONS = (
    "accept", "reject", "dispatch", "escalate", "extend", "register", "resume", "verify", "rework", "close",
)  # fmt: skip
# Actions that take the card's new due time (both default to one more time limit when it is empty).
NEW_DUE_ACTIONS = frozenset({"extend", "resume"})
# Roles that may see who walks a grid (as in the grids tiles).
SEES_MEMBER = frozenset({"inspector", "operator", "leader", "admin"})


def load(conn: psycopg.Connection, *, user: User, incident_id: int, now: datetime) -> dict:
    incident = service.get_incident(conn, user=user, incident_id=incident_id, now=now)
    return _with_member(conn, incident, user)


def _with_member(conn: psycopg.Connection, incident: dict, user: User) -> dict:
    member = conn.execute(
        """SELECT u.display_name FROM grids g LEFT JOIN users u ON u.id = g.member_id
            WHERE g.code = %s""",
        [incident["grid"]],
    ).fetchone()
    incident["member"] = member["display_name"] if member and user.role in SEES_MEMBER else None
    return incident


def card_actions(incident: dict) -> list[str]:
    return [action for action in CARD_ACTIONS if action in incident["allowed_actions"]]


def parse_new_due(text: str | None) -> datetime | None:
    """The extension's new due time from the card's local date-time field (county time)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TIME)
    except (TypeError, ValueError) as error:
        raise InvalidInput("the new due time is not a date and time", field="due_at") from error


def act(
    conn: psycopg.Connection,
    *,
    user: User,
    incident_id: int,
    action: str,
    now: datetime,
    note: str | None,
    department: str | None,
    new_due: str | None,
) -> dict:
    given = service.ActionInput(
        note=(note or "").strip() or None,
        department=department if action == "dispatch" else None,
        due_at=parse_new_due(new_due) if action in NEW_DUE_ACTIONS else None,
    )
    # The service's answer, not a fresh load: an action may take the case out of the actor's sight.
    incident = service.perform(conn, user=user, incident_id=incident_id, action=action, now=now, given=given)
    return _with_member(conn, incident, user)


def _row(label: str, value, row_id: str | None = None) -> html.Div:
    value_cell = html.Dd(value, id=row_id) if row_id else html.Dd(value)
    return html.Div([html.Dt(label), value_cell], className="gw-card-row")


def _due(incident: dict, language: str, now: datetime):
    due_at = incident["due_at"]
    if due_at is None:
        stopped = incident["status"] == "registered"
        return translate("card.clock_stopped" if stopped else "card.no_due", language)
    warning = incident["warning"] or ("red" if incident["overdue"] else "green")
    left = due_at - now
    remaining = format_duration(left, language)
    if language == "zh":
        distance = f"剩余{remaining}" if left.total_seconds() > 0 else f"超期{remaining}"
    else:
        distance = f"{remaining} left" if left.total_seconds() > 0 else f"{remaining} late"
    return [
        format_time(due_at, language),
        html.Span(
            f"{translate(f'card.warning.{warning}', language)} · {distance}",
            className=f"gw-warning gw-warning-{warning}",
            id="card-warning",
        ),
    ]


def _timeline(incident: dict, language: str) -> html.Ol:
    items = []
    for event in incident["events"]:
        actor = event["actor_name"] or translate("card.system", language)
        change = ""
        if event["to_status"] and event["from_status"] != event["to_status"]:
            change = " → " + translate("status." + event["to_status"], language)
        items.append(
            html.Li(
                [
                    html.Time(format_time(event["at"], language)),
                    html.Strong(translate(f"action.{event['action']}", language) + change),
                    html.Span(actor, className="gw-actor"),
                    html.Div(event["note"], className="gw-note") if event["note"] else None,
                ]
            )
        )
    return html.Ol(items, className="gw-timeline", id="card-timeline")


def _action_form(incident: dict, language: str, departments: list[dict]) -> html.Div:
    actions = card_actions(incident)
    if not actions:
        return html.P(translate("card.read_only", language), id="card-read-only", className="gw-muted")
    # Every field is always there (hidden when no action needs it): the action callback reads them all.
    fields = [
        dcc.Textarea(id="card-note", placeholder=translate("card.note", language), className="gw-card-note"),
        html.Div(
            dcc.Dropdown(
                id="card-department",
                options=options(departments, language),
                placeholder=translate("card.department", language),
            ),
            hidden="dispatch" not in actions,
        ),
        html.Label(
            [translate("card.new_due", language), dcc.Input(id="card-new-due", type="datetime-local")],
            hidden=NEW_DUE_ACTIONS.isdisjoint(actions),
        ),
    ]
    buttons = [
        html.Button(
            translate(f"action.{action}", language),
            id={"type": "card-action", "action": action},
            className=f"gw-action gw-action-{action}",
        )
        for action in actions
    ]
    return html.Div([*fields, html.Div(buttons, className="gw-actions")], id="card-action-form")


def render(incident: dict, *, language: str, now: datetime, departments: list[dict]) -> html.Div:
    category = incident["category_name_en"] if language == "en" else incident["category_name_zh"]
    department = next((row for row in departments if row["code"] == incident["department"]), None)
    photos = [
        html.Img(src=f"/api/v1/incidents/{incident['id']}/photos/{photo['id']}", className="gw-photo")
        for photo in incident["photos"]
    ]
    facts = [
        _row(
            translate("card.status", language),
            translate("status." + incident["status"], language),
            "card-status",
        ),
        _row(translate("card.category", language), category, "card-category"),
        _row(translate("card.priority", language), translate(f"priority.{incident['priority']}", language)),
        _row(translate("card.description", language), incident["description"] or "—"),
        _row(translate("card.grid", language), f"{incident['grid_name_zh']} ({incident['grid']})"),
        _row(
            translate("card.member", language),
            incident["member"] or translate("card.no_member", language),
        ),
        _row(translate("card.level", language), translate(f"level.{incident['handling_level']}", language)),
        _row(
            translate("card.department", language),
            name_in(department, language) if department else "—",
            "card-department-name",
        ),
        _row(translate("card.reported_at", language), format_time(incident["reported_at"], language)),
        # A report queued offline on the phone: when the inspector saw it, if it arrived later.
        _row(translate("card.observed_at", language), format_time(incident["observed_at"], language))
        if incident.get("observed_at")
        else None,
        _row(translate("card.due", language), _due(incident, language, now), "card-due"),
    ]
    return html.Div(
        [
            html.Header(
                [
                    html.H3(f"{translate('card.title', language)} #{incident['id']}", id="card-title"),
                    html.Button("×", id="card-close", title=translate("card.close", language)),
                ]
            ),
            html.Dl(facts),
            html.Div([html.H4(translate("card.photos", language)), *photos]) if photos else None,
            html.H4(translate("card.timeline", language)),
            _timeline(incident, language),
            html.H4(translate("card.actions", language)),
            _action_form(incident, language, departments),
        ],
        className="gw-card",
        **{"data-incident": str(incident["id"])},
    )
