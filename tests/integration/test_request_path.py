"""The request path end to end (issues 4 and 7): a client with a key, a real
web server configured from examples/<server> (the whole module runs once
under each of Apache, lighttpd, Caddy and nginx: the `web` fixture),
tollgate-authz, tollgate-relay, a real
PostgreSQL, and tests/fake-ollama as Ollama, whose token counts are
deterministic (prompt = 10 + utf-8 bytes // 4, 8 completion tokens unless
asked otherwise), so every charge is asserted exactly.

One stack for the module (stack.py); every test makes its own keys."""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import threading
import time
import uuid
import zoneinfo

import pytest

import fcgi

from stack import Response, Stack, wait_for

TIME_ZONE = "America/New_York"
MAX_BODY = 65536
FAIL_MSG = "an error was encountered while running the model: fake failure"
KEY_RE = re.compile(r"^sk-tg-[A-Za-z0-9]{49}$")

KEYS = []      # every key made in this module: none may appear in any log
TICKETS = []   # likewise every ticket seen
STACKS = []    # every stack started here, for the log check at the end


# ---- fixtures and helpers ---------------------------------------------------

@pytest.fixture(scope="module")
def stack(db, web):
    s = Stack(db, web=web, conf={"time_zone": TIME_ZONE, "max_body_bytes": str(MAX_BODY), "threads": "32"},
              name=f"request-path-{web}")
    STACKS.append(s)
    s.start()
    yield s
    s.stop()


def new_key(stack, *flags):
    name = "k-" + uuid.uuid4().hex[:10]
    r = stack.tg.ok("key", "create", "--name", name, *flags)
    key = r.stdout.splitlines()[-1]
    assert KEY_RE.match(key), r.stdout
    KEYS.append(key)
    return name, key


def show(stack, name):
    return json.loads(stack.tg.ok("key", "show", name, "--json").stdout)


def settled(stack, name, timeout=10):
    """The key's report once nothing is reserved or open any more."""
    def done():
        k = show(stack, name)
        return k if k["open_reservations"] == 0 and k["reserved_tokens"] == 0 else None
    try:
        return wait_for(done, timeout, 0.1, f"key {name} to settle")
    except AssertionError:
        raise AssertionError(f"key {name} never settled: {show(stack, name)}\n"
                             f"reservations: {reservations(stack, name)}")


def rows_json(stack, sql):
    return [json.loads(r[0]) for r in stack.db.rows(sql)]


def events(stack, name):
    return rows_json(stack, "SELECT row_to_json(e) FROM usage_events e JOIN api_keys k ON k.id = e.key_id "
                            f"WHERE k.name = '{name}' ORDER BY e.id")


def reservations(stack, name):
    return rows_json(stack, "SELECT row_to_json(r) FROM reservations r JOIN api_keys k ON k.id = r.key_id "
                            f"WHERE k.name = '{name}' ORDER BY r.id")


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def prompt_tokens(*texts):
    """fake-ollama's prompt count."""
    return 10 + sum(len(t.encode()) for t in texts) // 4


