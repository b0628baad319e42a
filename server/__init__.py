"""gridwatch server: Flask app factory (``server.app.create_app``), REST API, tiles and the
command-line tool. Nothing is imported here: a CLI command or the change feed does not load the
Flask app and its Dash pages (1.9 s) unless it uses them."""
