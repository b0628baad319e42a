"""What a Dash callback is sent is what the browser says: a store or an input can be edited in
the developer tools or replayed by a script. Two checks stand between it and the callbacks:

- ``malformed_callback(body)``, before Dash runs a callback: every input and state has the type
  the page's components send (a 400 naming ``id.property`` otherwise);
- inside a callback, values read through the adapters below: one the page itself would never
  send counts as not sent (the callback shows nothing new) instead of failing halfway.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, StrictInt, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from server.schema import Code, Text

T = TypeVar("T")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=0)]
UrlPart = Annotated[Text, Field(max_length=4000)]
Scalar = str | int | float | None

VIEW = TypeAdapter(tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat])  # the map's bbox
INCIDENT_ID = TypeAdapter(Annotated[StrictInt, Field(ge=1, le=2**62)])
NOTE = TypeAdapter(Annotated[Text, Field(max_length=2000)] | None)
CODE = TypeAdapter(Code | None)
LANGUAGE = TypeAdapter(Literal["zh", "en"] | None)


class _GridPage(TypedDict):
    code: Code
    township: Code | None
    language: Literal["zh", "en"] | None


# What the page's components send for these properties: dcc.Location (a pathname always), buttons,
# inputs and dropdowns, a map's clicks.
_PROPERTY_TYPES: dict[str, TypeAdapter] = {
    "pathname": TypeAdapter(Annotated[UrlPart, Field(pattern="^/")]),
    "search": TypeAdapter(Annotated[UrlPart, Field(pattern=r"^(\?.*)?$")] | None),
    "hash": TypeAdapter(UrlPart | None),
    "href": TypeAdapter(UrlPart | None),
    "n_clicks": TypeAdapter(Count | None),
    "value": TypeAdapter(Annotated[Scalar, Field(union_mode="left_to_right")] | list[Scalar]),
    "clickData": TypeAdapter(dict[str, Any] | None),
}
# What the pages' stores hold, by id; every "*-language" store holds the page's language.
_STORE_TYPES: dict[str, TypeAdapter] = {
    "response-parent": CODE,
    "grid-page": TypeAdapter(_GridPage | None),
    "queue-sort": TypeAdapter(dict[str, Any] | None),
    "live-tick": TypeAdapter(Count | None),
    "card-refresh": TypeAdapter(Count | None),
    "counted-categories": TypeAdapter(list[str] | None),
}


def sent(adapter: TypeAdapter[T], value: Any) -> T | None:
    """``value`` as ``adapter`` reads it, or None when the page would never have sent it."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _fits(adapter: TypeAdapter, value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _adapter(identity: Any, name: str) -> TypeAdapter | None:
    if name == "data" and isinstance(identity, str):
        return LANGUAGE if identity.endswith("-language") else _STORE_TYPES.get(identity)
    return _PROPERTY_TYPES.get(name)


def malformed_callback(body: Any) -> str | None:
    """The first ``id.property`` of a callback request whose value the page would never send,
    or "body" when the request is not a callback request at all; None when all is well."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return "body"
    items = [*(body.get("inputs") or []), *(body.get("state") or [])]
    for item in items:
        if isinstance(item, list):  # a pattern-matching input: a list of matches
            items.extend(item)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("property"), str):
            return "body"
        adapter = _adapter(item.get("id"), item["property"])
        if adapter is not None and not _fits(adapter, item.get("value")):
            return f"{item.get('id')}.{item['property']}"[:200]
    return None