def embed_tokens(*inputs):
    return sum(2 + len(t.encode()) // 4 for t in inputs)


def fake_since(stack, n0):
    return stack.fake_requests()[n0:]


def fake_count(stack):
    return len(stack.fake_requests())


def assert_family_error(r, path, status):
    """A tollgate error: JSON in the shape of the API family asked for."""
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    body = r.json()
    if path.startswith("/v1/"):
        assert set(body) == {"error"} and isinstance(body["error"], dict), body
        assert {"message", "type", "code"} <= set(body["error"]), body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
        assert isinstance(body["error"]["type"], str) and body["error"]["type"], body
        return body["error"]["message"]
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return body["error"]


def no_ticket_leak(r):
    for k, v in r.header_list:
        assert "tollgate" not in k.lower() and not k.lower().startswith("variable-"), r
    for t in TICKETS:
        assert t.encode() not in r.body


# ---- every endpoint, streaming and not, charged exactly ---------------------

P_GEN = "Why is the sky blue?"
P_SYS = "Be brief."
CHAT = [{"role": "system", "content": P_SYS}, {"role": "user", "content": P_GEN}]
TOKS = ["tok%d " % i for i in range(8)]

CASES = {
    # id: (path, body, kind, prompt tokens, completion tokens)
    "generate-stream": ("/api/generate", {"model": "llama3", "prompt": P_GEN}, "ndjson-generate",
                        prompt_tokens(P_GEN), 8),
    "generate": ("/api/generate", {"model": "llama3", "prompt": P_GEN, "stream": False}, "json-generate",
                 prompt_tokens(P_GEN), 8),
    "chat-stream": ("/api/chat", {"model": "llama3", "messages": CHAT}, "ndjson-chat",
                    prompt_tokens(P_SYS, P_GEN), 8),
    "chat": ("/api/chat", {"model": "llama3", "messages": CHAT, "stream": False}, "json-chat",
             prompt_tokens(P_SYS, P_GEN), 8),
    "embed": ("/api/embed", {"model": "all-minilm", "input": ["first text", "second"]}, "embed",
              embed_tokens("first text", "second"), 0),
    "embed-string": ("/api/embed", {"model": "all-minilm", "input": "hello embeddings"}, "embed",
                     embed_tokens("hello embeddings"), 0),
    "v1-chat": ("/v1/chat/completions", {"model": "llama3", "messages": CHAT}, "v1-chat",
                prompt_tokens(P_SYS, P_GEN), 8),
    "v1-chat-stream": ("/v1/chat/completions", {"model": "llama3", "messages": CHAT, "stream": True},
                       "v1-chat-sse", prompt_tokens(P_SYS, P_GEN), 8),
    "v1-chat-stream-usage": ("/v1/chat/completions",
                             {"model": "llama3", "messages": CHAT, "stream": True,
                              "stream_options": {"include_usage": True}},
                             "v1-chat-sse-usage", prompt_tokens(P_SYS, P_GEN), 8),
    "v1-completions": ("/v1/completions", {"model": "llama3", "prompt": P_GEN}, "v1-completions",
                       prompt_tokens(P_GEN), 8),
    "v1-completions-stream": ("/v1/completions", {"model": "llama3", "prompt": P_GEN, "stream": True},
                              "v1-completions-sse", prompt_tokens(P_GEN), 8),
    "v1-completions-stream-usage": ("/v1/completions",
                                    {"model": "llama3", "prompt": P_GEN, "stream": True,
                                     "stream_options": {"include_usage": True}},
                                    "v1-completions-sse-usage", prompt_tokens(P_GEN), 8),
    "v1-embeddings": ("/v1/embeddings", {"model": "all-minilm", "input": ["one", "two three"]},
                      "v1-embeddings", embed_tokens("one", "two three"), 0),
}


def check_body(kind, r, p, c):
    ctype = r.headers.get("content-type", "")
    if kind.startswith("ndjson"):
        assert ctype.startswith("application/x-ndjson"), r
        lines = r.lines()
        assert len(lines) == 9, r
        field = (lambda o: o["response"]) if kind == "ndjson-generate" else (lambda o: o["message"]["content"])
        assert [field(o) for o in lines[:8]] == TOKS
        assert all(o["done"] is False and "eval_count" not in o for o in lines[:8])
        last = lines[-1]
        assert last["done"] is True and last["done_reason"] == "stop"
        assert (last["prompt_eval_count"], last["eval_count"]) == (p, c)
    elif kind.startswith("json-"):
        assert ctype.startswith("application/json"), r
        o = r.json()
        text = o["response"] if kind == "json-generate" else o["message"]["content"]
        assert text == "".join(TOKS) and o["done"] is True
        assert (o["prompt_eval_count"], o["eval_count"]) == (p, c)
    elif kind == "embed":
        o = r.json()
        assert o["prompt_eval_count"] == p and o["model"] == "all-minilm"
        assert len(o["embeddings"]) in (1, 2) and len(o["embeddings"][0]) == 384
    elif kind in ("v1-chat", "v1-completions"):
        o = r.json()
        assert o["usage"] == {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        choice = o["choices"][0]
        text = choice["message"]["content"] if kind == "v1-chat" else choice["text"]
        assert text == "".join(TOKS) and choice["finish_reason"] == "stop"
    elif kind == "v1-embeddings":
        o = r.json()
        assert o["usage"] == {"prompt_tokens": p, "total_tokens": p}
        assert [d["index"] for d in o["data"]] == [0, 1]
    elif kind.startswith("v1-chat-sse") or kind.startswith("v1-completions-sse"):
        assert ctype.startswith("text/event-stream"), r
        assert r.body.endswith(b"data: [DONE]\n\n"), r.body[-200:]
        events = r.sse()
        assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
        objs = [json.loads(e) for e in events[:-1]]
        with_usage = kind.endswith("-usage")
        usage_chunks = [o for o in objs if o.get("choices") == []]
        content = [o for o in objs if o.get("choices")]
        if kind.startswith("v1-chat"):
            texts = [o["choices"][0]["delta"].get("content") for o in content]
            assert texts == TOKS + [None], objs
            assert content[-1]["choices"][0]["finish_reason"] == "stop"
        else:
            texts = [o["choices"][0]["text"] for o in content]
            assert texts == TOKS + [""], objs
            assert content[-1]["choices"][0]["finish_reason"] == "stop"
        if with_usage:
            assert len(usage_chunks) == 1 and objs[-1] is usage_chunks[0], objs
            assert usage_chunks[0]["usage"] == {"prompt_tokens": p, "completion_tokens": c,
                                                "total_tokens": p + c}
            if kind.startswith("v1-chat"):  # Ollama puts usage on the usage chunk only
                assert all("usage" not in o for o in content), objs
        else:
            # The relay asked Ollama for usage; the client did not: no trace of it.
            assert usage_chunks == [], objs
            assert all("usage" not in o for o in objs), objs
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("case", list(CASES))
def test_inference_endpoint_is_relayed_and_charged_exactly(stack, case):
    path, body, kind, p, c = CASES[case]
    name, key = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", path, body, bearer(key))
    assert r.status == 200, r
    no_ticket_leak(r)
    check_body(kind, r, p, c)

    k = settled(stack, name)
    assert (k["tokens_today"], k["tokens_month"], k["requests_today"]) == (p + c, p + c, 1), k
    ev = events(stack, name)
    assert len(ev) == 1, ev
    e = ev[0]
    assert (e["prompt_tokens"], e["completion_tokens"]) == (p, c), e
    assert (e["endpoint"], e["model"], e["status"], e["http_status"]) == (path, body["model"], "ok", 200), e
    res = reservations(stack, name)
    assert len(res) == 1 and res[0]["claimed_at"] and res[0]["settled_at"], res
    assert e["reservation_id"] == res[0]["id"]

    recs = fake_since(stack, n0)
    assert [(x["method"], x["path"], x["status"]) for x in recs] == [("POST", path, 200)], recs
    sent = json.loads(recs[0]["body"])
    if path in ("/api/generate", "/api/chat"):
        cap = sent["options"]["num_predict"]
        assert isinstance(cap, int) and c <= cap <= res[0]["tokens"], sent
    elif path in ("/v1/chat/completions", "/v1/completions"):
        cap = sent["max_tokens"]
        assert isinstance(cap, int) and c <= cap <= res[0]["tokens"], sent
        if body.get("stream"):
            assert sent["stream_options"]["include_usage"] is True, sent
    else:
        assert "num_predict" not in json.dumps(sent)


def test_max_completion_tokens_becomes_max_tokens(stack):
    name, key = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", "/v1/chat/completions",
                   {"model": "llama3", "messages": CHAT, "max_completion_tokens": 3}, bearer(key))
    assert r.status == 200, r
    assert r.json()["usage"]["completion_tokens"] == 3
    assert r.json()["choices"][0]["finish_reason"] == "length"
    sent = json.loads(fake_since(stack, n0)[0]["body"])
    assert sent["max_tokens"] == 3, sent
    assert settled(stack, name)["tokens_today"] == prompt_tokens(P_SYS, P_GEN) + 3


def test_read_only_endpoints_are_relayed_unchanged_and_charge_nothing(stack):
    name, key = new_key(stack)
    calls = [("GET", "/api/tags", None), ("POST", "/api/show", {"model": "llama3"}),
             ("GET", "/api/version", None), ("HEAD", "/api/version", None), ("GET", "/v1/models", None),
             ("GET", "/v1/models/llama3", None)]
    n0 = fake_count(stack)
    for method, path, body in calls:
        r = stack.http(method, path, body, bearer(key))
        want = stack.fake(method, path, body)
        assert r.status == want.status == 200, (path, r)
        assert r.body == want.body, (path, r.body[:300], want.body[:300])
        assert r.headers.get("content-type") == want.headers.get("content-type"), (path, r, want)
        no_ticket_leak(r)
    r = stack.http("GET", "/api/ps", None, bearer(key))
    assert r.status == 200 and "models" in r.json(), r

    # Each call went to the fake twice (relayed, then directly), /api/ps once.
    recs = fake_since(stack, n0)
    assert [(x["method"], x["path"]) for x in recs] == \
        [(m, p) for m, p, _ in calls for _ in (0, 1)] + [("GET", "/api/ps")], recs
    k = settled(stack, name)
    assert (k["tokens_today"], k["requests_today"]) == (0, len(calls) + 1), k
    assert [r["tokens"] for r in reservations(stack, name)] == [0] * (len(calls) + 1)
    ev = events(stack, name)
    assert len(ev) == len(calls) + 1, ev
    assert all(e["prompt_tokens"] == 0 and e["completion_tokens"] == 0 for e in ev), ev
    endpoints = [e["endpoint"] for e in ev]
    assert endpoints[:5] + endpoints[6:] == [p for _, p, _ in calls][:5] + ["/api/ps"], endpoints
    assert endpoints[5] in ("/v1/models/llama3", "/v1/models/{model}"), endpoints


# ---- keys: where they come from, and that they go no further ----------------

def test_key_sources_all_work_and_never_reach_upstream(stack):
    name, key = new_key(stack)
    n0 = fake_count(stack)
    for headers, path in [(bearer(key), "/api/version"),
                          ({"Authorization": key}, "/api/version"),
                          ({"X-API-Key": key}, "/api/version"),
                          ({}, f"/api/version?api_key={key}"),
                          ({}, f"/api/version?keep=1&api_key={key}&also=2")]:
        r = stack.http("GET", path, None, headers)
        assert r.status == 200, (headers, path, r)
        assert r.json() == {"version": "0.32.15"}
    recs = fake_since(stack, n0)
    assert len(recs) == 5, recs
    assert [x["query"] for x in recs] == ["", "", "", "", "keep=1&also=2"]
    for x in recs:
        dump = json.dumps(x)
        assert key not in dump and key[6:] not in dump and key[14:40] not in dump, x
        assert "authorization" not in x["headers"] and "x-api-key" not in x["headers"], x
    assert settled(stack, name)["requests_today"] == 5


def test_first_key_source_wins(stack):
    _, key = new_key(stack)
    bad = "sk-tg-" + "A" * 49
    assert stack.http("GET", "/api/version", None, {"Authorization": f"Bearer {key}", "X-API-Key": bad}).status == 200
    assert stack.http("GET", f"/api/version?api_key={bad}", None, {"X-API-Key": key}).status == 200
    r = stack.http("GET", f"/api/version?api_key={key}", None, {"Authorization": f"Bearer {bad}", "X-API-Key": key})
    assert r.status == 401, r
    r = stack.http("GET", f"/api/version?api_key={key}", None, {"X-API-Key": bad})
    assert r.status == 401, r


def test_foreign_host_is_rewritten_for_upstream(stack):
    name, key = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", "/api/generate", {"model": "llama3", "prompt": P_GEN, "stream": False},
                   dict(bearer(key), Host="api.example.com"))
    assert r.status == 200, r   # fake-ollama, like Ollama, answers 403 to a foreign Host
    rec = fake_since(stack, n0)[0]
    assert rec["headers"]["host"] in (f"127.0.0.1:{stack.fake_port}", "127.0.0.1"), rec["headers"]
    assert settled(stack, name)["tokens_today"] == prompt_tokens(P_GEN) + 8


