"""One path, one meaning (issue 19.2 and 19.7), under each web server: a
path with dot segments, repeated slashes or percent-encoding is either
metered exactly as the path it means (the upstream gets that path, the
usage event is charged to it, the key's policy and limits apply) or
refused with 400, never passed upstream unmetered; a ticket is good only
for the method and path it was issued for; the relay socket is 0660."""
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid

import pytest

import fcgi

from stack import RELAY, Stack, wait_for

CHAT = [{"role": "user", "content": "Why is the sky blue?"}]

# raw path -> the path it means
SAME = {
    "/api/./chat": "/api/chat",
    "/api/tags/../chat": "/api/chat",
    "/api/chat/.": "/api/chat",
    "/api/chat/": "/api/chat",
    "//api//chat": "/api/chat",
    "/api/%63hat": "/api/chat",
    "/api/%2e/chat": "/api/chat",
    "/api/x/%2E%2E/chat": "/api/chat",
    "/api/api/./chat": "/api/chat",
    "/v1/./chat/completions": "/v1/chat/completions",
    "/v1//chat/completions/": "/v1/chat/completions",
    "/v1/models/../chat/completions": "/v1/chat/completions",
}

# paths no normalisation makes safe: a 400, from tollgate or the server
REFUSED = ["/../api/chat", "/api/../../api/chat", "/%2e%2e/api/chat", "/api%2Fchat",
           "/api/chat%2F", "/api/chat%00", "/api/%zzchat", "/api/chat%25", "/api/chat%3F",
           "/api/chat%C3%A9", "/v1/chat%2Fcompletions"]


@pytest.fixture(scope="module")
def stack(db, web):
    s = Stack(db, web=web, name=f"paths-{web}")
    s.start()
    yield s
    s.stop()


def new_key(stack, *flags):
    name = "k-" + uuid.uuid4().hex[:10]
    key = stack.tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]
    return name, {"Authorization": f"Bearer {key}"}


def body_for(path, model="llama3"):
    if path.startswith("/v1/"):
        return {"model": model, "messages": CHAT}
    return {"model": model, "messages": CHAT, "stream": False}


def events(stack, name):
    return [json.loads(r[0]) for r in stack.db.rows(
        "SELECT row_to_json(e) FROM usage_events e JOIN api_keys k ON k.id = e.key_id "
        f"WHERE k.name = '{name}' ORDER BY e.id")]


def reservations(stack, name):
    return stack.db.value("SELECT count(*) FROM reservations r JOIN api_keys k ON k.id = r.key_id "
                          f"WHERE k.name = '{name}'")


def show(stack, name):
    return json.loads(stack.tg.ok("key", "show", name, "--json").stdout)


def settled(stack, name):
    return wait_for(lambda: (lambda k: k if k["open_reservations"] == 0 else None)(show(stack, name)),
                    10, 0.1, f"key {name} to settle")


def fake_count(stack):
    return len(stack.fake_requests())


def assert_refused_400(stack, r, raw):
    """tollgate's 400 in the family's shape, or the web server's own
    refusal before tollgate saw the path: 400 (Apache for "..", nginx for
    ".." and %00, lighttpd for %00, Caddy and nginx for %zz) or Apache's
    404 for an encoded '/' (AllowEncodedSlashes Off)."""
    assert r.status in (400, 404), (raw, r)
    if not r.headers.get("content-type", "").startswith("application/json"):
        assert stack.web != "caddy" or r.body == b"400 Bad Request", (raw, r)
        return
    assert r.status == 400, (raw, r)
    err = r.json()["error"]
    if raw.startswith("/v1/"):
        assert err["code"] == "invalid_path" and err["type"] == "invalid_request_error", (raw, r)
        err = err["message"]
    assert err.startswith("The request path "), (raw, r)


@pytest.mark.parametrize("raw", SAME)
def test_a_path_is_metered_as_the_path_it_means(stack, raw):
    name, auth = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", raw, body_for(raw), auth)
    recs = stack.fake_requests()[n0:]
    assert r.status == 200, (raw, r)
    want = SAME[raw]
    assert [(x["method"], x["path"]) for x in recs] == [("POST", want)], (raw, recs)
    k = settled(stack, name)
    e = events(stack, name)
    assert [(x["endpoint"], x["status"]) for x in e] == [(want, "ok")], e
    assert e[0]["prompt_tokens"] > 0 and e[0]["completion_tokens"] == 8, e
    assert k["tokens_today"] == e[0]["prompt_tokens"] + 8, k


