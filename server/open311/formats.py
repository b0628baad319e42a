"""GeoReport v2 output in its two formats: JSON, and XML with the spec's element names."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from flask import Response

# A list inside an element of this name holds elements of that name.
ITEM_NAMES = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _element(tag: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(tag)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_element(ITEM_NAMES[tag], item))
    else:
        element.text = _text(value)
    return element


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def render(root: str, payload: Any, fmt: str, status: int = 200) -> Response:
    """``payload`` as JSON, or as XML under the element ``root`` (a list's items named by
    ITEM_NAMES)."""
    if fmt == "xml":
        body = ElementTree.tostring(_element(root, payload), encoding="unicode", xml_declaration=False)
        return Response('<?xml version="1.0" encoding="utf-8"?>' + body, status, mimetype="text/xml")
    text = json.dumps(payload, ensure_ascii=False, default=_json_default)
    return Response(text, status, mimetype="application/json")
