"""GeoJSON responses: the media type RFC 7946 registers, so clients and the OpenAPI check agree."""

from __future__ import annotations

from flask import Response, jsonify

MEDIA_TYPE = "application/geo+json"


def geojson_response(body: dict | bytes, status: int = 200) -> Response:
    """``body`` as a GeoJSON response; bytes are sent as they are (an answer encoded once and kept)."""
    if isinstance(body, bytes):
        return Response(body, status=status, mimetype=MEDIA_TYPE)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    return response
