"""The change feed (``GET /api/v1/events``, Server-Sent Events) in an asyncio server of its own.

The Flask workers have a fixed number of threads, and an open stream held one of them: sixteen
browser tabs on the live map stopped the server. Here a stream is a coroutine and a queue, so
10,000 of them cost memory, not threads. One LISTEN connection feeds every stream of the process;
events are filtered per stream by the viewer's scope (server/auth/scope.py). ``gridwatch serve``
starts it beside gunicorn; docs/architecture.md shows both, docs/security.md its limits.
"""