@pytest.mark.parametrize("raw", ["/api/./chat", "/api/tags/../chat", "//api//chat", "/api/%63hat",
                                 "/v1/./chat/completions"])
def test_the_policy_applies_to_every_spelling(stack, raw):
    _, locked = new_key(stack, "--models", "llama3")
    _, one = new_key(stack, "--requests-day", "1")
    _, spent = new_key(stack, "--tokens-day", "0")
    n0 = fake_count(stack)
    r = stack.http("POST", raw, body_for(raw, "qwen2.5:7b"), locked)
    assert r.status == 403 and b"model" in r.body, (raw, r)
    assert stack.http("POST", SAME[raw], body_for(SAME[raw]), one).status == 200
    n1 = fake_count(stack)
    for auth in (one, spent):
        r = stack.http("POST", raw, body_for(raw), auth)
        assert r.status == 429, (raw, r)
    assert fake_count(stack) == n1 == n0 + 1, "a request over its limit reached the upstream"


def test_passthrough_unknown_does_not_unmeter_a_spelling(stack):
    """passthrough_unknown lets unknown paths through for any key: a dot
    segment must not make /api/chat one of them."""
    name, spent = new_key(stack, "--tokens-day", "0")
    assert stack.http("POST", "/api/chat", body_for("/api/chat"), spent).status == 429
    stack.stop_process("tollgate-authz")
    stack.start_program("tollgate-authz", passthrough_unknown="yes")
    try:
        n0 = fake_count(stack)
        for raw in ("/api/./chat", "/api/tags/../chat", "//api//chat", "/api/%63hat", "/api/chat/."):
            r = stack.http("POST", raw, body_for(raw, "qwen2.5:7b"), spent)
            assert r.status in (400, 429), (raw, r)
        assert fake_count(stack) == n0
    finally:
        stack.stop_process("tollgate-authz")
        stack.start_program("tollgate-authz")
    assert events(stack, name) == []


@pytest.mark.parametrize("raw", REFUSED)
def test_a_path_that_does_not_normalise_is_a_400(stack, raw):
    name, auth = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", raw, body_for(raw), auth)
    assert_refused_400(stack, r, raw)
    assert fake_count(stack) == n0, (raw, stack.fake_requests()[n0:])
    assert reservations(stack, name) == "0", raw


def test_tollgate_says_why_a_path_is_refused(stack):
    """A path every server passes on as it is: tollgate's own 400, in each
    family's shape, from the authorizer before any reservation."""
    name, auth = new_key(stack)
    n0 = fake_count(stack)
    r = stack.http("POST", "/api/chat%C3%A9", body_for("/api/chat"), auth)
    assert r.status == 400 and r.headers["content-type"].startswith("application/json"), r
    assert "not allowed" in r.json()["error"], r
    r = stack.http("POST", "/v1/chat%C3%A9", body_for("/v1/chat"), auth)
    assert r.status == 400, r
    assert r.json()["error"]["code"] == "invalid_path", r
    assert r.json()["error"]["type"] == "invalid_request_error", r
    assert fake_count(stack) == n0 and reservations(stack, name) == "0"


def test_a_path_climbing_out_of_a_model_name_is_not_the_model(stack):
    """/v1/models/.. is /v1: not a model read (free for any key) but a path
    tollgate does not know (admin keys only), and it goes upstream as /v1."""
    _, ordinary = new_key(stack)
    _, admin = new_key(stack, "--scope", "admin")
    n0 = fake_count(stack)
    r = stack.http("GET", "/v1/models/..", headers=ordinary)
    assert r.status in (403, 404), r
    assert fake_count(stack) == n0
    r = stack.http("GET", "/v1/models/..", headers=admin)
    recs = stack.fake_requests()[n0:]
    assert [x["path"] for x in recs] in ([], ["/v1"]), recs


# ---- tickets are for one request -------------------------------------------

