"""What the benchmarks share: a fresh installation, `blastwall serve` on a free port,
PostgreSQL preparation and percentiles."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PROTECTED_DATABASES = {"test", "postgres", "template0", "template1"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark could not run (setup failed)."""


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil(n * pct / 100)
    return sorted_values[int(rank) - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """The environment of the `blastwall` subprocesses: none of the caller's BLASTWALL_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLASTWALL_")}
    env["BLASTWALL_DATA_DIR"] = str(data_dir)
    if database_url:
        env["BLASTWALL_DATABASE_URL"] = database_url
    return env


def blastwall(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run one `blastwall` CLI command (this interpreter's install) and answer its stdout."""
    command = [sys.executable, "-m", "blastwall.cli", *args]
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise BenchError(
            f"`blastwall {' '.join(args)}` exited {done.returncode}:\n{done.stderr.strip()}"
        )
    return done.stdout


def prepare_postgres(url: str) -> None:
    """Create the bench database if missing and give it an empty public schema."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dbname = str(conninfo_to_dict(url).get("dbname") or "")
    if not dbname or dbname in PROTECTED_DATABASES:
        raise BenchError(f"refusing to use database {dbname!r}; name a dedicated one")
    admin = make_conninfo(url, dbname="postgres", connect_timeout=3)
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with psycopg.connect(make_conninfo(url, connect_timeout=3), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def postgres_unreachable(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None when it answers."""
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo

        with psycopg.connect(make_conninfo(url, dbname="postgres", connect_timeout=3)) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def wait_healthy(proc: subprocess.Popen[Any], base: str, log_path: Path, ceiling: float) -> None:
    """Wait until the server at `base` answers its health check; BenchError if it exits or
    is not healthy within `ceiling` seconds (with the end of its log)."""
    deadline = time.monotonic() + ceiling
    while True:
        if proc.poll() is not None:
            raise BenchError(f"server exited {proc.returncode}:\n{tail(log_path, 20)}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"server not healthy after {ceiling:g} s:\n{tail(log_path, 20)}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a server as Ctrl-C would, killing it after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def server(
    env: dict[str, str], cwd: Path, log_path: Path, prefix: tuple[str, ...] = ()
) -> Iterator[str]:
    """`blastwall serve` on a free port; answers its base URL; always stopped afterwards.
    `prefix` goes before the command (e.g. `taskset -c 0` to pin it to one core)."""
    port = free_port()
    command = [*prefix, sys.executable, "-m", "blastwall.cli", "serve", "--host", "127.0.0.1"]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(proc, base, log_path, ceiling=30)
            yield base
        finally:
            stop(proc)


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
