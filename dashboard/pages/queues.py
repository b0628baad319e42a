"""Work queues for the grid centre's operators: new reports to accept, overdue, due soon,
returned by departments, awaiting verification. Sortable and filterable tables; a row opens the
incident's card on the live map, which flies there."""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html

from dashboard import queues, reference
from dashboard.filters import clean_categories, resolve_period
from dashboard.i18n import LOCAL_TIME, format_count, resolve_language, translate
from dashboard.shell import login_prompt
from server import clock
from server.auth import current_user
from server.db import get_db

dash.register_page(__name__, path="/queues", name="queues")

COLUMNS = ("id", "category", "grid", "status", "reported_at", "due_at", "description")


def layout(lang: str | None = None, **_query):
    language = resolve_language(lang)
    if current_user() is None:
        return login_prompt(language, "/queues")
    headers = [
        html.Th(
            html.Button(
                translate(f"column.{name}", language),
                id={"type": "queue-sort", "column": name},
                className="gw-link-button",
            )
        )
        for name in COLUMNS
    ]
    return html.Main(
        [
            html.H2(translate("queues.heading", language)),
            dcc.Store(id="queue-language", data=language),
            dcc.Store(id="queue-sort", data={"column": None, "descending": False}),
            dcc.Tabs(id="queue-tabs", value="new", className="gw-queue-tabs"),
            dcc.Input(
                id="queue-search",
                type="search",
                debounce=True,
                placeholder=translate("queue.search", language),
                className="gw-queue-search",
            ),
            html.Table(
                [html.Thead(html.Tr(headers)), html.Tbody(id="queue-rows")],
                className="gw-queue-table",
                id="queue-table",
            ),
            html.P(id="queue-empty", className="gw-muted"),
        ]
    )


def _queue_filters(category_values, period_key, now):
    with get_db().connection() as conn:
        known = {row["code"] for row in reference.categories(conn)}
    period = resolve_period(period_key, now)
    return clean_categories(category_values, known), period.bounds() if period else None


def _cell_time(value) -> str:
    # One sortable form in both languages.
    return value.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M") if value else ""


def _cells(row: dict, language: str) -> dict:
    return {
        "id": row["id"],
        "category": row["category_name_en"] if language == "en" else row["category_name_zh"],
        "grid": row["grid_name"],
        "status": translate(f"status.{row['status']}", language),
        "reported_at": _cell_time(row["reported_at"]),
        "due_at": _cell_time(row["due_at"]),
        "description": row["description"],
    }


def _table_row(row: dict, cells: dict, language: str) -> html.Tr:
    # Every cell links to the card on the live map, so a click anywhere on the row opens it.
    href = f"{dash.get_relative_path('/map')}?lang={language}&incident={row['id']}"
    return html.Tr(
        [
            html.Td(
                dcc.Link(f"#{value}" if name == "id" else value, href=href),
                className=f"gw-cell-{name}"
                + (f" gw-due-{row['warning']}" if name == "due_at" and row["warning"] else ""),
            )
            for name, value in cells.items()
        ],
        id={"type": "queue-row", "incident": row["id"]},
    )


@callback(
    Output("queue-sort", "data"),
    Input({"type": "queue-sort", "column": ALL}, "n_clicks"),
    State("queue-sort", "data"),
    prevent_initial_call=True,
)
def choose_sort(clicks, current):
    if not isinstance(clicks, list) or not any(clicks) or not isinstance(ctx.triggered_id, dict):
        return dash.no_update
    column = ctx.triggered_id.get("column")
    current = current if isinstance(current, dict) else {}
    descending = current.get("column") == column and not current.get("descending")
    return {"column": column, "descending": descending}


@callback(
    Output("queue-tabs", "children"),
    Output("queue-rows", "children"),
    Output("queue-empty", "children"),
    Input("queue-tabs", "value"),
    Input("filter-category", "value"),
    Input("filter-period", "value"),
    Input("queue-sort", "data"),
    Input("queue-search", "value"),
    State("queue-language", "data"),
)
def show_queue(queue, category_values, period_key, sort, search, language):
    user = current_user()
    if user is None or not isinstance(queue, str) or queue not in queues.QUEUES:
        return dash.no_update, dash.no_update, dash.no_update
    now = clock.now()
    categories, period = _queue_filters(category_values, period_key, now)
    with get_db().connection() as conn:
        sizes = queues.queue_sizes(conn, user=user, now=now, categories=categories, period=period)
        rows = queues.queue_rows(conn, queue=queue, user=user, now=now, categories=categories, period=period)
    tabs = [
        dcc.Tab(
            label=f"{translate(f'queue.{name}', language)} ({format_count(sizes[name], language)})",
            value=name,
            id=f"queue-tab-{name}",
        )
        for name in queues.QUEUES
    ]
    shown = [(row, _cells(row, language)) for row in rows]
    needle = (search or "").strip().lower()
    if needle:
        shown = [
            (row, cells) for row, cells in shown if any(needle in str(v).lower() for v in cells.values())
        ]
    if sort and sort.get("column") in COLUMNS:
        shown.sort(key=lambda pair: pair[1][sort["column"]], reverse=sort["descending"])
    body = [_table_row(row, cells, language) for row, cells in shown]
    return tabs, body, "" if body else translate("queue.empty", language)
