"""What a Dash callback is sent is what the browser says: a store or an input can be edited in
the developer tools or replayed by a script. Callbacks read such values through these types, and
a value the page itself would never send counts as not sent (the callback shows nothing new)
instead of failing halfway with a 500."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import Field, StrictInt, TypeAdapter, ValidationError

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
