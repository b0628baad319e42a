"""gridwatch server: Flask app factory, REST API, tiles and the command-line tool."""

from server.app import create_app

__all__ = ["create_app"]
