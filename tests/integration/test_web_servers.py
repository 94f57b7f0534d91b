"""The same product behind every web server (issue 7): one tollgate-authz,
one tollgate-relay and fake-ollama, with Apache, lighttpd, Caddy and nginx in
front of them at once, each configured from its examples/<server> files. A
request sent to each of the four must get the same answer.

The whole request-path suite also runs once per server
(test_request_path.py, the `web` fixture); this module compares the
servers with each other, and checks what each example does against
clients that try to pass themselves off as the web server."""
import json
import re
import socket
import time
import uuid

import pytest

import fcgi
from conftest import WEB_SERVERS
from stack import Stack, wait_for

CHAT = [{"role": "user", "content": "Why is the sky blue?"}]
FAMILIES = {"api": ("/api/chat", {"model": "llama3", "messages": CHAT}),
            "v1": ("/v1/chat/completions", {"model": "llama3", "messages": CHAT})}
# The headers a denial is made of (besides Content-Type); none may differ.
DENIAL_HEADERS = ("www-authenticate", "retry-after", "x-ratelimit-limit-requests",
                  "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens",
                  "x-ratelimit-remaining-tokens")


@pytest.fixture(scope="module")
def stack(db):
    with Stack(db, conf={"threads": "16"}, name="web-servers", every_web=True) as s:
        yield s


def new_key(stack, *flags):
    name = "w-" + uuid.uuid4().hex[:10]
    r = stack.tg.ok("key", "create", "--name", name, *flags)
    return name, r.stdout.splitlines()[-1]


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def shape(r):
    """What a client sees of a denial, made comparable: status, content
    type, the denial headers, the JSON body. A 429's reset time moves with
    the clock: its seconds are compared apart, within 3 s."""
    assert not [k for k, _ in r.header_list if "tollgate" in k.lower() or k.lower().startswith("variable-")], r
    heads = {h: r.headers.get(h) for h in DENIAL_HEADERS}
    body = r.json()
    secs = None
    if r.status == 429:
        secs = int(heads.pop("retry-after"))
        msg = body["error"]["message"] if isinstance(body["error"], dict) else body["error"]
        m = re.search(r"resets in (\d+) s, at \S+\.", msg)
        assert m and abs(int(m.group(1)) - secs) <= 2, (msg, secs)
        masked = msg.replace(m.group(0), "resets in N s, at T.")
        if isinstance(body["error"], dict):
            body["error"]["message"] = masked
        else:
            body["error"] = masked
    return (r.status, r.headers.get("content-type"), heads, body), secs


def same_everywhere(stack, method, path, body, headers):
    shapes = {}
    for web, port in stack.ports.items():
        shapes[web] = shape(stack.http(method, path, body, headers, port=port))
    first = shapes[WEB_SERVERS[0]]
    for web, (s, secs) in shapes.items():
        assert s == first[0], f"{web} differs from {WEB_SERVERS[0]}:\n{s}\n{first[0]}"
        if secs is not None:
            assert abs(secs - first[1]) <= 3, shapes
    return first[0]


DENIALS = ["no-key", "unknown-key", "disabled", "admin-only", "requests-exhausted", "tokens-exhausted"]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("kind", DENIALS)
def test_denial_is_identical_under_every_server(stack, kind, family):
    path, body = FAMILIES[family]
    headers = {}
    if kind == "no-key":
        want = 401
    elif kind == "unknown-key":
        name, key = new_key(stack)
        stack.tg.ok("key", "delete", name)
        headers, want = bearer(key), 401
    elif kind == "disabled":
        name, key = new_key(stack)
        stack.tg.ok("key", "disable", name)
        headers, want = bearer(key), 403
    elif kind == "admin-only":
        _, key = new_key(stack)
        path, body = "/api/pull", {"model": "llama3"}
        headers, want = bearer(key), 403
    else:
        flags = ["--requests-day", "1"] if kind == "requests-exhausted" else []
        name, key = new_key(stack, "--requests-month", "100", *flags)
        r = stack.http("POST", "/api/generate", {"model": "llama3", "prompt": "hi", "stream": False},
                       bearer(key))
        assert r.status == 200, r
        if kind == "tokens-exhausted":
            used = wait_for(lambda: json.loads(stack.tg.ok("key", "show", name, "--json").stdout)["tokens_today"],
                            10, 0.1, "the first request to settle")
            stack.tg.ok("key", "update", name, "--tokens-day", str(used))
        headers, want = bearer(key), 429
    n0 = len(stack.fake_requests())
    status, ctype, heads, _ = same_everywhere(stack, "POST", path, body, headers)
    assert status == want and ctype.startswith("application/json"), (status, ctype)
    if want == 401:
        assert heads["www-authenticate"].startswith("Bearer"), heads
    if want == 429:
        assert heads["x-ratelimit-limit-requests"] is not None, heads
    assert len(stack.fake_requests()) == n0, "a denied request reached the upstream"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_database_down_503_is_identical_under_every_server(stack, family):
    path, body = FAMILIES[family]
    _, key = new_key(stack)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))   # bound, never listening: connections are refused
    stack.stop_process("tollgate-authz")
    try:
        stack.start_program("tollgate-authz",
                            db=f"host=127.0.0.1 port={dead.getsockname()[1]} user=tollgate dbname=nope")
        status, ctype, heads, _ = same_everywhere(stack, "POST", path, body, bearer(key))
        assert (status, heads["retry-after"]) == (503, "5"), (status, heads)
    finally:
        stack.stop_process("tollgate-authz")
        stack.start_program("tollgate-authz")
        dead.close()


