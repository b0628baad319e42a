"""Login timing benchmark: does a wrong password take as long for a username that exists as for
one that does not (else the time tells an attacker which usernames exist)?

    .venv/bin/python bench/login.py --database-url postgresql://.../gridwatch --rounds 40 \\
        --out bench/results/login.json

Each round posts one wrong password for an existing user and one for an unknown username, in
alternating order, through the whole Flask app (throttle, lookup, scrypt or the dummy scrypt,
the 401), each from its own client address so the throttle's free attempts are never used up.
The bench user is created with a password and removed at the end. Goal (issue 14): the medians
within 10 % of each other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feed import code_version  # noqa: E402
from procstats import load_average  # noqa: E402

from server.app import create_app  # noqa: E402
from server.auth.users import create_user  # noqa: E402
from server.settings import Settings  # noqa: E402

BENCH_USER = "bench_login_timing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with psycopg.connect(args.database_url, row_factory=dict_row) as conn:
        conn.execute("DELETE FROM users WHERE username = %s", [BENCH_USER])
        create_user(conn, username=BENCH_USER, role="leader", password="the right one, not sent")
    client = create_app(Settings(database_url=args.database_url, secret_key="bench")).test_client()
    timings: dict[str, list[float]] = {"existing user": [], "unknown user": []}
    try:
        for round_number in range(args.rounds + 1):
            cases = [("existing user", BENCH_USER), ("unknown user", f"nobody_{round_number}")]
            for case, username in cases if round_number % 2 else reversed(cases):
                address = f"10.{round_number // 250}.{round_number % 250}.{1 + (case == 'unknown user')}"
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/auth/login",
                    json={"username": username, "password": "wrong"},
                    environ_base={"REMOTE_ADDR": address},
                )
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 401, response.get_json()
                if round_number:  # the first round warms the app up
                    timings[case].append(elapsed)
    finally:
        with psycopg.connect(args.database_url) as conn:
            conn.execute(
                "DELETE FROM login_throttle WHERE key LIKE %s OR key LIKE %s OR key LIKE %s",
                [f"%{BENCH_USER}%", "user%nobody\\_%", "%:10.%"],
            )
            conn.execute("DELETE FROM users WHERE username = %s", [BENCH_USER])
    medians = {case: round(statistics.median(values), 1) for case, values in timings.items()}
    result = {
        "command": " ".join(sys.argv),
        "code": code_version(),
        "load_average_start": load_average(),
        "rounds": args.rounds,
        "median_ms": medians,
        "p90_ms": {case: round(statistics.quantiles(v, n=10)[-1], 1) for case, v in timings.items()},
        "ratio_unknown_to_existing": round(medians["unknown user"] / medians["existing user"], 3),
        "goal": "ratio within 0.9-1.1",
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
