"""Public pages under load: clerk capture POST and one-click unsubscribe POST behind gunicorn.

Target (performance.md): p99 <= 50 ms at 200 requests/s on this 2-core box.

Usage (PostgreSQL and Redis; builds and finally drops its own database, flushes only its own Redis db):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
        python -m bench.public_pages --rate 200 --duration 20 --runs 3

``DATABASE_URL`` only names the server: the benchmark creates ``--database`` (default
``tandem_bench_public``) there, migrates it, and drops it at the end (``--keep-db`` keeps it).

What it does:
1. Fixture: one store, ``--clerks`` clerks at it (one logged-in session each, as at real tills),
   published email and SMS disclosures, ``--customers`` customers with email consent granted.
2. SQL statements per request, measured once in process with Django's test client.
3. gunicorn on 127.0.0.1 with production settings (DEBUG off, SECRET_KEY and SUPPRESSION_HMAC_KEY
   set, Redis cache and broker, persistent DB connections; requests carry ``X-Forwarded-Proto:
   https`` as a TLS-terminating proxy would). The capture rate limit is raised for the run with
   ``TANDEM_CAPTURE_RATE_LIMIT_PER_MINUTE`` (default 30 per clerk per minute would refuse the load).
4. An open-loop driver (asyncio, loopback only): request i is due at ``start + i / rate`` whatever
   happened to earlier ones, and its latency counts from that due time, so a stalled server is not
   hidden by a driver that waits for it (no coordinated omission). Bounded in count (rate x duration)
   and time (per-request timeout, and a hard stop ``--timeout`` seconds after the last send).
   The driver reports its own CPU use and how late it sent, to show it is not the bottleneck.

Workers: ``sync`` by default, 4 of them (2 per core). The pages are short, mostly CPU in Python plus a
few millisecond-scale waits on Postgres and Redis; four processes keep both cores busy while one
waits, without the GIL contention of threads in one process. Production puts a buffering proxy in
front, which is what sync workers need against slow clients. ``--worker-class gthread --threads N``
compares threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field

HOST = "127.0.0.1"
SECRET_KEY = "bench-public-pages-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105
SUPPRESSION_HMAC_KEY = "bench-public-pages-suppression-key"


# --- environment and fixture ------------------------------------------------------------------


def _server_env(args, database_url: str) -> dict[str, str]:
    """What both this process and gunicorn run with: production settings on the bench database."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "SUPPRESSION_HMAC_KEY": SUPPRESSION_HMAC_KEY,
        "ALLOWED_HOSTS": HOST,
        "PUBLIC_BASE_URL": f"https://{HOST}:{args.port}",
        "TANDEM_CAPTURE_RATE_LIMIT_PER_MINUTE": str(args.capture_rate_limit),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def _database_urls(args) -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server (its database name is ignored).")
    base = url.rsplit("/", 1)[0]
    return f"{base}/postgres", f"{base}/{args.database}"