# ---- denials ------------------------------------------------------------------

FAMILIES = {"api": ("/api/chat", {"model": "llama3", "messages": CHAT}),
            "v1": ("/v1/chat/completions", {"model": "llama3", "messages": CHAT})}


def seconds_to_next_local_midnight():
    tz = zoneinfo.ZoneInfo(TIME_ZONE)
    now = datetime.datetime.now(tz)
    midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(0), tzinfo=tz)
    return (midnight - now).total_seconds()


def denial_key(stack, kind):
    """A key (or header value) that the authorizer must refuse, by kind."""
    if kind == "none":
        return None
    if kind == "malformed":
        return "sk-tg-not-a-key"
    if kind == "bad-checksum":
        _, key = new_key(stack)
        return key[:-1] + ("A" if key[-1] != "A" else "B")
    name, key = new_key(stack)
    if kind == "unknown":
        stack.tg.ok("key", "delete", name)
    elif kind == "disabled":
        stack.tg.ok("key", "disable", name)
    elif kind == "expired":
        stack.tg.ok("key", "update", name, "--expires", "2020-01-01 00:00+00")
    elif kind == "not-yet-valid":
        stack.tg.ok("key", "update", name, "--not-before", "+30d")
    return key


DENIALS = {"none": 401, "malformed": 401, "bad-checksum": 401, "unknown": 401,
           "disabled": 403, "expired": 403, "not-yet-valid": 403}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("kind", list(DENIALS))
