"""gunicorn settings that belong to the application rather than to the command line."""

import gc
import re

from gunicorn.glogging import Logger
from psycopg_pool import PoolTimeout

# Query parameters that carry a credential (Open311's api_key, a token in a link): their values
# never reach the access log.
SECRET_PARAMETER = re.compile(r"((?:^|[?&])(?:api_key|token|access_token)=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_PARAMETER.sub(r"\1[redacted]", text)


class RedactingLogger(Logger):
    """gunicorn's logger with credentials in query strings replaced in the access log."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms


logger_class = RedactingLogger


def post_worker_init(worker) -> None:
    # Take requests once the pool's first connections are warm for every tile layer
    # (server/tiles/warm.py); requests that come meanwhile wait in the listen queue. A database
    # that is down does not hold the worker back: /health then answers 503.
    try:
        worker.wsgi.extensions["gridwatch.db"].pool.wait(timeout=15)
    except PoolTimeout:
        pass
    # Each worker folds queued rollup changes and feeds its tile cache from its first second,
    # not only after its first tile request: a server that only takes filings still folds them.
    worker.wsgi.extensions["gridwatch.tiles"].listener.ensure_started(wait=0)
    # The loaded app (Flask, Dash and their layouts) is a large graph of long-lived objects that
    # every full collection would walk again: freeze it, and collect the young generation less
    # often. Filing throughput rose 4-7 % in interleaved runs (docs/benchmarks.md, "Filing").
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # Benchmarks measure "right after a restart" from when every worker logged this.
    worker.log.info("Worker ready for requests (pid: %s)", worker.pid)
