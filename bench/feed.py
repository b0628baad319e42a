"""Change-feed benchmark: filing latency with 0, 200 and 5,000 open event streams, and the feed's
memory per stream.

`gridwatch serve` runs gunicorn (the API) on --port and the change feed (server/feed, an aiohttp
server: GET /api/v1/events, Server-Sent Events) on --port + 1. This bench starts exactly that
command on 127.0.0.1 against a bench database and, for each stream count N:

1. opens N streams to the feed from a client process of its own (raw sockets: the request line
   and an operator's Bearer token, then every byte read and discarded, the events counted),
   and waits until the feed's /health reports N streams;
2. reads the feed process's resident memory (VmRSS in /proc/<pid>/status) before and after
   opening them: (after - before) / N is the memory of one idle stream;
3. files --requests incidents (POST /api/v1/incidents, bench/filing.py's load: keep-alive
   clients, --concurrency of them, a fresh Idempotency-Key each) and records each request's
   latency: p50/p95/p99 and filings/s;
4. waits until the rollup queue is folded and the feed has read every change event logged
   meanwhile, then asks the client how many events each stream got (it reads on until its
   sockets are quiet for a second); every stream should have got every event logged during the
   filing (an operator sees the whole county). Also recorded: when the last event arrived,
   counted from the end of the filing; how many streams the feed ended (the last chunk of the
   chunked response: it drops a stream that falls behind) and when; the size of every chunk
   (one write of the feed: a batch of events) on 20 of the streams; and the feed's resident
   memory after the filing and at its peak: what the streams cost while events flow, not
   only idle. Each measurement records the commit and a digest of server/, layers/ and sql/
   as they were on disk when its server started.

Memory guard: while streams are open, the feed's resident memory is sampled every 0.25 s (its
peak and a time series are reported); past --feed-rss-limit-gib the client closes every stream
at once and reports what it got so far, and the run is marked aborted. When that happened while
the filing still ran, its latencies were partly measured without streams and the summary leaves
them out; after the filing, they count (the streams were open throughout) but the delivery is
incomplete. Every server process also gets an address-space limit (--address-space-limit-gib): a
first version of this bench, without either, had the feed grow to 21 GB with 5,000 streams and
the kernel's OOM killer end it, on a machine other people were using.

Each measurement gets a freshly started server (and 200 filings to warm it up), so the feed's
memory is measured from the same start every time: a process that once held a big backlog keeps
its heap. The stream counts run in a rotated order in each repeat (repeat 1: 0, 200, 5000;
repeat 2: 200, 5000, 0; ...), so the database's slow growth (each run files incidents) is spread
over the counts; medians over the repeats are reported. The feed's per-user cap
(GRIDWATCH_FEED_STREAMS_PER_USER, 32) is raised for the bench (all streams use the operator's
token, as a wall of screens signed in as one account would).

    .venv/bin/python bench/feed.py --database-url postgresql://.../gridwatch_bench_feed \\
        --incidents 200000 --requests 1500 --concurrency 8 --repeats 3 --out bench/results/feed.json

The stream client is cheap on purpose, because it shares the machine's cores with the server:
it connects from a pool of threads (blocking sockets), then polls all sockets with epoll every
--read-interval seconds and reads whatever is there (browsers on other machines would cost the
server nothing). Its CPU time is reported beside the feed's, the workers' and PostgreSQL's
(utime + stime from /proc, over the filing, and over filing plus delivery). Data: the synthetic
county and incidents of bench/tiles.py; the database is dropped and rebuilt first unless --reuse.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from filing import drop_database, fire, operator_token, sample_points  # noqa: E402
from procstats import (  # noqa: E402
    CpuMeter,
    children,
    cmdline,
    code_version,
    load_average,
    postmaster_pid,
    rss_bytes,
    serve_command,
)
from sse_client import Streams  # noqa: E402
from tiles import command_line, ensure_database, grow  # noqa: E402

# -- the server -----------------------------------------------------------------------


def get_json(url: str, timeout: float = 5.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, ValueError):
        return 0, None


def wait_until(predicate, *, seconds: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}")


class ServerGone(Exception):
    """`gridwatch serve` ended (it stops both servers when either ends)."""


class Server:
    """`gridwatch serve` (gunicorn and the feed) on 127.0.0.1, each of its processes limited to
    ``memory_limit`` bytes of address space (RLIMIT_AS), so a feed that runs away fails in its
    own allocations instead of calling the kernel's OOM killer onto the whole machine."""

    def __init__(self, url: str, *, port: int, workers: int, log: Path, memory_limit: int) -> None:
        self.port, self.feed_port = port, port + 1
        env = {
            **os.environ,
            "GRIDWATCH_DATABASE_URL": url,
            "GRIDWATCH_SECRET_KEY": "bench",
            "GRIDWATCH_FEED_STREAMS_PER_USER": "100000",
        }
        self.log = log.open("ab")

        def limit_memory() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

        self.process = subprocess.Popen(
            serve_command(port, workers=workers),
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_memory,
        )
        try:
            wait_until(
                lambda: get_json(f"http://127.0.0.1:{port}/health")[0] == 200,
                seconds=90,
                what="the API's /health",
            )
            wait_until(
                lambda: get_json(f"http://127.0.0.1:{self.feed_port}/health")[0] == 200,
                seconds=60,
                what="the feed's /health",
            )
            feeds = [pid for pid in children(self.process.pid) if "--only feed" in cmdline(pid)]
            if len(feeds) != 1:
                raise SystemExit(f"expected one feed process under {self.process.pid}, found {feeds}")
            self.feed_pid = feeds[0]
        except BaseException:
            self.close()
            raise

    def check(self) -> None:
        if self.process.poll() is not None:
            raise ServerGone(f"gridwatch serve ended with status {self.process.returncode}")

    def gunicorn_pids(self) -> list[int]:
        masters = [pid for pid in children(self.process.pid) if "gunicorn" in cmdline(pid)]
        return masters + [pid for master in masters for pid in children(master)]

    def feed_health(self) -> dict:
        status, body = get_json(f"http://127.0.0.1:{self.feed_port}/health")
        return body if status == 200 and body else {}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Watchdog(threading.Thread):
    """Samples the feed's resident memory every 0.25 s while streams are open; past ``limit``
    it has the stream client close every stream at once (and report what it got so far)."""

    def __init__(self, pid: int, client: Streams, limit: int, started: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.client, self.limit, self.started = pid, client, limit, started
        self.samples: list[tuple[float, int]] = []
        self.tripped: dict | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 900
        while not self.done.wait(0.25) and time.monotonic() < deadline:
            try:
                rss = rss_bytes(self.pid)
            except (OSError, RuntimeError):
                return
            self.samples.append((round(time.perf_counter() - self.started, 2), rss))
            if rss > self.limit and self.tripped is None:
                self.tripped = {"at_s": self.samples[-1][0], "feed_rss": rss}
                self.client.stop("abort", wait=10)

    def stop(self) -> dict:
        self.done.set()
        self.join(10)
        peak = max(self.samples, key=lambda s: s[1]) if self.samples else (None, None)
        # At most ~120 samples in the report: (seconds since the streams were opened, MiB).
        step = max(1, len(self.samples) // 120)
        return {
            "feed_rss_peak": peak[1],
            "feed_rss_peak_at_s": peak[0],
            "tripped": self.tripped,
            "feed_rss_mib_series": [(t, round(r / 2**20)) for t, r in self.samples[::step]],
        }


# -- one measurement ------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[int(q * (len(ordered) - 1))]


def settle(url: str, server: Server, seconds: float = 120) -> int | None:
    """Wait until the rollup queue is folded and the feed has read the whole change log;
    returns the log's last id, or None when that did not happen within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server.check()
        with psycopg.connect(url) as conn:
            queued = conn.execute("SELECT count(*) FROM tiles.pending_changes").fetchone()[0]
            last = conn.execute("SELECT coalesce(max(id), 0) FROM tiles.change_events").fetchone()[0]
        if queued == 0 and server.feed_health().get("last_event_id") == last:
            return last
        time.sleep(0.25)
    return None


def log_errors(path: Path, offset: int) -> dict[str, int]:
    """What went wrong in the servers during one measurement, from their output."""
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    marks = {
        "tracebacks": "Traceback (most recent call last)",
        "feed_errors": "[feed] ERROR",
        "MemoryError": "MemoryError",
        "ClientConnectionResetError": "ClientConnectionResetError",
    }
    return {name: sum(1 for line in lines if mark in line) for name, mark in marks.items()}


def last_event_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM tiles.change_events").fetchone()[0]


def measure(url: str, server: Server, *, streams: int, token: str, points, args, postmaster) -> dict:
    server.check()
    last_before = settle(url, server)
    if last_before is None:
        raise SystemExit("the feed did not catch up before a measurement")
    wait_until(lambda: server.feed_health().get("streams") == 0, seconds=60, what="0 open streams")
    time.sleep(1.0)
    log_offset = Path(server.log.name).stat().st_size
    rss_before = rss_bytes(server.feed_pid)
    result: dict = {"streams": streams, "load_average_before": load_average(), "feed_rss_before": rss_before}
    client = watchdog = None
    if streams:
        started = time.perf_counter()
        client = Streams(server.feed_port, token, streams, args.read_interval)
        result["client_opened"] = client.opened
        wait_until(
            lambda: server.feed_health().get("streams") == streams,
            seconds=120,
            what=f"the feed to report {streams} streams (client: {client.opened})",
        )
        result["open_seconds"] = round(time.perf_counter() - started, 2)
        time.sleep(1.0)
        rss_open = rss_bytes(server.feed_pid)
        result["feed_rss_open"] = rss_open
        result["rss_per_stream_bytes"] = round((rss_open - rss_before) / streams)
        watchdog = Watchdog(server.feed_pid, client, args.feed_rss_limit_gib * 2**30, time.perf_counter())
        watchdog.start()
    meter = CpuMeter(
        {
            "feed": lambda: [server.feed_pid],
            "gunicorn": server.gunicorn_pids,
            "postgres": (lambda: children(postmaster)) if postmaster else (lambda: []),
            "stream_client": (lambda: [client.process.pid]) if client else (lambda: []),
            "load_generator": lambda: [os.getpid()],
        }
    )
    meter.start()
    filing_started = time.perf_counter()
    latencies, statuses, seconds = fire(server.port, token, points, args.requests, args.concurrency)
    filed_at = time.monotonic()
    cpu = meter.stop()
    result["load_average_after"] = load_average()
    ordered = sorted(latencies)
    result |= {
        "requests": len(latencies),
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "rate_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(percentile(ordered, 0.95), 1),
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "max_ms": round(ordered[-1], 1),
        "cpu_during_filing": cpu,
    }
    last_after = settle(url, server)
    result["feed_caught_up_s_after_filing"] = (
        round(time.monotonic() - filed_at, 2) if last_after is not None else None
    )
    if last_after is None:
        last_after = last_event_id(url)
    with psycopg.connect(url) as conn:
        logged, bulk = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE kind = 'bulk') FROM tiles.change_events"
            " WHERE id > %s AND id <= %s",
            [last_before, last_after],
        ).fetchone()
    result |= {"events_logged": logged, "bulk_events_logged": bulk}
    if client:
        result["feed_rss_after_filing"] = rss_bytes(server.feed_pid)
        result["feed_streams_after_filing"] = server.feed_health().get("streams")
        counts = client.stop()
        result["cpu_filing_and_delivery"] = meter.stop()
        # The client has ended by now: its own CPU time is in "delivered", client_cpu_s.
        result["cpu_filing_and_delivery"]["cpu_s"].pop("stream_client")
        watchdog_report = watchdog.stop()
        result["feed_memory"] = watchdog_report
        tripped = watchdog_report["tripped"]
        result["aborted"] = tripped is not None
        if tripped:
            # Seconds since the filing began; a trip after the filing ended leaves its latencies
            # valid (the streams were open throughout), only the delivery unfinished.
            tripped["s_into_filing"] = round(tripped["at_s"] - (filing_started - watchdog.started), 2)
            tripped["during_filing"] = tripped["s_into_filing"] < seconds
        if counts is not None:
            events = counts.pop("events")
            # CLOCK_MONOTONIC is one clock for every process of the machine.
            counts["last_event_s_after_filing"] = round(counts.pop("last_event_monotonic") - filed_at, 2)
            counts["ended_by_server_s_after_filing"] = [
                round(t - filed_at, 2) for t in counts.pop("ended_by_server_monotonic")
            ]
            result["delivered"] = {
                "complete_run": tripped is None,
                "streams_counted": len(events),
                "min": events[0] if events else None,
                "median": statistics.median(events) if events else None,
                "max": events[-1] if events else None,
                "streams_with_all_events": sum(1 for e in events if e >= logged),
                "bytes_per_event": round(counts["bytes"] / max(1, sum(events))),
                **counts,
            }
        result["feed_rss_peak_so_far"] = rss_bytes(server.feed_pid, "VmHWM")
        wait_until(lambda: server.feed_health().get("streams") == 0, seconds=120, what="streams to close")
        result["feed_rss_after_close"] = rss_bytes(server.feed_pid)
    result["serve_log_errors"] = log_errors(Path(server.log.name), log_offset)
    tail = ""
    if client:
        tail = f"  rss/stream {result['rss_per_stream_bytes'] / 1024:.1f} KiB"
        if "delivered" in result:
            tail += (
                f"  delivered min {result['delivered']['min']} / median {result['delivered']['median']}"
                f" of {logged}, last event {result['delivered']['last_event_s_after_filing']} s after the"
                " filing"
            )
        tail += f", feed RSS peak {result['feed_memory']['feed_rss_peak'] / 2**20:.0f} MiB"
        if result["aborted"]:
            tail += (
                f"  MEMORY GUARD: feed RSS {tripped['feed_rss'] / 2**30:.1f} GiB"
                f" {tripped['s_into_filing']} s after the filing began, streams closed"
            )
    print(
        f"  {streams:>5} streams: {result['rate_per_s']:6.1f} filings/s  p50 {result['p50_ms']:6.1f}"
        f"  p95 {result['p95_ms']:6.1f}  p99 {result['p99_ms']:6.1f} ms{tail}"
        f"  cpu {cpu['cpu_s']}  load {result['load_average_after'][0]}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="the bench database (created when missing)")
    parser.add_argument("--incidents", type=int, default=200_000, help="incidents stored before filing")
    parser.add_argument("--streams", type=int, action="append", help="stream counts (default 0, 200, 5000)")
    parser.add_argument("--requests", type=int, default=1500, help="filings per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="filing clients")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--port", type=int, default=18441, help="gunicorn; the feed gets port + 1")
    parser.add_argument(
        "--read-interval", type=float, default=0.05, help="seconds between the client's reads"
    )
    parser.add_argument(
        "--feed-rss-limit-gib",
        type=float,
        default=3.0,
        help="close every stream when the feed's resident memory passes this (protects the machine)",
    )
    parser.add_argument(
        "--address-space-limit-gib",
        type=float,
        default=8.0,
        help="RLIMIT_AS of each server process: a backstop against the kernel's OOM killer",
    )
    parser.add_argument("--log", type=Path, help="gridwatch serve's output (default: a file in /tmp)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--reuse", action="store_true", help="the database as it is, not a rebuilt one")
    args = parser.parse_args()
    counts = args.streams or [0, 200, 5000]
    log = args.log or Path(tempfile.mkstemp(prefix="gridwatch-bench-feed-", suffix=".log")[1])

    report = {
        "command": command_line(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_start": load_average(),
        "serve_log": str(log),
    }
    started = time.perf_counter()
    if not args.reuse:
        drop_database(args.database_url)
    ensure_database(args.database_url)
    report["loads"] = grow(args.database_url, target=args.incidents, chunk=250_000)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        report["incidents_before"] = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    token = operator_token(args.database_url)
    points = sample_points(args.database_url, 2000)
    postmaster = postmaster_pid(args.database_url)
    report["setup_seconds"] = round(time.perf_counter() - started, 1)
    report["settings"] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "gunicorn": f"{args.workers} workers x 8 threads (gthread), as gridwatch serve runs it",
        "read_interval_s": args.read_interval,
        "GRIDWATCH_FEED_STREAMS_PER_USER": 100000,
        "feed_rss_limit_gib": args.feed_rss_limit_gib,
        "address_space_limit_gib": args.address_space_limit_gib,
    }
    report["runs"], report["server_starts"] = [], []

    def start_server() -> Server:
        server = Server(
            args.database_url,
            port=args.port,
            workers=args.workers,
            log=log,
            memory_limit=int(args.address_space_limit_gib * 2**30),
        )
        report["server_starts"].append(round(time.perf_counter() - started, 1))
        fire(server.port, token, points, 200, args.concurrency)  # warm up pools and caches
        return server

    for repeat in range(args.repeats):
        order = counts[repeat % len(counts) :] + counts[: repeat % len(counts)]
        print(f"repeat {repeat + 1}: {order}", flush=True)
        for streams in order:
            code = code_version()
            server = start_server()
            try:
                run = measure(
                    args.database_url,
                    server,
                    streams=streams,
                    token=token,
                    points=points,
                    args=args,
                    postmaster=postmaster,
                )
            except ServerGone as gone:
                print(f"  {streams:>5} streams: {gone}", flush=True)
                run = {"streams": streams, "server_gone": str(gone), "load_average": load_average()}
            finally:
                server.close()
            report["runs"].append({"repeat": repeat + 1, "code": code, **run})
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=1) + "\n")
    report["serve_log_tail"] = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if '"POST /api/v1/incidents' not in line and "GET /health" not in line
    ][-30:]
    report["summary"] = summarize(report["runs"], counts)
    report["code_versions"] = sorted({json.dumps(r["code"], sort_keys=True) for r in report["runs"]})
    if len(report["code_versions"]) > 1:
        print(f"WARNING: the server's code changed during the run: {report['code_versions']}")
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["load_average_end"] = load_average()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report["summary"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


def summarize(runs: list[dict], counts: list[int]) -> list[dict]:
    """Medians over the repeats, per stream count. Filing numbers leave out runs in which the
    memory guard closed the streams while the filing ran (or the server died); delivery numbers
    come from runs the guard did not stop."""
    rows = []
    base = None
    for streams in counts:
        mine = [r for r in runs if r["streams"] == streams]
        valid = [
            r
            for r in mine
            if "p95_ms" in r and not (r.get("aborted") and r["feed_memory"]["tripped"]["during_filing"])
        ]
        complete = [r for r in valid if "delivered" in r and not r.get("aborted")]
        row = {
            "streams": streams,
            "repeats": len(mine),
            "filing_valid": len(valid),
            "delivery_complete": len(complete),
            "memory_guard_tripped": sum(1 for r in mine if r.get("aborted")),
            "server_gone": sum(1 for r in mine if "server_gone" in r),
        }
        if valid:
            row |= {
                key: statistics.median(r[key] for r in valid)
                for key in ("rate_per_s", "p50_ms", "p95_ms", "p99_ms")
            }
            row["p95_each"] = [r["p95_ms"] for r in valid]
        if streams:
            opened = [r for r in mine if "rss_per_stream_bytes" in r]
            if opened:
                row["rss_per_stream_bytes"] = statistics.median(r["rss_per_stream_bytes"] for r in opened)
                row["feed_rss_peak_each"] = [r["feed_memory"]["feed_rss_peak"] for r in opened]
                row["feed_rss_highwater_each"] = [r["feed_rss_peak_so_far"] for r in opened]
                row["feed_cpu_s_filing_and_delivery_each"] = [
                    r["cpu_filing_and_delivery"]["cpu_s"]["feed"] for r in opened
                ]
                row["ended_by_server_each"] = [
                    r["delivered"]["ended_by_server"] if "delivered" in r else None for r in opened
                ]
                row["largest_chunk_bytes_each"] = [
                    r["delivered"]["sampled_streams_chunks"]["largest_chunk_bytes"]
                    if "delivered" in r
                    else None
                    for r in opened
                ]
                row["delivered_median_each"] = [
                    r["delivered"]["median"] if "delivered" in r else None for r in opened
                ]
            if complete:
                row["delivered_min"] = min(r["delivered"]["min"] for r in complete)
                row["delivered_median"] = statistics.median(r["delivered"]["median"] for r in complete)
                row["events_logged"] = [r["events_logged"] for r in complete]
                row["streams_with_all_events"] = [r["delivered"]["streams_with_all_events"] for r in complete]
                row["last_event_s_after_filing"] = [
                    r["delivered"]["last_event_s_after_filing"] for r in complete
                ]
        row["serve_log_errors_each"] = [r.get("serve_log_errors") for r in mine]
        if streams == 0 and "p95_ms" in row:
            base = row["p95_ms"]
        if base and "p95_ms" in row:
            row["p95_vs_no_streams"] = round(row["p95_ms"] / base, 2)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