def test_denial(stack, kind, family):
    path, body = FAMILIES[family]
    key = denial_key(stack, kind)
    n0 = fake_count(stack)
    r = stack.http("POST", path, body, bearer(key) if key else {})
    assert_family_error(r, path, DENIALS[kind])
    if DENIALS[kind] == 401:
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), r
    no_ticket_leak(r)
    assert fake_count(stack) == n0, "a denied request reached the upstream"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_exhausted_tokens_get_429_with_retry_after_and_ratelimit_headers(stack, family):
    path, body = FAMILIES[family]
    name, key = new_key(stack, "--requests-day", "1000")
    r = stack.http("POST", "/api/generate", {"model": "llama3", "prompt": P_GEN, "stream": False}, bearer(key))
    assert r.status == 200, r
    used = settled(stack, name)["tokens_today"]
    assert used == prompt_tokens(P_GEN) + 8
    stack.tg.ok("key", "update", name, "--tokens-day", str(used))

    n0 = fake_count(stack)
    r = stack.http("POST", path, body, bearer(key))
    msg = assert_family_error(r, path, 429)
    assert "token" in msg.lower(), msg
    want = seconds_to_next_local_midnight()
    assert abs(int(r.headers["retry-after"]) - want) <= 5, (r.headers, want)
    assert r.headers["x-ratelimit-limit-tokens"] == str(used), r
    assert r.headers["x-ratelimit-remaining-tokens"] == "0", r
    k = settled(stack, name)
    assert r.headers["x-ratelimit-limit-requests"] == "1000", r
    assert r.headers["x-ratelimit-remaining-requests"] == str(1000 - k["requests_today"]), (r, k)
    assert fake_count(stack) == n0
    assert k["tokens_today"] == used


# ---- streaming ----------------------------------------------------------------

@pytest.mark.parametrize("path,body,sep", [
    ("/api/chat", {"model": "slow", "messages": CHAT}, b"\n"),
    ("/v1/chat/completions", {"model": "slow", "messages": CHAT, "stream": True}, b"\n\n"),
], ids=["ndjson", "sse"])
def test_stream_arrives_chunk_by_chunk(stack, path, body, sep):
    name, key = new_key(stack)
    s = stack.stream("POST", path, body, bearer(key))
    try:
        assert s.status == 200
        got = list(s.lines(sep))
    finally:
        s.close()
    times = [t for t, _ in got]
    recs = [rec for _, rec in got]
    if sep == b"\n":
        assert len(recs) == 9 and json.loads(recs[-1])["done"] is True, recs
    else:
        assert recs[-1] == b"data: [DONE]", recs
        assert len(recs) == 10, recs   # 8 tokens, the finish chunk, [DONE]
    # slow emits a token every 200 ms: the first must come well before the last.
    assert times[-1] - times[0] >= 1.0, times
    gaps = [b - a for a, b in zip(times[:8], times[1:8])]
    assert sum(1 for g in gaps if g >= 0.1) >= 5, times
    settled(stack, name)


