"""GeoJSON responses: the media type RFC 7946 registers, so clients and the OpenAPI check agree."""

from __future__ import annotations

from flask import Response, jsonify

MEDIA_TYPE = "application/geo+json"


def geojson_response(body: dict, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    return response
