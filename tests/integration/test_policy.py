"""Model policy (issue 5, first part): a key's allow-list, its model lock,
and the global lock and the other settings staff set in the admin pages,
effective on the next request without a restart; scopes, output caps, the
requests-per-minute 429; under every web server."""
import json
import uuid

import pytest

from conftest import INVARIANTS
from stack import Stack


@pytest.fixture(scope="module")
def stack(db, web):
    with Stack(db, web=web, name=f"policy-{web}") as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    yield
    assert stack.db.rows(INVARIANTS) == []


def key(stack, *flags):
    name = "p-" + uuid.uuid4().hex[:8]
    k = stack.tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]
    return {"Authorization": "Bearer " + k}


def chat(model, stream=False):
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def upstream_models(stack, n0):
    return [json.loads(r["body"])["model"] for r in stack.fake_requests()[n0:]
            if r["path"] in ("/api/chat", "/v1/chat/completions")]


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
def test_a_model_outside_the_allow_list_is_403_listing_what_is_allowed(stack, path):
    auth = key(stack, "--models", "llama3,qwen2.5:*")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, chat("all-minilm"), auth)
    assert r.status == 403, r
    msg = "This API key may not use model 'all-minilm'. It may use: llama3, qwen2.5:*."
    body = r.json()
    assert (body["error"]["message"] if path.startswith("/v1/") else body["error"]) == msg
    assert upstream_models(stack, n0) == []
    assert stack.http("POST", path, chat("qwen2.5:7b"), auth).status == 200
    assert stack.http("POST", path, chat("llama3:latest"), auth).status == 200
    assert upstream_models(stack, n0) == ["qwen2.5:7b", "llama3:latest"]


def test_the_keys_model_lock_replaces_the_model(stack):
    auth = key(stack, "--force-model", "qwen2.5:7b", "--models", "llama3")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", chat("llama3"), auth)
    assert r.status == 200, r
    assert r.json()["model"] == "qwen2.5:7b"  # what the upstream reports
    assert upstream_models(stack, n0) == ["qwen2.5:7b"]


def test_the_global_lock_applies_on_the_next_request(stack):
    auth = key(stack)
    own = key(stack, "--force-model", "qwen2.5:7b")
    n0 = len(stack.fake_requests())
    stack.db.rows("UPDATE settings SET value = 'llama3' WHERE name = 'force_model'")
    try:
        assert stack.http("POST", "/api/chat", chat("qwen2.5:7b"), auth).status == 200
        assert stack.http("POST", "/api/chat", chat("llama3"), own).status == 200
    finally:
        stack.db.rows("UPDATE settings SET value = '' WHERE name = 'force_model'")
    assert stack.http("POST", "/api/chat", chat("qwen2.5:7b"), auth).status == 200
    # the key's own lock wins over the global one
    assert upstream_models(stack, n0) == ["llama3", "qwen2.5:7b", "qwen2.5:7b"]


def test_unknown_paths_need_an_admin_key_unless_passthrough_unknown(stack):
    ordinary, admin = key(stack), key(stack, "--scope", "admin")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/v1/responses", {"model": "llama3", "input": "hi"}, ordinary)
    assert r.status == 403, r
    assert "needs the admin scope" in r.json()["error"]["message"]
    assert len(stack.fake_requests()) == n0
    r = stack.http("GET", "/api/experimental/thing", headers=admin)
    assert r.status == 404 and r.body == b"404 page not found"  # Ollama's own answer
    stack.stop_process("tollgate-authz")
    stack.start_program("tollgate-authz", passthrough_unknown="yes")
    try:
        r = stack.http("GET", "/api/experimental/thing", headers=ordinary)
        assert r.status == 404 and r.body == b"404 page not found"
        assert stack.http("POST", "/api/pull", {"model": "x"}, ordinary).status == 403
    finally:
        stack.stop_process("tollgate-authz")
        stack.start_program("tollgate-authz")


def test_model_lists_show_only_what_the_key_may_use(stack):
    limited, free = key(stack, "--models", "llama3,qwen2.5:*"), key(stack)
    everything = {m["name"] for m in stack.fake("GET", "/api/tags").json()["models"]}
    assert {"llama3:latest", "qwen2.5:7b", "all-minilm:latest"} <= everything
    tags = stack.http("GET", "/api/tags", headers=limited)
    assert tags.status == 200, tags
    assert {m["name"] for m in tags.json()["models"]} == {"llama3:latest", "qwen2.5:7b"}
    assert {m["name"] for m in stack.http("GET", "/api/tags", headers=free).json()["models"]} == everything
    models = stack.http("GET", "/v1/models", headers=limited).json()
    assert models["object"] == "list"
    assert {m["id"] for m in models["data"]} == {"llama3:latest", "qwen2.5:7b"}
    assert stack.http("GET", "/v1/models/llama3", headers=limited).status == 200
    r = stack.http("GET", "/v1/models/all-minilm", headers=limited)
    assert r.status == 404 and r.json()["error"]["type"] == "not_found_error"
    r = stack.http("POST", "/api/show", {"model": "all-minilm"}, limited)
    assert r.status == 404 and r.json() == {"error": "model 'all-minilm' not found"}
    assert stack.http("POST", "/api/show", {"model": "qwen2.5:7b"}, limited).status == 200