def calibrate_estimate(stack, body):
    """The relay's prompt estimate for `body`, measured: on a key whose only
    limit is 60 tokens the output cap is (reservation - estimate), and the
    `long` model generates exactly up to the cap."""
    name, key = new_key(stack, "--tokens-day", "60")
    r = stack.http("POST", "/api/generate", dict(body, model="long"), bearer(key))
    assert r.status == 200, r
    last = r.lines()[-1]
    settled(stack, name)
    res = reservations(stack, name)
    assert len(res) == 1, res
    est = res[0]["tokens"] - last["eval_count"]
    assert 0 < est <= 60, (res, last)
    return est


def test_client_disconnect_stops_upstream_and_charges_what_was_streamed(stack):
    body = {"prompt": "Tell me a story about a lighthouse.", "options": {"fake_tokens": 90}}
    est = calibrate_estimate(stack, body)

    name, key = new_key(stack)
    n0 = fake_count(stack)
    s = stack.stream("POST", "/api/generate", dict(body, model="slow"), bearer(key))
    assert s.status == 200
    lines = s.lines()
    got = [next(lines)[1] for _ in range(3)]
    assert [json.loads(l)["response"] for l in got] == ["tok0 ", "tok1 ", "tok2 "]
    t_gone = time.time()
    s.close()

    # fake-ollama's list waits for the request still in flight: it ends
    # once the hang-up has reached the upstream.
    recs = fake_since(stack, n0)
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["client_gone"] is True, rec
    assert rec["chunks_sent"] < 91, rec             # it did not run to the end
    assert rec["t_end"] - t_gone < 3.0, (rec["t_end"] - t_gone, rec)

    k = settled(stack, name)
    ev = events(stack, name)
    assert len(ev) == 1, ev
    e = ev[0]
    assert e["status"] == "client_gone", e
    assert e["prompt_tokens"] == est, (e, est)
    # One token per content chunk relayed: at least the three the client read,
    # at most what the upstream sent.
    assert 3 <= e["completion_tokens"] <= rec["chunks_sent"], (e, rec)
    assert k["tokens_today"] == e["prompt_tokens"] + e["completion_tokens"], (k, e)


def test_fifty_concurrent_streams_never_outrun_the_token_limit(stack):
    limit, per_request = 400, 40
    name, key = new_key(stack, "--tokens-day", str(limit), "--reservation", str(per_request))
    body = {"model": "llama3", "prompt": "Count to a thousand.", "options": {"fake_tokens": 1000}}
    barrier = threading.Barrier(50)
    results = [None] * 50

    def one(i):
        barrier.wait()
        try:
            results[i] = stack.http("POST", "/api/generate", body, bearer(key), timeout=60)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert all(r is not None and not isinstance(r, Exception) for r in results), results
    statuses = sorted(r.status for r in results)
    assert set(statuses) <= {200, 429}, statuses
    ok = [r for r in results if r.status == 200]
    assert ok and len(ok) < 50, statuses

    charged = 0
    for r in ok:
        lines = r.lines()
        assert lines[-1]["done"] is True, r
        charged += lines[-1]["prompt_eval_count"] + lines[-1]["eval_count"]
    k = settled(stack, name, timeout=20)
    assert k["tokens_today"] == charged, (k, charged)

    res = {x["id"]: x for x in reservations(stack, name)}
    ev = events(stack, name)
    assert len([e for e in ev if e["status"] == "ok"]) == len(ok), ev
    excess = 0
    for e in ev:
        reserved = res[e["reservation_id"]]["tokens"]
        assert e["completion_tokens"] <= reserved, (e, res[e["reservation_id"]])
        excess += max(0, e["prompt_tokens"] + e["completion_tokens"] - reserved)
        # Going past the reservation is only the prompt estimate's error.
        assert e["prompt_tokens"] + e["completion_tokens"] - reserved <= e["prompt_tokens"], e
    assert k["tokens_today"] <= limit + excess, (k, excess)
    assert all(x["settled_at"] for x in res.values()), res
    assert stack.db.value(
        "SELECT COALESCE(sum(q.tokens_reserved), 0) FROM quota_usage q JOIN api_keys k ON k.id = q.key_id "
        f"WHERE k.name = '{name}'") == "0"


# ---- tickets ------------------------------------------------------------------

def apache_like_params(path, body=b"", query="", extra=None):
    p = {"HTTP_HOST": "127.0.0.1", "HTTP_USER_AGENT": "tollgate-tests", "HTTP_ACCEPT": "*/*",
         "SERVER_SOFTWARE": "Apache", "SERVER_NAME": "127.0.0.1", "SERVER_ADDR": "127.0.0.1",
         "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
         "REQUEST_SCHEME": "http", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
         "REQUEST_METHOD": "POST" if body else "GET", "QUERY_STRING": query,
         "REQUEST_URI": path + ("?" + query if query else ""),
         "SCRIPT_NAME": path, "SCRIPT_FILENAME": "proxy:fcgi://localhost" + path}
    if body:
        p.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    p.update(extra or {})
    return p


