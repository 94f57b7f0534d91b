"""Browser clients and keys in the body (issue 5), under every web server:
CORS preflights answered without a key or the database, Access-Control-*
headers on every answer (denials and the relay's own errors included), and
`accept_body_key`: the relay checks a key sent as "api_key" in the JSON body,
reserves, and strips it before the upstream sees the body."""
import json
import uuid

import pytest

from conftest import INVARIANTS
from stack import Stack

APP = "https://app.example"
CORS = {"cors_origins": f"{APP}, https://other.example:8443", "accept_body_key": "yes"}


@pytest.fixture(scope="module")
def stack(db, web):
    with Stack(db, web=web, name=f"cors-{web}", conf=CORS) as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    yield
    assert stack.db.rows(INVARIANTS) == []


def new_key(stack, *flags):
    return stack.tg.ok("key", "create", "--name", "b-" + uuid.uuid4().hex[:8],
                       *flags).stdout.splitlines()[-1]


def bearer(k, origin=APP):
    return {"Authorization": "Bearer " + k, "Origin": origin}


def chat(model="llama3", **extra):
    return dict({"model": model, "stream": False, "messages": [{"role": "user", "content": "hi"}]}, **extra)


def assert_cors(r, origin=APP):
    assert r.headers.get("access-control-allow-origin") == origin, r
    assert "Origin" in r.headers.get("vary", ""), r
    exposed = r.headers.get("access-control-expose-headers", "")
    for h in ("retry-after", "x-ratelimit-remaining-tokens", "x-request-id"):
        assert h in exposed, r