@pytest.mark.parametrize("path,client_cap,field", [
    ("/api/chat", {"options": {"num_predict": 50}}, ("options", "num_predict")),
    ("/api/chat", {}, ("options", "num_predict")),
    ("/v1/chat/completions", {"max_tokens": 50}, ("max_tokens",)),
    ("/v1/chat/completions", {"max_completion_tokens": 2}, ("max_tokens",)),
])
def test_the_keys_output_cap_is_the_lower_of_it_and_the_clients(stack, path, client_cap, field):
    auth = key(stack, "--max-output", "3")
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, dict(chat("llama3"), **client_cap), auth)
    assert r.status == 200, r
    sent = json.loads(stack.fake_requests()[n0]["body"])
    for f in field:
        sent = sent[f]
    assert sent == min(3, client_cap.get("max_completion_tokens", 3))
    info = json.loads(stack.tg.ok("key", "list", "--json").stdout)
    assert any(k["max_output_tokens"] == 3 for k in info)


def setting(stack, name, value):
    stack.db.rows(f"UPDATE settings SET value = '{value}' WHERE name = '{name}'")


def last_reservation(stack):
    return int(stack.db.value("SELECT tokens FROM reservations ORDER BY id DESC LIMIT 1"))


def test_the_reservation_setting_applies_on_the_next_request(stack):
    """Settings page value, else tollgate.conf (2048 here); the key's own
    size beats both."""
    auth, own = key(stack), key(stack, "--reservation", "700")
    assert stack.db.value("SELECT value FROM settings WHERE name = 'reservation_tokens'") == ""
    assert stack.http("POST", "/api/chat", chat("llama3"), auth).status == 200
    assert last_reservation(stack) == 2048
    setting(stack, "reservation_tokens", "300")
    try:
        assert stack.http("POST", "/api/chat", chat("llama3"), auth).status == 200
        assert last_reservation(stack) == 300
        assert stack.http("POST", "/api/chat", chat("llama3"), own).status == 200
        assert last_reservation(stack) == 700
    finally:
        setting(stack, "reservation_tokens", "")
    assert stack.http("POST", "/api/chat", chat("llama3"), auth).status == 200
    assert last_reservation(stack) == 2048


def sent_cap(stack, auth):
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", chat("llama3"), auth)
    assert r.status == 200, r
    return json.loads(stack.fake_requests()[n0]["body"]).get("options", {}).get("num_predict")


def test_the_output_cap_setting_beats_the_file_and_the_keys_own_beats_both(stack):
    auth, own = key(stack), key(stack, "--max-output", "3")
    uncapped = sent_cap(stack, auth)
    assert uncapped > 100  # only the reservation bounds it
    stack.stop_process("tollgate-relay")
    stack.start_program("tollgate-relay", output_cap=7)
    try:
        assert sent_cap(stack, auth) == 7
        setting(stack, "output_cap", "5")
        assert sent_cap(stack, auth) == 5
        assert sent_cap(stack, own) == 3
    finally:
        setting(stack, "output_cap", "")
        stack.stop_process("tollgate-relay")
        stack.start_program("tollgate-relay")
    assert sent_cap(stack, auth) == uncapped


def test_requests_per_minute_429_carries_the_limit_headers(stack):
    """A fixed calendar-minute window: with --rpm 1 a second request in the
    same minute is refused until the next minute starts (a third request
    covers a minute that turned between the first two)."""
    auth = key(stack, "--rpm", "1")
    for _ in range(3):
        r = stack.http("POST", "/v1/chat/completions", chat("llama3"), auth)
        if r.status == 429:
            break
        assert r.status == 200, r
    assert r.status == 429, r
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit-requests"] == "1"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "requests"
    assert "requests per minute (limit 1)" in err["message"]


def test_a_key_in_the_body_is_refused_unless_accept_body_key(stack):
    k = key(stack)["Authorization"].split()[1]
    n0 = len(stack.fake_requests())
    r = stack.http("POST", "/api/chat", dict(chat("llama3"), api_key=k))
    assert r.status == 401 and r.json()["error"].startswith("No API key provided"), r
    assert len(stack.fake_requests()) == n0
    # with a header key, a body key is stripped all the same
    r = stack.http("POST", "/api/chat", dict(chat("llama3"), api_key=k), key(stack))
    assert r.status == 200, r
    assert "api_key" not in json.loads(stack.fake_requests()[n0]["body"])
