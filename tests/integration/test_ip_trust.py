"""Opt-in IP trust (issue 10, ip_trust_ttl), under every web server: a good
key POSTed to /auth (answered by the relay, routed like /health) trusts the
client's address for the TTL, and a request with no key from there is
charged to that key. Off by default: /auth is then a 404 and a keyless
request the usual 401."""
import json
import time
import uuid

import pytest

from conftest import INVARIANTS
from stack import Stack

MISSING = "No API key provided. Send it as 'Authorization: Bearer <key>'."


@pytest.fixture(scope="module")
def stack(db, web):
    with Stack(db, web=web, name=f"iptrust-{web}", conf={"ip_trust_ttl": "60"}) as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    stack.db.rows("WITH d AS (DELETE FROM ip_trust RETURNING 1) SELECT count(*) FROM d")
    yield
    assert stack.db.rows(INVARIANTS) == []


def new_key(stack, *flags):
    k = stack.tg.ok("key", "create", "--name", "t-" + uuid.uuid4().hex[:8],
                    *flags).stdout.splitlines()[-1]
    return k, stack.db.value("SELECT max(id) FROM api_keys")


def chat():
    return {"model": "llama3", "stream": False, "messages": [{"role": "user", "content": "hi"}]}


def trusts(stack):
    return stack.db.rows("SELECT host(addr), key_id FROM ip_trust WHERE expires_at > now()")


def events(stack, key_id):
    return stack.db.value(f"SELECT count(*) FROM usage_events WHERE key_id = {key_id}")


def restart(stack, **overrides):
    for p in ("tollgate-authz", "tollgate-relay"):
        stack.stop_process(p)
        stack.start_program(p, **overrides)


def test_off_by_default_auth_is_404_and_keyless_is_401(stack):
    k, _ = new_key(stack)
    restart(stack, ip_trust_ttl="0")
    try:
        r = stack.http("POST", "/auth", {"api_key": k})
        assert r.status == 404, r
        assert r.json()["error"]["code"] == "not_found", r
        assert trusts(stack) == []
        r = stack.http("POST", "/api/chat", chat())
        assert r.status == 401 and r.json() == {"error": MISSING}, r
    finally:
        restart(stack)


@pytest.mark.parametrize("how", ["body", "bearer", "x-api-key"])
def test_a_good_key_trusts_the_address_and_keyless_requests_are_charged_to_it(stack, how):
    k, key_id = new_key(stack)
    body, headers = {}, {}
    if how == "body":
        body = {"api_key": k}
    elif how == "bearer":
        headers = {"Authorization": "Bearer " + k}
    else:
        headers = {"X-API-Key": k}
    t0 = int(time.time())
    r = stack.http("POST", "/auth", body, headers)
    assert r.status == 200, r
    doc = r.json()
    assert doc["address"] == "127.0.0.1", doc
    assert t0 + 55 <= doc["trusted_until"] <= int(time.time()) + 61, doc
    assert trusts(stack) == [["127.0.0.1", key_id]]
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", chat())
    assert r.status == 200 and r.json()["eval_count"] == 8, r
    r = stack.http("POST", "/v1/chat/completions", dict(chat(), stream=True))
    assert r.status == 200 and r.sse()[-1] == "[DONE]", r
    assert events(stack, key_id) == "2"
    sent = stack.fake_requests()[n0:]
    assert len(sent) == 2 and k not in json.dumps(sent)
    assert k not in stack.log_text()


def test_a_bad_key_at_auth_is_401_and_trusts_nothing(stack):
    for body, msg in [({"api_key": "sk-tg-no!"}, "Malformed API key: check it for a typo."),
                      ({}, MISSING), ({"api_key": 5}, MISSING)]:
        r = stack.http("POST", "/auth", body)
        assert r.status == 401, r
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["message"] == msg, r
    k, _ = new_key(stack)
    stack.tg.ok("key", "delete", stack.db.value("SELECT name FROM api_keys ORDER BY id DESC LIMIT 1"))
    r = stack.http("POST", "/auth", {"api_key": k})
    assert r.status == 401 and r.json()["error"]["code"] == "invalid_api_key", r
    assert trusts(stack) == []
    r = stack.http("POST", "/api/chat", chat())
    assert r.status == 401 and r.json() == {"error": MISSING}, r


def test_a_disabled_key_at_auth_is_403(stack):
    k, _ = new_key(stack)
    stack.tg.ok("key", "disable", stack.db.value("SELECT name FROM api_keys ORDER BY id DESC LIMIT 1"))
    r = stack.http("POST", "/auth", {"api_key": k})
    assert r.status == 403 and r.json()["error"]["code"] == "key_disabled", r
    assert trusts(stack) == []


def test_a_key_disabled_after_auth_is_denied_from_the_trusted_address(stack):
    k, _ = new_key(stack)
    assert stack.http("POST", "/auth", {"api_key": k}).status == 200
    stack.tg.ok("key", "disable", stack.db.value("SELECT name FROM api_keys ORDER BY id DESC LIMIT 1"))
    r = stack.http("POST", "/api/chat", chat())
    assert r.status == 403 and r.json() == {"error": "This API key is disabled."}, r


def test_auth_wants_post_and_a_small_body(stack):
    k, _ = new_key(stack)
    r = stack.http("GET", "/auth")
    assert r.status == 405, r
    r = stack.http("POST", "/auth", {"api_key": k, "pad": "x" * 5000})
    assert r.status == 413 and r.json()["error"]["code"] == "request_too_large", r
    assert trusts(stack) == []


def test_a_request_with_a_key_uses_its_own_key(stack):
    trusted, trusted_id = new_key(stack)
    own, own_id = new_key(stack)
    assert stack.http("POST", "/auth", {"api_key": trusted}).status == 200
    r = stack.http("POST", "/api/chat", chat(), {"Authorization": "Bearer " + own})
    assert r.status == 200, r
    assert (events(stack, own_id), events(stack, trusted_id)) == ("1", "0")
    # a bad key is a bad key, not a fall-back to the trusted one
    r = stack.http("POST", "/api/chat", chat(), {"Authorization": "Bearer sk-tg-nonsense"})
    assert r.status == 401, r
    assert events(stack, trusted_id) == "0"


def test_trust_runs_out_after_the_ttl_and_sweep_drops_it(stack):
    k, key_id = new_key(stack)
    stack.stop_process("tollgate-relay")
    stack.start_program("tollgate-relay", ip_trust_ttl="2")
    try:
        r = stack.http("POST", "/auth", {"api_key": k})
        assert r.status == 200, r
        assert stack.http("POST", "/api/chat", chat()).status == 200
        time.sleep(3)
        r = stack.http("POST", "/api/chat", chat())
        assert r.status == 401 and r.json() == {"error": MISSING}, r
        assert events(stack, key_id) == "1"
        out = stack.tg.ok("sweep").stdout
        assert "sweep: removed 1 expired IP trust(s)" in out, out
        assert stack.db.value("SELECT count(*) FROM ip_trust") == "0"
    finally:
        stack.stop_process("tollgate-relay")
        stack.start_program("tollgate-relay")
