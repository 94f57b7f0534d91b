"""Faults injected for real (issue 8): processes killed with SIGKILL by PID,
PostgreSQL stopped with `pg_ctl stop -m immediate` and started again, the
upstream killed mid-stream. After each, the books balance
(tests/invariants.sql) and the next request works without restarting
anything but what was killed."""
import contextlib
import json
import os
import pathlib
import shlex
import signal
import subprocess
import time
import uuid

import pytest

from conftest import INVARIANTS, PGBIN, TOP
from stack import FAKE, Stack, wait_for

CHAT = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
SLOW = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
PGDATA = os.environ.get("TG_TEST_PGDATA")


@pytest.fixture(scope="module")
def stack(db):
    # The shortest reservation life the configuration allows, so a lost
    # reservation expires within the test.
    with Stack(db, conf={"reservation_ttl": "10", "db_connect_timeout": "2"}, name="faults") as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    yield
    broken = stack.db.rows(INVARIANTS)
    assert broken == [], f"invariants broken: {broken}"


def new_key(stack, *flags):
    name = "f-" + uuid.uuid4().hex[:10]
    key = stack.tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]
    return name, {"Authorization": f"Bearer {key}"}


def show(stack, name):
    return json.loads(stack.tg.ok("key", "show", name, "--json").stdout)


def events(stack, name):
    return stack.db.rows(
        "SELECT e.status, e.prompt_tokens, e.completion_tokens FROM usage_events e "
        f"JOIN api_keys k ON k.id = e.key_id WHERE k.name = '{name}' ORDER BY e.id")


def kill9(stack, name):
    p = stack.procs.pop(name)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


def works(stack, auth):
    r = stack.http("POST", "/api/chat", CHAT, auth)
    assert r.status == 200, r
    assert r.lines()[-1]["done"] is True


def test_relay_killed_mid_stream_is_charged_in_full_as_lost(stack):
    name, auth = new_key(stack, "--tokens-day", "100000")
    s = stack.stream("POST", "/api/chat", SLOW, auth)
    lines = s.lines()
    next(lines), next(lines)
    kill9(stack, "tollgate-relay")
    s.close()
    stack.start_program("tollgate-relay")
    reserved = int(stack.db.value(
        "SELECT r.tokens FROM reservations r JOIN api_keys k ON k.id = r.key_id "
        f"WHERE k.name = '{name}' AND r.settled_at IS NULL AND r.claimed_at IS NOT NULL"))
    assert show(stack, name)["reserved_tokens"] == reserved
    time.sleep(11)  # reservation_ttl: nobody extends a dead relay's reservation
    out = stack.tg.ok("sweep").stdout
    assert "sweep: reclaimed 1 expired reservation(s)" in out
    assert events(stack, name) == [["lost", "0", str(reserved)]]
    s2 = show(stack, name)
    assert (s2["tokens_today"], s2["reserved_tokens"]) == (reserved, 0)
    works(stack, auth)


def test_authorizer_killed_fails_closed_then_recovers(stack):
    name, auth = new_key(stack, "--tokens-day", "100000")
    kill9(stack, "tollgate-authz")
    before = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", CHAT, auth)
    assert r.status == 500, r  # Apache: the authorizer cannot be reached
    assert len(stack.fake_requests()) == before
    stack.start_program("tollgate-authz")
    works(stack, auth)
    assert show(stack, name)["requests_today"] == 1


def test_upstream_killed_mid_stream_charges_what_was_relayed(stack):
    name, auth = new_key(stack, "--tokens-day", "100000")
    s = stack.stream("POST", "/api/chat", SLOW, auth)
    lines = s.lines()
    got = [next(lines), next(lines), next(lines)]
    kill9(stack, "fake-ollama")
    rest = list(lines)  # the relay ends the stream once the upstream breaks
    s.close()
    # ... with an error line of its own, as Ollama ends a failed stream.
    assert set(json.loads(rest[-1][1])) == {"error"}, rest
    relayed = len(got) + len(rest) - 1
    wait_for(lambda: events(stack, name), what="the settlement")
    [[status, prompt, completion]] = events(stack, name)
    assert status == "truncated"
    assert int(completion) == relayed  # one token per content chunk relayed
    assert int(prompt) > 0             # the relay's prompt estimate
    p = stack._spawn("fake-ollama", [FAKE, "--port", str(stack.fake_port), "--record",
                                     str(stack.fake_record)], stack.dir / "fake-ollama.log",
                     stdout=subprocess.DEVNULL)
    wait_for(lambda: stack._accepts(stack.fake_port), what="fake-ollama again")
    assert p.poll() is None
    works(stack, auth)