def _database_create(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _database_drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Fixture:
    store_id: int
    clerk_ids: list[int]
    customer_public_ids: list[str]
    customer_emails: list[str]


def _fixture_build(args) -> Fixture:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from customers.models import Channel, ConsentState, ConsentStatus, Customer, Source, Store, StoreMembership
    from customers.normalization import address_hmac
    from customers.roles import CLERK, roles_ensure
    from customers.services.consent import disclosure_publish

    call_command("migrate", verbosity=0)
    store = Store.objects.create(
        code="bench-1",
        name="Bench Street",
        street="1 Main Street",
        city="Springfield",
        postal_code="12345",
        state="NY",
        country="US",
        time_zone="America/New_York",
        region="North",
    )
    roles_ensure()
    clerk_group = Group.objects.get(name=CLERK)
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"clerk{i}", email=f"clerk{i}@staff.example.com") for i in range(args.clerks)]
    )
    StoreMembership.objects.bulk_create(
        [StoreMembership(user=user, store=store, role=StoreMembership.Role.CLERK) for user in users]
    )
    clerk_group.user_set.add(*users)
    disclosure_publish(channel=Channel.EMAIL, text="Email me news and offers. Leave any time.")
    disclosure_publish(
        channel=Channel.SMS, text="Marketing texts, up to 4/month. Msg & data rates may apply. Reply STOP to opt out."
    )
    emails = [f"known{i}@example.com" for i in range(args.customers)]
    customers = Customer.objects.bulk_create(
        [
            Customer(
                email=email,
                email_hmac=address_hmac(Channel.EMAIL, email),
                first_name="Known",
                source=Source.STORE,
                home_store=store,
                source_store=store,
                time_zone=store.time_zone,
                time_zone_source=Customer.TimeZoneSource.STORE,
            )
            for email in emails
        ],
        batch_size=2000,
    )
    ConsentState.objects.bulk_create(
        [ConsentState(customer=c, channel=Channel.EMAIL, status=ConsentStatus.GRANTED) for c in customers],
        batch_size=2000,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Fixture(
        store_id=store.pk,
        clerk_ids=[u.pk for u in users],
        customer_public_ids=[str(c.public_id) for c in customers],
        customer_emails=emails,
    )


# --- request bodies -----------------------------------------------------------------------------


def _capture_form(*, run: int, i: int, fixture: Fixture, csrf: str) -> dict[str, str]:
    """Half existing customers, half new; every capture ticks email consent, a quarter add a phone + SMS."""
    form = {"csrfmiddlewaretoken": csrf, "first_name": "Pat", "consent_email": "on", "keep_typed_email": "1"}
    if i % 2 == 0:
        # Existing emails, offset per run so runs do not repeat the same profiles.
        form["email"] = fixture.customer_emails[(run * 7919 + i) % len(fixture.customer_emails)]
    else:
        form["email"] = f"new-r{run}-{i}@example.com"
        if i % 4 == 1:
            form["phone"] = f"+1212{5000000 + run * 200000 + i:07d}"
            form["consent_sms"] = "on"
    return form


def _unsubscribe_token(public_id: str) -> str:
    from campaigns.links import UNSUBSCRIBE_PURPOSE
    from customers.tokens import token_make

    return token_make(purpose=UNSUBSCRIBE_PURPOSE, payload={"c": public_id, "ch": "email", "s": "bench"})


def _raw_post(*, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "X-Forwarded-Proto: https"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


# --- query counts (in process, Django test client) ------------------------------------------------


def _query_counts(fixture: Fixture) -> dict[str, int]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST=HOST)
    client.force_login(get_user_model().objects.get(pk=fixture.clerk_ids[0]))
    client.get("/till/", secure=True)  # picks the store into the session, as the page load does
    counts = {}
    cases = {
        "capture, new email + email consent": {"email": "qc-new@example.com", "consent_email": "on"},
        "capture, new email + phone + both consents": {
            "email": "qc-new2@example.com",
            "phone": "+12125559999",
            "consent_email": "on",
            "consent_sms": "on",
        },
        "capture, existing email + email consent": {"email": fixture.customer_emails[-1], "consent_email": "on"},
    }
    for label, form in cases.items():
        form = {"first_name": "Pat", "keep_typed_email": "1", **form}
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/till/", form, secure=True)
        assert response.status_code == 302, (label, response.status_code, response.content[:2000])
        counts[label] = len(captured.captured_queries)
    token = _unsubscribe_token(fixture.customer_public_ids[-1])
    with CaptureQueriesContext(connection) as captured:
        response = Client(HTTP_HOST=HOST).post(f"/m/u/{token}/", secure=True)
    assert response.status_code == 200, response.status_code
    counts["unsubscribe one-click POST"] = len(captured.captured_queries)
    return counts


# --- gunicorn -----------------------------------------------------------------------------------


def _port_free() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _gunicorn_start(args, env: dict[str, str], log_path: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"{HOST}:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--error-logfile",
        log_path,
        "--log-level",
        "warning",
        "--forwarded-allow-ips",
        HOST,
    ]
    process = subprocess.Popen(  # noqa: S603
        command, env={**os.environ, **env}, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
        try:
            with socket.create_connection((HOST, args.port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start listening within 30 s")


def _gunicorn_stop(process: subprocess.Popen) -> None:
    """SIGTERM the gunicorn process group (arbiter and workers), SIGKILL whatever is left after 10 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any worker the arbiter left behind
    process.wait(timeout=5)


# --- sessions as real tills have them -----------------------------------------------------------


def _http(port: int, raw: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def _till_sessions(port: int, fixture: Fixture) -> list[tuple[str, str]]:
    """(cookie header, csrf form token) per clerk: a logged-in session and the token of a page load."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    sessions = []
    for user in get_user_model().objects.filter(pk__in=fixture.clerk_ids):
        client = Client()
        client.force_login(user)
        session_cookie = f"sessionid={client.cookies['sessionid'].value}"
        raw = (
            f"GET /till/ HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-Forwarded-Proto: https\r\n"
            f"Cookie: {session_cookie}\r\nConnection: close\r\n\r\n"
        ).encode()
        status, headers, body = _http(port, raw)
        if status != 200:
            raise RuntimeError(f"GET /till/ answered {status}: {body[:300]!r}")
        cookies = [c.split(";", 1)[0] for c in headers.get("set-cookie", [])]
        csrf_cookie = next(c for c in cookies if c.startswith("csrftoken="))
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
        sessions.append((f"{session_cookie}; {csrf_cookie}", token))
    return sessions


# --- open-loop driver ---------------------------------------------------------------------------


@dataclass
class RunResult:
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    send_lag: list[float] = field(default_factory=list)
    wall: float = 0.0
    driver_cpu: float = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class _Pool:
    """Idle keep-alive connections (gthread); sync workers close each one after the response."""

    #: gunicorn closes a keep-alive connection idle for 2 s; reusing one near that races its close
    MAX_IDLE = 1.0

    def __init__(self, port: int):
        self.port = port
        self.idle: list[tuple[float, tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = []

    async def get(self):
        now = time.monotonic()
        while self.idle:
            since, conn = self.idle.pop()
            if now - since < self.MAX_IDLE:
                return conn
            conn[1].close()
        return await asyncio.open_connection(HOST, self.port)

    def put(self, conn) -> None:
        self.idle.append((time.monotonic(), conn))

    def close(self) -> None:
        for _, (_, writer) in self.idle:
            writer.close()
        self.idle.clear()


async def _one(pool: _Pool, raw: bytes, due: float, expected: int, result: RunResult, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    result.send_lag.append(loop.time() - due)
    conn = None
    try:
        async with asyncio.timeout(timeout):
            conn = await pool.get()
            reader, writer = conn
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            closing = re.search(rb"(?i)\r\nconnection:\s*close", head) is not None
            if match:
                await reader.readexactly(int(match.group(1)))
            else:
                await reader.read()
                closing = True
    except TimeoutError:
        result.error("timeout")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.error(type(exc).__name__)
    else:
        result.latencies.append(loop.time() - due)
        if status == expected:
            result.ok += 1
        else:
            result.error(f"HTTP {status}")
        if not closing:
            pool.put(conn)
            conn = None
    finally:
        if conn is not None:
            conn[1].close()


async def _drive(port: int, requests: list[tuple[bytes, int]], rate: float, timeout: float) -> RunResult:
    result = RunResult()
    pool = _Pool(port)
    loop = asyncio.get_running_loop()
    tasks = []
    cpu0 = time.process_time()
    start = loop.time() + 0.05
    for i, (raw, expected) in enumerate(requests):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(pool, raw, due, expected, result, timeout)))
        result.sent += 1
    await asyncio.wait(tasks, timeout=timeout + 1)
    result.wall = loop.time() - start
    result.driver_cpu = time.process_time() - cpu0
    pool.close()
    return result


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _summary(result: RunResult, duration: float) -> dict[str, float]:
    ms = [v * 1000 for v in result.latencies]
    return {
        "sent": result.sent,
        "errors": result.sent - result.ok,
        "rate": result.ok / max(result.wall, duration),
        "p50": _percentile(ms, 50),
        "p90": _percentile(ms, 90),
        "p99": _percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "lag_p99": _percentile([v * 1000 for v in result.send_lag], 99),
        "driver_cpu": 100 * result.driver_cpu / max(result.wall, 1e-9),
    }


def _print_row(label: str, s: dict[str, float]) -> None:
    print(
        f"  {label:<8} sent {s['sent']:5.0f}  errors {s['errors']:4.0f}  achieved {s['rate']:6.1f}/s  "
        f"p50 {s['p50']:6.1f}  p90 {s['p90']:6.1f}  p99 {s['p99']:6.1f}  max {s['max']:7.1f} ms  "
        f"| driver: send lag p99 {s['lag_p99']:.1f} ms, CPU {s['driver_cpu']:.0f}% of a core",
        flush=True,
    )


def _scenario_requests(kind: str, *, run: int, count: int, port: int, fixture: Fixture, sessions) -> list:
    requests = []
    for i in range(count):
        if kind == "capture":
            cookie, csrf = sessions[i % len(sessions)]
            body = urllib.parse.urlencode(_capture_form(run=run, i=i, fixture=fixture, csrf=csrf)).encode()
            headers = {
                "Cookie": cookie,
                "Origin": f"https://{HOST}:{port}",
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "bench-till/1.0",
            }
            requests.append((_raw_post(port=port, path="/till/", body=body, headers=headers), 302))
        else:
            # Mailbox providers post "List-Unsubscribe=One-Click" without cookies (RFC 8058).
            public_id = fixture.customer_public_ids[(run * 4001 + i) % len(fixture.customer_public_ids)]
            body = b"List-Unsubscribe=One-Click"
            headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "bench-mailbox/1.0"}
            path = f"/m/u/{_unsubscribe_token(public_id)}/"
            requests.append((_raw_post(port=port, path=path, body=body, headers=headers), 200))
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measured run")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per page; medians are reported")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    parser.add_argument("--pages", default="capture,unsubscribe")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--clerks", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--database", default="tandem_bench_public")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--capture-rate-limit", type=int, default=1_000_000, help="per clerk per minute")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not args.redis_url:
        sys.exit("Set REDIS_URL (a Redis db of your own: it is flushed) or pass --redis-url.")
    if args.rate * args.duration > 50_000:
        sys.exit("Refusing more than 50,000 requests per run.")
    args.port = args.port or _port_free()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]

    admin_url, database_url = _database_urls(args)
    env = _server_env(args, database_url)
    os.environ.update(env)
    _database_create(admin_url, args.database)
    gunicorn = None
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    log.close()
    try:
        import django

        django.setup()
        from django.core.cache import cache

        cache.clear()  # the bench's own Redis db: stale rate-limit windows and queued mail go
        started = time.perf_counter()
        fixture = _fixture_build(args)
        print(
            f"fixture: {args.customers:,} customers, {args.clerks} clerks, 1 store, 2 disclosures "
            f"in {time.perf_counter() - started:.1f} s"
        )
        print("SQL statements per request (Django test client, in process):")
        for label, count in _query_counts(fixture).items():
            print(f"  {label:<44} {count:3d}")

        print(
            f"gunicorn: {args.workers} {args.worker_class} workers"
            + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
            + f" on {HOST}:{args.port}; DEBUG off, Redis cache, capture limit {args.capture_rate_limit}/min/clerk"
        )
        sessions = None
        count = int(args.rate * args.duration)
        summaries: dict[str, list[dict]] = {page: [] for page in pages}
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs}: {args.rate:.0f} req/s for {args.duration:.0f} s per page")
            for page in pages:
                # A fresh server per measured run: an overloaded run leaves thousands of abandoned
                # connections in the listen queue, which would poison the next one.
                gunicorn = _gunicorn_start(args, env, log.name)
                if sessions is None:
                    sessions = _till_sessions(args.port, fixture)
                warm = _scenario_requests(
                    page, run=100 + run, count=int(args.rate * args.warmup), port=args.port, fixture=fixture,
                    sessions=sessions,
                )  # fmt: skip
                asyncio.run(_drive(args.port, warm, args.rate, args.timeout))
                requests = _scenario_requests(
                    page, run=run, count=count, port=args.port, fixture=fixture, sessions=sessions
                )
                result = asyncio.run(_drive(args.port, requests, args.rate, args.timeout))
                _gunicorn_stop(gunicorn)
                gunicorn = None
                summary = _summary(result, args.duration)
                summaries[page].append(summary)
                _print_row(page[:8], summary)
                if result.errors:
                    print(f"           errors: {result.errors}")
        print(f"medians of {args.runs} runs (latency from the due time, ms):")
        print("| page | sent | errors | achieved req/s | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|---|---|---|")
        for page, rows in summaries.items():
            med = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
            print(
                f"| {page} | {med['sent']:.0f} | {med['errors']:.0f} | {med['rate']:.1f} | {med['p50']:.1f} | "
                f"{med['p90']:.1f} | {med['p99']:.1f} | {med['max']:.1f} |"
            )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"driver process peak RSS {rss_mb:.0f} MB; gunicorn log {log.name}")
    finally:
        if gunicorn is not None:
            _gunicorn_stop(gunicorn)
        try:
            from django.core.cache import cache
            from django.db import connections

            cache.clear()
            connections.close_all()
        except Exception as exc:
            print(f"cleanup: {exc}", file=sys.stderr)
        if not args.keep_db:
            _database_drop(admin_url, args.database)


if __name__ == "__main__":
    main()