def authorize(stack, auth, method, path):
    """tollgate-authz asked directly, as mod_authnz_fcgi asks it."""
    params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "QUERY_STRING": "",
              "HTTP_AUTHORIZATION": auth["Authorization"], "REMOTE_ADDR": "127.0.0.1",
              "SERVER_PROTOCOL": "HTTP/1.1", "FCGI_APACHE_ROLE": "AUTHENTICATOR"}
    r = fcgi.request(stack.authz_addr, params, role=fcgi.AUTHORIZER, send_stdin=False)
    assert r.status == 200, r
    return r.header("Variable-TOLLGATE_TICKET")


def relay(stack, ticket, method, path, body=b""):
    params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "QUERY_STRING": "",
              "TOLLGATE_TICKET": ticket, "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
              "HTTP_HOST": "127.0.0.1"}
    if body:
        params.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    return fcgi.request(stack.relay_sock, params, stdin=body)


def test_a_ticket_is_refused_for_another_method_or_path(stack):
    _, admin = new_key(stack, "--scope", "admin")
    ticket = authorize(stack, admin, "GET", "/api/tags")
    n0 = fake_count(stack)
    chat = json.dumps(body_for("/api/chat")).encode()
    for method, path, body in [("DELETE", "/api/delete", b'{"model":"llama3"}'),
                               ("POST", "/api/chat", chat), ("POST", "/api/tags", b""),
                               ("GET", "/api/ps", b""), ("GET", "/api/tags/x", b"")]:
        r = relay(stack, ticket, method, path, body)
        assert r.status == 403, (method, path, r)
        assert json.loads(r.body)["error"].startswith("Forbidden"), r
    assert fake_count(stack) == n0, stack.fake_requests()[n0:]
    # the same ticket, for what it was issued for, and spelled another way
    r = relay(stack, ticket, "GET", "/api/./tags")
    assert r.status == 200 and "models" in json.loads(r.body), r
    assert [x["path"] for x in stack.fake_requests()[n0:]] == ["/api/tags"]


def test_a_ticket_for_a_body_key_request_is_for_its_path_too(stack):
    """The authorizer's keyless ticket (accept_body_key) is bound as well."""
    stack.stop_process("tollgate-authz")
    stack.start_program("tollgate-authz", accept_body_key="yes")
    try:
        params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/embed", "QUERY_STRING": "",
                  "REMOTE_ADDR": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1"}
        r = fcgi.request(stack.authz_addr, params, role=fcgi.AUTHORIZER, send_stdin=False)
        assert r.status == 200, r
        ticket = r.header("Variable-TOLLGATE_TICKET")
    finally:
        stack.stop_process("tollgate-authz")
        stack.start_program("tollgate-authz")
    n0 = fake_count(stack)
    log = stack.dir / "relay.log"
    size = log.stat().st_size
    r = relay(stack, ticket, "POST", "/api/chat", json.dumps(body_for("/api/chat")).encode())
    assert r.status == 403, r
    assert fake_count(stack) == n0
    with open(log, "rb") as f:
        f.seek(size)
        assert b"signed for another method or path" in f.read()


# ---- the relay socket --------------------------------------------------------

CONNECT = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print('ok')"


def connect_as(uid, gid, path):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                           sys.executable, "-c", CONNECT, path], capture_output=True, text=True)


def test_the_relay_socket_is_for_the_web_server_group_only(stack):
    st = os.stat(stack.relay_sock)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    if os.getuid() != 0:
        pytest.skip("connecting as other users needs root (CI runs as root)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import grp
    import pwd
    nogroup = grp.getgrnam("nogroup").gr_gid
    assert st.st_gid == nogroup  # socket_group = nogroup (stack.py)
    # the web servers' workers: nobody in nogroup
    r = connect_as(pwd.getpwnam("nobody").pw_uid, nogroup, stack.relay_sock)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r
    # anyone else: refused by the kernel
    r = connect_as(12345, 12345, stack.relay_sock)
    assert r.returncode != 0 and "PermissionError" in r.stderr, r


def test_a_socket_group_that_does_not_exist_stops_the_relay(stack):
    settings = dict(line.split(" = ", 1) for line in stack.tg.conf.read_text().splitlines())
    sock = stack.dir / "other.sock"
    settings.update(relay_listen=str(sock), socket_group="no-such-group-tg")
    conf = stack.dir / "bad-group.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    r = subprocess.run([RELAY, "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r
    assert "socket_group 'no-such-group-tg': no such group" in r.stderr, r
    assert not sock.exists()