@contextlib.contextmanager
def database_down():
    """PostgreSQL crashed (`pg_ctl stop -m immediate`) for the block's
    duration, then started again with the options it had."""
    opts = open(os.path.join(PGDATA, "postmaster.opts")).read().strip()
    argv = shlex.split(opts)[1:]
    i = argv.index("-D")
    del argv[i:i + 2]
    run_pg(["pg_ctl", "-D", PGDATA, "-m", "immediate", "-w", "stop"])
    try:
        yield
    finally:
        run_pg(["pg_ctl", "-D", PGDATA, "-w", "-t", "60", "-l",
                os.path.join(PGDATA, "postgres.log"), "-o",
                " ".join(shlex.quote(a) for a in argv), "start"])


def run_pg(argv):
    argv = [os.path.join(PGBIN, argv[0])] + argv[1:]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "tollgate", "--"] + argv
    subprocess.run(argv, check=True, capture_output=True)


def test_database_down_fails_closed_and_recovers_without_restarts(stack):
    name, auth = new_key(stack, "--tokens-day", "100000")
    works(stack, auth)
    before = len(stack.fake_requests())
    with database_down():
        r = stack.http("POST", "/api/chat", CHAT, auth, timeout=30)
        assert r.status == 503, r
        assert r.headers.get("retry-after") == "5"
        assert len(stack.fake_requests()) == before  # fail closed, never open
        assert stack.tg.run("check").returncode == 2
    works(stack, auth)
    assert show(stack, name)["requests_today"] == 2


def test_settlement_during_an_outage_is_spooled_and_replayed(stack):
    name, auth = new_key(stack, "--tokens-day", "100000")
    s = stack.stream("POST", "/api/chat", SLOW, auth)
    lines = s.lines()
    next(lines)
    with database_down():
        rest = list(lines)  # the stream finishes: the upstream does not care
        s.close()
        assert b'"done":true' in rest[-1][1]  # (arrival time, line)
        spool = stack.dir / "spool" / "settlements.spool"
        wait_for(lambda: spool.exists() and spool.read_text().count("\n") == 1,
                 what="the spooled settlement")
        assert "sk-" not in spool.read_text()
    check = stack.tg.run("check")
    assert check.returncode == 2 and "1 settlement(s) waiting" in check.stdout
    out = stack.tg.ok("sweep").stdout
    assert "sweep: replayed 1 spooled settlement(s), 0 left" in out
    assert events(stack, name) == [["ok", "10", "8"]]
    assert show(stack, name)["tokens_today"] == 18
    assert stack.tg.ok("sweep").stdout.count("replayed 0") == 1  # idempotent
    works(stack, auth)


def claim_function(extra_column):
    """tg_claim as the latest migration defining it does, or with one more
    column at the end, as a later migration might return (the relay reads
    columns by position, so it still works with either)."""
    text = [t for t in (p.read_text() for p in sorted((pathlib.Path(TOP) / "sql").glob("*.sql")))
            if "DROP FUNCTION tg_claim(" in t][-1]
    start = text.index("DROP FUNCTION tg_claim(")
    sql = text[start:text.index("END $$;", start) + len("END $$;")]
    if extra_column:
        sql = sql.replace("setting_upstream_url text)", "setting_upstream_url text, spare integer)")
        sql = sql.replace("k.capture_bodies, k.name, s.upstream_url\n", "k.capture_bodies, k.name, s.upstream_url, 0\n")
        assert "spare integer" in sql and "s.upstream_url, 0" in sql
    return sql


def test_a_function_replaced_under_the_running_relay_is_prepared_again(stack):
    # The relay prepares its statements once per pooled connection; a
    # migration that changes what a function returns makes PostgreSQL
    # refuse those ("cached plan must not change result type"). The relay
    # must prepare again, not answer 503 until it is restarted.
    name, auth = new_key(stack, "--tokens-day", "100000")
    for _ in range(3):  # the pool lends its last-returned connection first
        works(stack, auth)
    try:
        stack.db.rows(claim_function(extra_column=True))
        for _ in range(3):
            works(stack, auth)
    finally:
        stack.db.rows(claim_function(extra_column=False))
    works(stack, auth)
    assert show(stack, name)["requests_today"] == 7
