"""The benchmarks' server processes: the `gridwatch serve` command line, and statistics from
/proc (resident memory, CPU seconds, children)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def serve_command(port: int, *, workers: int, only: str | None = None) -> list[str]:
    """`gridwatch serve` on loopback: gunicorn on ``port`` and the feed on port + 1, or ``only``
    one of them."""
    return [
        str(Path(sys.executable).with_name("gridwatch")),
        "serve",
        *(["--only", only] if only else []),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def ready_workers(log) -> int:
    """How many workers logged that they take requests (server/gunicorn_conf.py) in ``log``."""
    log.flush()
    # pread: the server writes through the same file offset, which a seek would move.
    return os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0).count(b"Worker ready for requests")


def start_api(url: str, *, port: int, workers: int, env: dict, log) -> tuple[subprocess.Popen, float]:
    """`gridwatch serve --only api`; returns it once /health answers 200 and every worker takes
    requests (a burst that came while one worker still warmed its connections would all queue on
    the other, through keep-alive for the whole run), and the seconds that took."""
    started = time.perf_counter()
    server = subprocess.Popen(
        serve_command(port, workers=workers, only="api"),
        cwd=ROOT,
        env={**os.environ, "GRIDWATCH_DATABASE_URL": url, "GRIDWATCH_SECRET_KEY": "bench", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gridwatch serve ended with {server.returncode}")
        if health_ok(port) and ready_workers(log) >= workers:
            return server, time.perf_counter() - started
        time.sleep(0.1)
    stop(server)
    raise SystemExit("gridwatch serve --only api did not answer /health with every worker within 90 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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


def code_version() -> dict:
    """The commit, and a digest of the server's code as it is on disk (others may be editing it:
    each measurement starts a new server, which reads it again)."""
    digest = hashlib.sha256()
    for folder in ("server", "layers", "sql"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".sql") and path.is_file():
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"git_head": head, "code_sha256": digest.hexdigest()[:16]}


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