def preflight(stack, path, origin=APP, headers="authorization, content-type, x-stainless-os"):
    return stack.http("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers})


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_preflight_from_an_allowed_origin_needs_no_key(stack, path):
    n0 = len(stack.fake_requests())
    resv0 = stack.db.value("SELECT count(*) FROM reservations")
    r = preflight(stack, path)
    assert r.status == 204, r
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert stack.db.value("SELECT count(*) FROM reservations") == resv0
    assert len(stack.fake_requests()) == n0  # never reaches Ollama


def test_a_preflight_works_with_the_database_down(stack):
    """No database work: with both programs pointed at a port where nothing
    listens, a preflight is still answered (and a real request is 503)."""
    dead = "host=127.0.0.1 port=9 user=tollgate dbname=x connect_timeout=1"
    k = new_key(stack)
    for p in ("tollgate-authz", "tollgate-relay"):
        stack.stop_process(p)
        stack.start_program(p, db=dead, db_pool_wait=500)
    try:
        r = preflight(stack, "/v1/chat/completions", origin="https://other.example:8443")
        assert r.status == 204, r
        assert r.headers["access-control-allow-origin"] == "https://other.example:8443"
        r = stack.http("POST", "/v1/chat/completions", chat(), bearer(k))
        assert r.status == 503, r
        assert_cors(r)
    finally:
        for p in ("tollgate-authz", "tollgate-relay"):
            stack.stop_process(p)
            stack.start_program(p)


def test_a_preflight_from_another_origin_gets_no_cors_headers(stack):
    r = preflight(stack, "/v1/chat/completions", origin="https://evil.example")
    assert r.status == 401, r
    assert not any(k.startswith("access-control-") for k in r.headers), r


def test_answers_carry_cors_headers_streamed_or_not(stack):
    k = new_key(stack)
    r = stack.http("POST", "/api/chat", chat(), bearer(k))
    assert r.status == 200, r
    assert_cors(r)
    r = stack.http("POST", "/v1/chat/completions", chat(stream=True), bearer(k))
    assert r.status == 200 and r.sse()[-1] == "[DONE]", r
    assert_cors(r)
    r = stack.http("GET", "/api/tags", headers=bearer(k, "https://evil.example"))
    assert r.status == 200 and "access-control-allow-origin" not in r.headers, r


def test_denials_carry_cors_headers(stack):
    spent, disabled = new_key(stack, "--tokens-day", "0"), new_key(stack)
    stack.tg.ok("key", "disable", stack.db.value(
        "SELECT name FROM api_keys ORDER BY id DESC LIMIT 1"))
    r = stack.http("POST", "/v1/chat/completions", chat(), {"Origin": APP})
    assert r.status == 401 and r.json()["error"]["code"] == "missing_api_key", r
    assert_cors(r)
    r = stack.http("POST", "/api/chat", chat(), bearer(disabled))
    assert r.status == 403 and r.json() == {"error": "This API key is disabled."}, r
    assert_cors(r)
    r = stack.http("POST", "/v1/chat/completions", chat(), bearer(spent))
    assert r.status == 429 and int(r.headers["retry-after"]) > 0, r
    assert r.headers["x-ratelimit-remaining-tokens"] == "0"
    assert_cors(r)


def test_the_relays_own_errors_carry_cors_headers(stack):
    k = new_key(stack, "--models", "llama3")
    r = stack.http("POST", "/v1/chat/completions", chat("qwen2.5:7b"), bearer(k))
    assert r.status == 403 and r.json()["error"]["code"] == "model_not_allowed", r
    assert_cors(r)
    r = stack.http("POST", "/api/chat", b"{not json", bearer(k))
    assert r.status == 400, r
    assert_cors(r)


# ---- the key in the body -------------------------------------------------

def test_a_key_in_the_body_is_checked_charged_and_stripped(stack):
    k = new_key(stack)
    key_id = stack.db.value("SELECT max(id) FROM api_keys")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", chat(api_key=k), {"Origin": APP})
    assert r.status == 200, r
    assert r.json()["eval_count"] == 8
    assert_cors(r)
    sent = stack.fake_requests()[n0:]
    assert len(sent) == 1 and "api_key" not in json.loads(sent[0]["body"])
    assert k not in json.dumps(sent[0])
    assert stack.db.rows(f"SELECT prompt_tokens, completion_tokens, status FROM usage_events "
                         f"WHERE key_id = {key_id}") == [["10", "8", "ok"]]
    r = stack.http("POST", "/v1/chat/completions", chat(api_key=k, stream=True))
    assert r.status == 200 and r.sse()[-1] == "[DONE]", r
    assert k not in stack.log_text()


def unknown_key(stack):
    """A well-formed key the database no longer knows."""
    k = new_key(stack)
    stack.tg.ok("key", "delete", stack.db.value("SELECT name FROM api_keys ORDER BY id DESC LIMIT 1"))
    return k


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_a_missing_or_bad_body_key_is_the_usual_401(stack, path):
    n0 = len(stack.fake_requests())
    for body, code, msg in [
            (chat(), "missing_api_key", "No API key provided. Send it as 'Authorization: Bearer <key>'."),
            (chat(api_key="sk-tg-no!"), "invalid_api_key", "Malformed API key: check it for a typo."),
            (chat(api_key=unknown_key(stack)), "invalid_api_key", "Invalid API key.")]:
        r = stack.http("POST", path, body, {"Origin": APP})
        assert r.status == 401, r
        assert r.headers["www-authenticate"] == "Bearer"
        assert_cors(r)
        err = r.json()["error"]
        if path.startswith("/v1/"):
            assert err["code"] == code and err["type"] == "invalid_request_error"
            err = err["message"]
        if msg:
            assert err == msg
    assert len(stack.fake_requests()) == n0


def test_a_spent_body_key_gets_the_usual_429(stack):
    k = new_key(stack, "--tokens-day", "0")
    r = stack.http("POST", "/v1/chat/completions", chat(api_key=k))
    assert r.status == 429, r
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(r.headers["retry-after"]) > 0 and r.headers["x-ratelimit-limit-tokens"] == "0"


def test_a_header_key_wins_and_other_endpoints_need_a_header(stack):
    k, other = new_key(stack), new_key(stack)
    other_id = stack.db.value("SELECT max(id) FROM api_keys")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", chat(api_key=k), bearer(other))
    assert r.status == 200, r
    assert "api_key" not in json.loads(stack.fake_requests()[n0]["body"])
    assert stack.db.value(f"SELECT count(*) FROM usage_events WHERE key_id = {other_id}") == "1"
    # only inference and embeddings read a body key; model lists do not
    assert stack.http("POST", "/api/show", {"model": "llama3", "api_key": k}).status == 401
    assert stack.http("GET", "/api/tags").status == 401