@pytest.mark.parametrize("web", WEB_SERVERS)
def test_client_cannot_pass_for_the_web_server(stack, web):
    """Headers a client could send to look like what the server or the
    authorizer sets: a stolen ticket (as every header spelling that maps to
    the ticket's names, repeated because Caddy's FastCGI transport lets
    colliding names win at random), the nginx denial switch, and the URI the
    authorizer judges (an infer-only key calling an admin endpoint)."""
    port = stack.ports[web]
    name, key = new_key(stack)
    victim, vkey = new_key(stack)
    r = fcgi.request(stack.authz_addr, {
        "REQUEST_METHOD": "POST", "REQUEST_URI": "/api/generate", "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": f"Bearer {vkey}"}, role=fcgi.AUTHORIZER, send_stdin=False)
    ticket = r.header("Variable-TOLLGATE_TICKET")
    assert r.status == 200 and ticket, r
    spoof = {"X-Tollgate-Ticket": ticket, "Tollgate-Ticket": ticket, "X_Tollgate_Ticket": ticket,
             "TOLLGATE_TICKET": ticket, "Tollgate_Ticket": ticket, "Variable-TOLLGATE_TICKET": ticket}
    body = {"model": "llama3", "prompt": "hi", "stream": False}
    n0 = len(stack.fake_requests())
    for _ in range(3):
        r = stack.http("POST", "/api/generate", body, spoof, port=port)
        assert r.status == 401, r   # no key: the stolen ticket bought nothing
    assert len(stack.fake_requests()) == n0
    for _ in range(6):
        r = stack.http("POST", "/api/generate", body, dict(bearer(key), **spoof), port=port)
        assert r.status == 200, r   # its own reservation, not the victim's
        assert ticket not in json.dumps(stack.fake_requests()[-1])
    res = stack.db.rows("SELECT k.name, r.claimed_at IS NOT NULL FROM reservations r "
                        f"JOIN api_keys k ON k.id = r.key_id WHERE k.name IN ('{name}', '{victim}')")
    assert sorted(res) == sorted([[name, "t"]] * 6 + [[victim, "f"]]), res

    # Not the nginx switch: a client's TOLLGATE_NGINX becomes HTTP_*.
    r = stack.http("POST", "/api/generate", body, {"TOLLGATE_NGINX": "1", "Tollgate-Nginx": "1"}, port=port)
    assert r.status == 401 and "x-tollgate-status" not in r.headers, r

    # Not the URI: the authorizer judges the request the server received.
    for _ in range(6):
        r = stack.http("POST", "/api/pull", {"model": "llama3"},
                       dict(bearer(key), **{"X-Forwarded-Uri": "/api/version", "X_Forwarded_Uri": "/api/version",
                                            "X-Original-URI": "/api/version", "X-Forwarded-Method": "GET"}),
                       port=port)
        assert r.status == 403 and "admin" in r.json()["error"], r
    assert len(stack.fake_requests()) == n0 + 6


def nginx_params(key=None, nginx="1", uri="/v1/chat/completions"):
    """What nginx's auth_request location sends tollgate-authz."""
    p = {"REQUEST_METHOD": "POST", "REQUEST_URI": uri, "QUERY_STRING": "", "SCRIPT_NAME": "/_tollgate_auth",
         "DOCUMENT_URI": "/_tollgate_auth", "CONTENT_LENGTH": "27", "HTTP_HOST": "127.0.0.1"}
    if nginx is not None:
        p["TOLLGATE_NGINX"] = nginx
    if key:
        p["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return p


def test_authz_denies_the_nginx_way_only_when_the_server_asks(stack):
    """Behind nginx the real status and body ride in X-Tollgate-Status and
    X-Tollgate-Body of a 401 or 403 (auth_request passes no other status);
    elsewhere the denial is sent as it is."""
    name, key = new_key(stack, "--requests-day", "1")
    r = fcgi.request(stack.authz_addr, nginx_params(), send_stdin=True)
    assert (r.status, r.header("X-Tollgate-Status")) == (401, "401"), r
    assert r.header("WWW-Authenticate") == "Bearer", r
    assert json.loads(r.header("X-Tollgate-Body")) == json.loads(r.body), r
    assert json.loads(r.body)["error"]["code"] == "missing_api_key", r

    r = fcgi.request(stack.authz_addr, nginx_params(key))
    assert r.status == 200 and r.header("X-Tollgate-Ticket") and r.header("X-Tollgate-Status") is None, r
    r = fcgi.request(stack.authz_addr, nginx_params(key))
    assert (r.status, r.header("X-Tollgate-Status")) == (403, "429"), r
    assert r.header("Retry-After") and r.header("x-ratelimit-remaining-requests") == "0", r
    carried = r.header("X-Tollgate-Body")
    assert "\n" not in carried and json.loads(carried)["error"]["code"] == "rate_limit_exceeded", r

    for other in (None, "0", "yes"):
        r = fcgi.request(stack.authz_addr, nginx_params(key, nginx=other))
        assert r.status == 429 and r.header("X-Tollgate-Status") is None, (other, r)


@pytest.mark.parametrize("web", WEB_SERVERS)
def test_first_line_arrives_long_before_the_last(stack, web):
    """The slow model sends a token every 200 ms: under every server the
    client gets the first line at once, not with the rest at the end."""
    _, key = new_key(stack)
    s = stack.stream("POST", "/api/generate", {"model": "slow", "prompt": "hi"}, bearer(key),
                     port=stack.ports[web])
    try:
        assert s.status == 200
        times = [t for t, _ in s.lines()]
    finally:
        s.close()
    assert len(times) == 9, times
    assert times[-1] - times[0] >= 1.0, times
    assert times[0] < times[-1] / 4, times
