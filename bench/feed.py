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
   meanwhile, then asks the client how many events each stream got; every stream should have
   got every event logged during the filing (an operator sees the whole county).

The stream counts run in one server run, in a rotated order in each repeat (repeat 1: 0, 200,
5000; repeat 2: 200, 5000, 0; ...), so the database's slow growth (each run files incidents)
and the feed process's history are spread over the counts; medians over the repeats are
reported. The feed's per-user cap (GRIDWATCH_FEED_STREAMS_PER_USER, 32) is raised for the bench
(all streams use the operator's token, as a wall of screens signed in as one account would).

    .venv/bin/python bench/feed.py --database-url postgresql://.../gridwatch_bench_feed \\
        --incidents 200000 --requests 1500 --concurrency 8 --repeats 3 --out bench/results/feed.json

The stream client is cheap on purpose, because it shares the machine's cores with the server:
it connects from a pool of threads (blocking sockets), then polls all sockets with epoll every
--read-interval seconds and reads whatever is there (browsers on other machines would cost the
server nothing). Its CPU time is reported beside the feed's, the workers' and PostgreSQL's
(utime + stime from /proc, over the filing phase). Data: the synthetic county and incidents of
bench/tiles.py; the database is dropped and rebuilt first unless --reuse.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from filing import drop_database, fire, operator_token, sample_points  # noqa: E402
from tiles import ensure_database, grow  # noqa: E402

EVENT_MARK = b"event: incident\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc ------------------------------------------------------------------------------


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (VmRSS), or its peak so far (VmHWM), of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def load_average() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def postmaster_pid(url: str) -> int | None:
    """The postmaster of the project's local cluster when the bench database lives there."""
    pid_file = ROOT / "var" / "pg" / "data" / "postmaster.pid"
    info = psycopg.conninfo.conninfo_to_dict(url)
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    return int(lines[0]) if len(lines) > 3 and lines[3].strip() == str(info.get("port")) else None


class CpuMeter:
    """CPU seconds of groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, callable]) -> None:
        self.groups = groups

    def sample(self) -> dict[str, dict[int, float]]:
        return {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self.sample()
        self.started = time.perf_counter()

    def stop(self) -> dict:
        after = self.sample()
        seconds = time.perf_counter() - self.started
        used = {
            name: round(sum(v - self.before[name].get(pid, 0.0) for pid, v in after[name].items()), 2)
            for name in after
        }
        return {"wall_s": round(seconds, 2), "cpu_s": used}


# -- the stream client (a process of its own) --------------------------------------------


def _open_stream(port: int, token: str) -> tuple[socket.socket | None, int | str, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        (
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = sock.recv(65536)
        if not data:
            sock.close()
            return None, "closed before headers", b""
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        sock.close()
        return None, status, b""
    sock.setblocking(False)
    return sock, 200, rest


def stream_client(
    pipe, port: int, token: str, count: int, read_interval: float, connect_threads: int
) -> None:
    """Open ``count`` streams, report, read them until told to stop, report the event counts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.perf_counter()
    with ThreadPoolExecutor(connect_threads) as pool:
        opened = list(pool.map(lambda _: _safe_open(port, token), range(count)))
    socks = [s for s, _, _ in opened if s is not None]
    failures: dict[str, int] = {}
    for s, status, _ in opened:
        if s is None:
            failures[str(status)] = failures.get(str(status), 0) + 1
    events = {s.fileno(): rest.count(EVENT_MARK) for s, _, rest in opened if s is not None}
    tails = {s.fileno(): rest[-(len(EVENT_MARK) - 1) :] for s, _, rest in opened if s is not None}
    received = dict.fromkeys(events, 0)
    ended: set[int] = set()
    by_fd = {s.fileno(): s for s in socks}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    pipe.send(
        {"opened": len(socks), "failures": failures, "seconds": round(time.perf_counter() - started, 2)}
    )

    def read_ready() -> int:
        got = 0
        for fd, _ in poller.poll(0):
            sock = by_fd[fd]
            while True:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    ended.add(fd)
                    poller.unregister(fd)
                    break
                got += len(data)
                received[fd] += len(data)
                buffer = tails[fd] + data
                events[fd] += buffer.count(EVENT_MARK)
                tails[fd] = buffer[-(len(EVENT_MARK) - 1) :]
        return got

    deadline = time.monotonic() + 3600  # bounded: the parent stops it long before
    while time.monotonic() < deadline and not pipe.poll(read_interval):
        read_ready()
    pipe.recv()
    # Told to stop once the feed has read every event: read on until the sockets are quiet
    # for a second (what the feed still had queued), at most 60 s.
    stop_at = time.monotonic()
    last_data = stop_at
    while time.monotonic() - last_data < 1.0 and time.monotonic() - stop_at < 60:
        time.sleep(read_interval)
        if read_ready():
            last_data = time.monotonic()
    for sock in socks:
        sock.close()
    pipe.send(
        {
            "events": sorted(events.values()),
            "bytes": sum(received.values()),
            "ended_by_server": len(ended),
            "drained_s_after_stop": round(last_data - stop_at, 2),
        }
    )


def _safe_open(port: int, token: str):
    try:
        return _open_stream(port, token)
    except OSError as error:
        return None, type(error).__name__, b""


class Streams:
    """N open streams held by a client process."""

    def __init__(self, port: int, token: str, count: int, read_interval: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child_end = context.Pipe()
        self.process = context.Process(
            target=stream_client, args=(child_end, port, token, count, read_interval, 32), daemon=True
        )
        self.process.start()
        if not self.pipe.poll(300):
            self.process.kill()
            raise SystemExit(f"the stream client did not open {count} streams within 300 s")
        self.opened = self.pipe.recv()

    def stop(self) -> dict:
        self.pipe.send("stop")
        if not self.pipe.poll(120):
            self.process.kill()
            raise SystemExit("the stream client did not report")
        result = self.pipe.recv()
        self.process.join(30)
        return result


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


class Server:
    """`gridwatch serve` (gunicorn and the feed) on 127.0.0.1."""

    def __init__(self, url: str, *, port: int, workers: int, log: Path) -> None:
        self.port, self.feed_port = port, port + 1
        env = {
            **os.environ,
            "GRIDWATCH_DATABASE_URL": url,
            "GRIDWATCH_SECRET_KEY": "bench",
            "GRIDWATCH_FEED_STREAMS_PER_USER": "100000",
        }
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gridwatch")),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
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


# -- one measurement ------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    return ordered[int(q * (len(ordered) - 1))]


def settle(url: str, server: Server) -> int:
    """Wait until the rollup queue is folded and the feed has read the whole change log;
    returns the log's last id."""

    def done():
        with psycopg.connect(url) as conn:
            queued = conn.execute("SELECT count(*) FROM tiles.pending_changes").fetchone()[0]
            last = conn.execute("SELECT coalesce(max(id), 0) FROM tiles.change_events").fetchone()[0]
        return last if queued == 0 and server.feed_health().get("last_event_id") == last else None

    return wait_until(done, seconds=120, what="the rollup queue and the feed to catch up", every=0.25)


def measure(url: str, server: Server, *, streams: int, token: str, points, args, postmaster) -> dict:
    last_before = settle(url, server)
    wait_until(lambda: server.feed_health().get("streams") == 0, seconds=60, what="0 open streams")
    time.sleep(1.0)
    rss_before = rss_bytes(server.feed_pid)
    result: dict = {"streams": streams, "load_average_before": load_average(), "feed_rss_before": rss_before}
    client = None
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
    latencies, statuses, seconds = fire(server.port, token, points, args.requests, args.concurrency)
    cpu = meter.stop()
    result["load_average_after"] = load_average()
    last_after = settle(url, server)
    with psycopg.connect(url) as conn:
        logged = conn.execute(
            "SELECT count(*) FROM tiles.change_events WHERE id > %s AND id <= %s", [last_before, last_after]
        ).fetchone()[0]
        bulk = conn.execute(
            "SELECT count(*) FROM tiles.change_events WHERE id > %s AND id <= %s AND kind = 'bulk'",
            [last_before, last_after],
        ).fetchone()[0]
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
        "events_logged": logged,
        "bulk_events_logged": bulk,
        "cpu_during_filing": cpu,
    }
    if client:
        result["feed_rss_after_filing"] = rss_bytes(server.feed_pid)
        result["feed_rss_peak_so_far"] = rss_bytes(server.feed_pid, "VmHWM")
        result["feed_streams_after_filing"] = server.feed_health().get("streams")
        counts = client.stop()
        events = counts.pop("events")
        result["delivered"] = {
            "streams_counted": len(events),
            "min": events[0] if events else None,
            "median": statistics.median(events) if events else None,
            "max": events[-1] if events else None,
            "streams_with_all_events": sum(1 for e in events if e >= logged),
            **counts,
        }
        wait_until(lambda: server.feed_health().get("streams") == 0, seconds=60, what="streams to close")
    print(
        f"  {streams:>5} streams: {result['rate_per_s']:6.1f} filings/s  p50 {result['p50_ms']:6.1f}"
        f"  p95 {result['p95_ms']:6.1f}  p99 {result['p99_ms']:6.1f} ms"
        + (
            f"  rss/stream {result['rss_per_stream_bytes'] / 1024:.1f} KiB"
            f"  delivered min {result['delivered']['min']} / median {result['delivered']['median']}"
            f" of {logged}"
            if client
            else ""
        )
        + f"  cpu {cpu['cpu_s']}  load {result['load_average_after'][0]}",
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
    parser.add_argument("--read-interval", type=float, default=0.2, help="seconds between the client's reads")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--reuse", action="store_true", help="the database as it is, not a rebuilt one")
    args = parser.parse_args()
    counts = args.streams or [0, 200, 5000]

    report = {
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_start": load_average(),
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
    }
    report["runs"] = []
    with tempfile.TemporaryDirectory(prefix="gridwatch-bench-feed-") as tmp:
        server = Server(args.database_url, port=args.port, workers=args.workers, log=Path(tmp) / "serve.log")
        try:
            report["feed_rss_at_start"] = rss_bytes(server.feed_pid)
            fire(server.port, token, points, 200, args.concurrency)  # warm up pools and caches
            for repeat in range(args.repeats):
                order = counts[repeat % len(counts) :] + counts[: repeat % len(counts)]
                print(f"repeat {repeat + 1}: {order}", flush=True)
                for streams in order:
                    run = measure(
                        args.database_url,
                        server,
                        streams=streams,
                        token=token,
                        points=points,
                        args=args,
                        postmaster=postmaster,
                    )
                    report["runs"].append({"repeat": repeat + 1, **run})
                    if args.out:
                        args.out.parent.mkdir(parents=True, exist_ok=True)
                        args.out.write_text(json.dumps(report, indent=1) + "\n")
        finally:
            server.close()
            log_tail = (Path(tmp) / "serve.log").read_bytes()[-4000:].decode(errors="replace")
    report["serve_log_tail"] = [
        line
        for line in log_tail.splitlines()
        if '"POST /api/v1/incidents' not in line and "GET /health" not in line
    ][-20:]
    report["summary"] = summarize(report["runs"], counts)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report["load_average_end"] = load_average()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report["summary"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


def summarize(runs: list[dict], counts: list[int]) -> list[dict]:
    """Medians over the repeats, per stream count."""
    rows = []
    base = None
    for streams in counts:
        mine = [r for r in runs if r["streams"] == streams]
        if not mine:
            continue
        row = {
            "streams": streams,
            "repeats": len(mine),
            **{
                key: statistics.median(r[key] for r in mine)
                for key in ("rate_per_s", "p50_ms", "p95_ms", "p99_ms")
            },
            "p95_each": [r["p95_ms"] for r in mine],
        }
        if streams:
            row["rss_per_stream_bytes"] = statistics.median(r["rss_per_stream_bytes"] for r in mine)
            row["delivered_min"] = min(r["delivered"]["min"] for r in mine)
            row["delivered_median"] = statistics.median(r["delivered"]["median"] for r in mine)
            row["events_logged"] = [r["events_logged"] for r in mine]
            row["streams_with_all_events"] = [r["delivered"]["streams_with_all_events"] for r in mine]
            row["feed_cpu_s"] = statistics.median(r["cpu_during_filing"]["cpu_s"]["feed"] for r in mine)
        if streams == 0:
            base = row["p95_ms"]
        if base:
            row["p95_vs_no_streams"] = round(row["p95_ms"] / base, 2)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
