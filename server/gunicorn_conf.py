"""gunicorn settings that belong to the application rather than to the command line."""


def post_worker_init(worker) -> None:
    # Each worker folds queued rollup changes and feeds its tile cache from its first second,
    # not only after its first tile request: a server that only takes filings still folds them.
    worker.wsgi.extensions["gridwatch.tiles"].listener.ensure_started(wait=0)
