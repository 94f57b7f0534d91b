"""Last of the integration modules (by name): no key the suite created, no
ticket and no server secret in any log of any stack the suite started —
authorizer, relay, web server error and access logs, fcgiwrap, and the
upstream's record of what it received. Its own stack puts a key in every
place a client can, exhausts it and cuts a stream, so it never passes on an
empty log when run alone."""
import pathlib
import tempfile

import pytest

import leaks
from conftest import INVARIANTS, create_database, drop_database
from stack import Stack

CHAT = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def stack():
    db = create_database()
    s = Stack(db, name="no-secrets")
    try:
        s.start()
        yield s
    finally:
        s.stop()
        drop_database(db)


def use_keys_everywhere(stack):
    key = stack.tg.ok("key", "create", "--name", "everywhere").stdout.splitlines()[-1]
    spent = stack.tg.ok("key", "create", "--name", "spent", "--tokens-day", "1").stdout.splitlines()[-1]
    assert key in leaks.KEYS and spent in leaks.KEYS
    bad = key[:-1] + ("A" if key[-1] != "A" else "B")
    codes = [stack.http("POST", "/api/chat", CHAT, {"Authorization": "Bearer " + key}).status,
             stack.http("POST", "/api/chat", CHAT, {"X-API-Key": key}).status,
             stack.http("POST", "/api/chat?api_key=" + key, CHAT).status,
             stack.http("POST", "/v1/chat/completions", CHAT, {"Authorization": "Bearer " + key}).status,
             stack.http("POST", "/api/chat", CHAT, {"Authorization": "Bearer " + bad}).status,
             stack.http("GET", "/api/tags?api_key=" + bad).status,
             stack.http("POST", "/api/chat", CHAT, {"Authorization": "Bearer " + spent}).status]
    s = stack.stream("POST", "/api/generate", {"model": "slow", "prompt": "hi"},
                     {"Authorization": "Bearer " + key})
    try:
        assert s.status == 200
        next(s.lines())  # one line, then hang up mid-stream
    finally:
        s.close()
    return codes


def test_no_key_ticket_or_secret_in_any_log(stack):
    codes = use_keys_everywhere(stack)
    assert codes == [200, 200, 200, 200, 401, 401, 429], codes
    stack.stop()  # every process gone: its logs are complete
    assert stack in leaks.STACKS and len(leaks.KEYS) >= 1
    files = sum(len(s.log_files()) for s in leaks.STACKS)
    assert files >= 5, "the stacks wrote fewer logs than expected"
    found = leaks.scan()
    assert found == [], "\n".join(f"{p}: {what}" for p, what in found)
    assert stack.db.rows(INVARIANTS) == []


def test_the_scan_finds_a_planted_key():
    """The scan itself can fail: a key written into a log is found, whole or
    by its hidden middle alone."""
    key = leaks.remember("sk-tg-" + "Zq8" * 16 + "x")
    with tempfile.TemporaryDirectory() as d:
        whole, part = pathlib.Path(d, "a.log"), pathlib.Path(d, "b.log")
        whole.write_text(f"request from {key}\n")
        part.write_text(f"request from ...{key[14:30]}...\n")

        class Planted:
            tg = None

            def log_files(self):
                return {"a": whole, "b": part}

        saved = leaks.STACKS[:]
        leaks.STACKS[:] = [Planted()]
        try:
            found = leaks.scan()
        finally:
            leaks.STACKS[:] = saved
            leaks.KEYS.discard(key)
    assert {p for p, _ in found} == {str(whole), str(part)}, found