def authorize(stack, key, path="/api/generate"):
    """Asks tollgate-authz directly, as mod_authnz_fcgi does (no stdin)."""
    params = apache_like_params(path, b"", extra={
        "HTTP_AUTHORIZATION": f"Bearer {key}", "FCGI_APACHE_ROLE": "AUTHENTICATOR",
        "HTTP_CONNECTION": "close", "REQUEST_METHOD": "POST"})
    r = fcgi.request(stack.authz_addr, params, role=fcgi.AUTHORIZER, send_stdin=False)
    assert r.status == 200, r
    ticket = r.header("Variable-TOLLGATE_TICKET")
    assert ticket, r
    TICKETS.append(ticket)
    return ticket, r.header("Variable-TOLLGATE_KEY_ID")


def relay_call(stack, ticket, path="/api/generate", body=None, query="", extra=None, key_id=None):
    body = json.dumps(body or {"model": "llama3", "prompt": P_GEN, "stream": False}).encode()
    extra = dict(extra or {})
    if ticket is not None:
        extra["TOLLGATE_TICKET"] = ticket
    if key_id is not None:
        extra.update(REMOTE_USER=key_id, TOLLGATE_KEY_ID=key_id)
    return fcgi.request(stack.relay_sock, apache_like_params(path, body, query, extra), stdin=body)


def sign(secret, fields, method="POST", path="/api/generate"):
    """lib/ticket.h: the fields and the request the ticket is for."""
    msg = ("tg2." + ".".join(str(f) for f in fields)).encode() + \
        hashlib.sha256(method.encode() + b"\0" + path.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(secret, msg, hashlib.sha256).digest()).rstrip(b"=").decode()


def test_relay_refuses_forged_altered_expired_and_replayed_tickets(stack):
    name, key = new_key(stack)
    ticket, key_id = authorize(stack, key)
    assert key_id == str(show(stack, name)["id"])
    fields = ticket.split(".")
    assert len(fields) == 5 and all(f.isdigit() for f in fields[:4]), ticket
    res_id, t_key, tokens, expiry, mac = fields
    secret = stack.tg.secret.read_bytes().rstrip()
    assert sign(secret, fields[:4]) == mac, "ticket MAC is not as lib/ticket.h describes"
    assert (int(t_key), int(tokens)) == (int(key_id), 2048)
    assert int(expiry) > time.time()

    other = uuid.uuid4().hex.encode()
    past = int(time.time()) - 60
    refused = {
        "missing": None,
        "garbage": "forged",
        "empty": "",
        "wrong secret": ".".join(fields[:4] + [sign(other, fields[:4])]),
        "tokens altered": ".".join([res_id, t_key, str(int(tokens) + 1000), expiry, mac]),
        "reservation altered": ".".join([str(int(res_id) + 1), t_key, tokens, expiry, mac]),
        "mac altered": ticket[:-1] + ("A" if ticket[-1] != "A" else "B"),
        "expiry altered": ".".join([res_id, t_key, tokens, str(int(expiry) + 3600), mac]),
        "expired": ".".join([res_id, t_key, tokens, str(past), sign(secret, [res_id, t_key, tokens, past])]),
        "trailing byte": ticket + "x",
    }
    n0 = fake_count(stack)
    for what, t in refused.items():
        r = relay_call(stack, t, key_id=key_id)
        assert r.status == 403, (what, r)
    # A client header can only ever produce HTTP_* parameters.
    for hdr in ("HTTP_TOLLGATE_TICKET", "HTTP_X_TOLLGATE_TICKET"):
        r = relay_call(stack, None, extra={hdr: ticket}, key_id=key_id)
        assert r.status == 403, (hdr, r)
    assert fake_count(stack) == n0, "a refused ticket reached the upstream"
    assert [x["claimed_at"] for x in reservations(stack, name)] == [None]

    r = relay_call(stack, ticket, key_id=key_id)
    assert r.status == 200, r
    assert json.loads(r.body)["eval_count"] == 8
    assert fake_count(stack) == n0 + 1
    k = settled(stack, name)
    assert k["tokens_today"] == prompt_tokens(P_GEN) + 8

    r = relay_call(stack, ticket, key_id=key_id)
    assert r.status == 403, ("replayed", r)
    assert fake_count(stack) == n0 + 1, "a replayed ticket reached the upstream"
    assert show(stack, name)["tokens_today"] == k["tokens_today"]


def test_ticket_headers_from_a_client_are_worthless(stack):
    name, key = new_key(stack)
    ticket, _ = authorize(stack, key)
    n0 = fake_count(stack)
    for hdrs in ({"X-Tollgate-Ticket": ticket}, {"Tollgate-Ticket": ticket},
                 {"X-Tollgate-Ticket": ticket, "Tollgate-Ticket": ticket, "Variable-TOLLGATE_TICKET": ticket}):
        r = stack.http("POST", "/api/generate", {"model": "llama3", "prompt": P_GEN}, hdrs)
        assert_family_error(r, "/api/generate", 401)
    assert fake_count(stack) == n0
    # With a key, the header is dropped on the way: the request is its own.
    r = stack.http("POST", "/api/generate", {"model": "llama3", "prompt": P_GEN, "stream": False},
                   dict(bearer(key), **{"X-Tollgate-Ticket": ticket, "Tollgate-Ticket": ticket}))
    assert r.status == 200, r
    rec = fake_since(stack, n0)
    assert len(rec) == 1 and ticket not in json.dumps(rec), rec
    res = reservations(stack, name)
    assert len(res) == 2 and res[0]["claimed_at"] is None and res[1]["settled_at"], res


