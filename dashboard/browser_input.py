"""What a Dash callback is sent is what the browser says: a store or an input can be edited in
the developer tools or replayed by a script. Callbacks read such values through these types, and
a value the page itself would never send counts as not sent (the callback shows nothing new)
instead of failing halfway with a 500."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, StrictInt, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from server.schema import Text

T = TypeVar("T")

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
VIEW = TypeAdapter(tuple[FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat])  # the map's bbox
INCIDENT_ID = TypeAdapter(Annotated[StrictInt, Field(ge=1, le=2**62)])
NOTE = TypeAdapter(Annotated[Text, Field(max_length=2000)] | None)
CODE = TypeAdapter(Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None)


def sent(adapter: TypeAdapter[T], value: Any) -> T | None:
    """``value`` as ``adapter`` reads it, or None when the page would never have sent it."""
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


# What the page's components send for these properties (dcc.Location, buttons, inputs and
# dropdowns); a store's `data` is any JSON, which its callback reads through the types above.
_Scalar = str | int | float | None
_PROPERTY_TYPES: dict[str, TypeAdapter] = {
    name: TypeAdapter(Annotated[Text, Field(max_length=4000)] | None)
    for name in ("search", "pathname", "hash", "href")
}
_PROPERTY_TYPES["pathname"] = TypeAdapter(Annotated[Text, Field(max_length=4000, pattern="^/")])
_PROPERTY_TYPES["search"] = TypeAdapter(Annotated[Text, Field(max_length=4000, pattern=r"^(\?.*)?$")] | None)
_PROPERTY_TYPES["n_clicks"] = TypeAdapter(Annotated[StrictInt, Field(ge=0)] | None)


class _GridPage(TypedDict):
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    township: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None
    language: Literal["zh", "en"] | None


# The stores the pages write, by id (every "*-language" store holds the page's language).
LANGUAGE = TypeAdapter(Literal["zh", "en"] | None)
_STORE_TYPES: dict[str, TypeAdapter] = {
    "response-parent": TypeAdapter(Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None),
    "grid-page": TypeAdapter(_GridPage | None),
    "queue-sort": TypeAdapter(dict[str, Any] | None),
    "live-tick": TypeAdapter(Annotated[StrictInt, Field(ge=0)] | None),
    "card-refresh": TypeAdapter(Annotated[StrictInt, Field(ge=0)] | None),
    "counted-categories": TypeAdapter(list[str] | None),
}
_PROPERTY_TYPES["value"] = TypeAdapter(Annotated[_Scalar, Field(union_mode="left_to_right")] | list[_Scalar])


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
        if not isinstance(item, dict) or "property" not in item:
            return "body"
        identity = item.get("id")
        adapter = _PROPERTY_TYPES.get(item["property"])
        if item["property"] == "data" and isinstance(identity, str):
            adapter = LANGUAGE if identity.endswith("-language") else _STORE_TYPES.get(identity)
        if item["property"] == "clickData":
            adapter = TypeAdapter(dict[str, Any] | None)
        value = item.get("value")
        if (
            adapter is not None
            and sent(adapter, value) is None
            and (value is not None or item["property"] == "pathname")
        ):
            return f"{item.get('id')}.{item['property']}"[:200]
    return None
