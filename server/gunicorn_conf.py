"""gunicorn settings that belong to the application rather than to the command line."""

import gc

from psycopg_pool import PoolTimeout


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