def test_relay_strips_client_credentials_and_rewrites_host(stack):
    name, key = new_key(stack)
    ticket, key_id = authorize(stack, key)
    n0 = fake_count(stack)
    r = relay_call(stack, ticket, query=f"api_key={key}&keep=1", key_id=key_id, extra={
        "HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_X_API_KEY": key, "HTTP_HOST": "api.example.com"})
    assert r.status == 200, r
    rec = fake_since(stack, n0)
    assert len(rec) == 1, rec
    rec = rec[0]
    dump = json.dumps(rec)
    assert key not in dump and key[6:] not in dump and key[14:40] not in dump, rec
    assert "authorization" not in rec["headers"] and "x-api-key" not in rec["headers"], rec
    assert rec["query"] == "keep=1", rec
    assert rec["headers"]["host"].startswith("127.0.0.1"), rec
    assert settled(stack, name)["tokens_today"] == prompt_tokens(P_GEN) + 8


# ---- errors -------------------------------------------------------------------

UPSTREAM_ERRORS = {
    "api-unknown-model": ("/api/chat", {"model": "nope", "messages": CHAT}, 404),
    "v1-unknown-model": ("/v1/chat/completions", {"model": "nope", "messages": CHAT}, 404),
    "api-busy": ("/api/generate", {"model": "busy", "prompt": P_GEN}, 503),
    "v1-busy": ("/v1/chat/completions", {"model": "busy", "messages": CHAT, "stream": True}, 503),
    "api-no-completion": ("/api/generate", {"model": "all-minilm", "prompt": P_GEN}, 400),
    "api-fail": ("/api/generate", {"model": "fail-mid", "prompt": P_GEN, "stream": False}, 500),
}


@pytest.mark.parametrize("case", list(UPSTREAM_ERRORS))
def test_upstream_error_reaches_client_unchanged_and_charges_nothing(stack, case):
    path, body, status = UPSTREAM_ERRORS[case]
    name, key = new_key(stack)
    want = stack.fake("POST", path, body)
    assert want.status == status, want
    r = stack.http("POST", path, body, bearer(key))
    assert (r.status, r.body) == (want.status, want.body), (r, want)
    assert r.headers.get("content-type") == want.headers.get("content-type"), (r, want)
    k = settled(stack, name)
    assert (k["tokens_today"], k["reserved_tokens"]) == (0, 0), k
    assert [(e["prompt_tokens"], e["completion_tokens"]) for e in events(stack, name)] in ([], [(0, 0)])


def test_error_mid_stream_is_passed_on(stack):
    name, key = new_key(stack)
    r = stack.http("POST", "/api/generate", {"model": "fail-mid", "prompt": P_GEN}, bearer(key))
    assert r.status == 200, r
    lines = r.lines()
    assert [l.get("response") for l in lines[:3]] == TOKS[:3]
    assert lines[3:] == [{"error": FAIL_MSG}], lines
    k = settled(stack, name)
    ev = events(stack, name)
    assert len(ev) == 1 and ev[0]["completion_tokens"] <= 3, ev
    assert k["tokens_today"] == ev[0]["prompt_tokens"] + ev[0]["completion_tokens"]


BAD_BODIES = {
    "api-malformed": ("/api/chat", b'{"model": "llama3", "messages": [', None),
    "api-not-an-object": ("/api/generate", b'["llama3"]', None),
    "api-missing-model": ("/api/generate", b'{"prompt": "hi"}', "model"),
    "api-model-not-a-string": ("/api/generate", b'{"model": 5, "prompt": "hi"}', "model"),
    "api-messages-not-an-array": ("/api/chat", b'{"model": "llama3", "messages": "hi"}', "messages"),
    "v1-malformed": ("/v1/chat/completions", b'{"model": "llama3", "messages": [}', None),
    "v1-missing-model": ("/v1/completions", b'{"prompt": "hi"}', "model"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_json_body_gets_400_and_reaches_nothing(stack, case):
    path, body, word = BAD_BODIES[case]
    name, key = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", path, body, bearer(key))
    msg = assert_family_error(r, path, 400)
    if word:
        assert word in msg, msg
    assert fake_count(stack) == n0
    k = settled(stack, name)
    assert (k["tokens_today"], k["reserved_tokens"]) == (0, 0), k


@pytest.mark.parametrize("family", ["api", "v1"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_max_body_bytes_gets_413(stack, family, chunked):
    path = {"api": "/api/generate", "v1": "/v1/completions"}[family]
    name, key = new_key(stack)
    body = json.dumps({"model": "llama3", "prompt": "x" * (MAX_BODY + 10)}).encode()
    n0 = fake_count(stack)
    if chunked:
        c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
        try:
            c.request("POST", path, body=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                      headers=dict(bearer(key), **{"Content-Type": "application/json"}), encode_chunked=True)
            resp = c.getresponse()
            r = Response(resp.status, resp.getheaders(), resp.read())
        finally:
            c.close()
    else:
        r = stack.http("POST", path, body, bearer(key))
    assert_family_error(r, path, 413)
    assert fake_count(stack) == n0
    k = settled(stack, name)
    assert (k["tokens_today"], k["reserved_tokens"]) == (0, 0), k


# ---- upstream down or silent: a second stack ------------------------------------

@pytest.fixture(scope="module")
def down(db, web):
    """A stack whose upstream accepts connections but never answers (a
    listening socket nobody serves); closing it makes the port refuse."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    s = Stack(db, web=web, fake=False, upstream="http://127.0.0.1:%d" % hole.getsockname()[1],
              conf={"upstream_timeout": "2", "connect_timeout": "2", "time_zone": TIME_ZONE},
              name=f"upstream-down-{web}")
    s.hole = hole
    STACKS.append(s)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        hole.close()


@pytest.mark.parametrize("path,body", [("/api/generate", {"model": "llama3", "prompt": P_GEN}),
                                       ("/v1/chat/completions", {"model": "llama3", "messages": CHAT})],
                         ids=["api", "v1"])
def test_silent_upstream_gives_504_and_refunds(down, path, body):
    if down.hole.fileno() == -1:
        pytest.skip("the upstream socket was already closed by the 502 test")
    name, key = new_key(down)
    t0 = time.monotonic()
    r = down.http("POST", path, body, bearer(key), timeout=30)
    assert_family_error(r, path, 504)
    elapsed = time.monotonic() - t0
    # upstream_timeout = 2: "seconds without upstream data before a 504".
    assert elapsed < 2 + 3, f"504 came after {elapsed:.1f}s of upstream silence, upstream_timeout is 2s"
    k = settled(down, name)
    assert (k["tokens_today"], k["reserved_tokens"], k["open_reservations"]) == (0, 0, 0), k


@pytest.mark.parametrize("path,body", [("/api/chat", {"model": "llama3", "messages": CHAT}),
                                       ("/v1/chat/completions", {"model": "llama3", "messages": CHAT})],
                         ids=["api", "v1"])
def test_unreachable_upstream_gives_502_and_refunds(down, path, body):
    down.hole.close()   # nothing listens there any more: connections are refused
    name, key = new_key(down)
    r = down.http("POST", path, body, bearer(key), timeout=30)
    assert_family_error(r, path, 502)
    k = settled(down, name)
    assert (k["tokens_today"], k["reserved_tokens"], k["open_reservations"]) == (0, 0, 0), k
    assert k["requests_today"] == 0  # it never ran: not a request either (issue 19)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_database_unreachable_fails_closed_with_503(down, family):
    path, body = FAMILIES[family]
    _, key = new_key(down)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))   # bound, never listening: connections are refused
    port = dead.getsockname()[1]
    down.stop_process("tollgate-authz")
    try:
        down.start_program("tollgate-authz", db=f"host=127.0.0.1 port={port} user=tollgate dbname=nope")
        r = down.http("POST", path, body, bearer(key), timeout=30)
        assert_family_error(r, path, 503)
    finally:
        down.stop_process("tollgate-authz")
        down.start_program("tollgate-authz")
        dead.close()


# What each server answers itself when the authorizer or the relay is down:
# all fail closed (web-servers.md §0). The Apache, Caddy and nginx examples make
# these JSON in the family's shape; lighttpd sends its own page.
DOWN_STATUS = {"apache": {"authz": 500, "relay": 503}, "lighttpd": {"authz": 503, "relay": 503},
               "caddy": {"authz": 502, "relay": 502}, "nginx": {"authz": 500, "relay": 502}}


def assert_gateway_error(stack, r, path, which):
    status = DOWN_STATUS[stack.web][which]
    if stack.web != "lighttpd":
        assert_family_error(r, path, status)
    assert r.status == status, r


def test_relay_down_fails_closed(down):
    _, key = new_key(down)
    down.stop_process("tollgate-relay")
    if os.path.exists(down.relay_sock):   # a socket left behind: connections refused
        os.unlink(down.relay_sock)
    try:
        for path, body in FAMILIES.values():
            r = down.http("POST", path, body, bearer(key))
            assert_gateway_error(down, r, path, "relay")
            no_ticket_leak(r)
    finally:
        down.start_program("tollgate-relay")


def test_authorizer_down_fails_closed(down):
    _, key = new_key(down)
    down.stop_process("tollgate-authz")
    try:
        for path, body in FAMILIES.values():
            r = down.http("POST", path, body, bearer(key))
            assert_gateway_error(down, r, path, "authz")
    finally:
        down.start_program("tollgate-authz")


# ---- last: what the logs hold, and a clean exit --------------------------------

def test_logs_hold_no_key_and_no_ticket(stack):
    assert KEYS, "run with the rest of the module"
    text = "\n".join(s.log_text() for s in STACKS)
    for key in KEYS:
        assert key not in text and key[6:] not in text and key[14:40] not in text, \
            f"key {key[:14]}... appears in a log"
    for t in TICKETS:
        assert t not in text and t.rsplit(".", 1)[-1] not in text, f"ticket {t[:12]}... appears in a log"


def test_programs_exit_cleanly_on_sigterm(stack):
    codes = {n: stack.stop_process(n) for n in (stack.web, "tollgate-relay", "tollgate-authz")}
    assert codes["tollgate-relay"] == 0 and codes["tollgate-authz"] == 0, codes
    text = stack.log_text()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in text, f"{bad} in the logs"
