"""Slow clients (issue 19, points 3 and 4), under every web server: while 64
connections send their bodies or their headers a little at a time, other
keys' requests still answer within 2 s. Where the web server streams bodies
to the relay (Apache), the relay ends a slow body with 408 after
body_timeout and refunds it, and answers 429 at once past
body_reads_per_key (or body_reads_keyless); the other servers read the body
before they reach the relay. Apache, nginx and Caddy end slow headers on
their own deadlines (examples/<server>). The relay's own part is also
checked directly over FastCGI: the family shape, the refund, and a thread
that timed out serves its next request."""
import json
import select
import socket
import struct
import threading
import time
import uuid

import pytest

import fcgi
from conftest import INVARIANTS
from stack import Stack, wait_for

SLOW = 64
BODY_TIMEOUT = 3
CONF = {"threads": "16", "body_timeout": str(BODY_TIMEOUT), "body_reads_per_key": "4",
        "body_reads_keyless": "4", "accept_body_key": "yes", "reservation_ttl": "10",
        "claim_ttl": "10"}
CHAT = {"model": "llama3", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
# What the web servers allow a request's headers (examples/<server>; Caddy:
# the global option script/web.sh renders): 10 s, Apache up to 20 s.
HEADER_DEADLINE = 20


@pytest.fixture(scope="module")
def stack(db, web):
    with Stack(db, web=web, name=f"slow-{web}", conf=CONF) as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    yield
    assert stack.db.rows(INVARIANTS) == []


def new_key(stack):
    out = stack.tg.ok("key", "create", "--name", "s-" + uuid.uuid4().hex[:8]).stdout
    return out.splitlines()[-1], stack.db.value("SELECT max(id) FROM api_keys")


def reserved(stack, key_id):
    return int(stack.db.value(f"SELECT coalesce(sum(tokens_reserved), 0) FROM quota_usage "
                              f"WHERE key_id = {key_id}"))


class Drip:
    """`n` slow clients: each connects, sends head(i), then `piece` every
    `every` seconds until the server answers or closes. answers[i] is the
    first data received (b"" when closed without an answer), None while the
    connection is still open; ended[i] when that happened."""

    def __init__(self, port, head, piece, n=SLOW, every=1.5):
        self.socks, self.answers, self.ended = [], [None] * n, [None] * n
        self.t0 = time.monotonic()
        self.stopping = threading.Event()
        try:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                self.socks.append(s)
                s.sendall(head(i))
        except BaseException:
            self.close()
            raise
        self.thread = threading.Thread(target=self._run, args=(piece, every), daemon=True)
        self.thread.start()

    def _end(self, i, data):
        self.answers[i] = data
        self.ended[i] = time.monotonic() - self.t0

    def _poll(self):
        live = [s for i, s in enumerate(self.socks) if self.answers[i] is None]
        for s in select.select(live, [], [], 0)[0] if live else []:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            self._end(self.socks.index(s), data)

    def _run(self, piece, every):
        last = 0.0
        while not self.stopping.wait(0.1):
            self._poll()
            if time.monotonic() - last < every:
                continue
            last = time.monotonic()
            for i, s in enumerate(self.socks):
                if self.answers[i] is None:
                    try:
                        s.send(piece)
                    except OSError:
                        self._end(i, b"")

    def statuses(self):
        return [int(a.split()[1]) if a and a.startswith(b"HTTP/") else a for a in self.answers]

    def close(self):
        self.stopping.set()
        if getattr(self, "thread", None) is not None:
            self.thread.join(5)
        for s in self.socks:
            s.close()


def slow_body_head(stack, key=None):
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    req = (f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
           "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{").encode()
    return lambda i: req


def normal_requests_stay_fast(stack, seconds=6):
    """Requests of another key while the slow ones hold on: every one answers
    within the issue's 2 s."""
    if stack.web == "caddy" and getattr(stack, "slow_bodies", False):
        # forward_auth keeps tollgate-authz's FastCGI connection open while
        # the slow request runs, and libfcgi's close waits up to 2 s for it:
        # 16 authorizer threads serve 64 slow requests in waves of 2 s.
        pytest.xfail("Caddy: forward_auth's slow bodies hold tollgate-authz's "
                     "threads in libfcgi's close")
    key, _ = new_key(stack)
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        r = stack.http("POST", "/api/chat", CHAT, {"Authorization": "Bearer " + key}, timeout=30)
        times.append(round(time.monotonic() - t, 2))
        assert r.status == 200, (r, times)
        time.sleep(0.5)
    assert max(times) < 2, times
    return times


def apache_answers_every_slow_body(drip):
    wait_for(lambda: None not in drip.answers, timeout=BODY_TIMEOUT + 10,
             what="an answer to every slow body")
    assert set(drip.statuses()) <= {408, 429, 503}, drip.statuses()


def test_slow_bodies_do_not_starve_other_keys(stack):
    key, key_id = new_key(stack)
    n0 = len(stack.fake_requests())
    drip = Drip(stack.port, slow_body_head(stack, key), b" ")
    stack.slow_bodies = True
    try:
        normal = len(normal_requests_stay_fast(stack))
        if stack.web == "apache":
            # Apache streams the body to the relay: four wait and end with 408
            # after body_timeout, the other 60 get 429 at once, and the relay
            # stops reading them. Apache reads the client's whole body before
            # it reads the relay's answer, so its clients get its own 503.
            apache_answers_every_slow_body(drip)
            events = stack.db.rows(f"SELECT status, count(*) FROM usage_events WHERE key_id = {key_id} "
                                   "GROUP BY status ORDER BY status")
            assert events == [["body_busy", str(SLOW - 4)], ["body_timeout", "4"]], events
        else:
            # nginx, lighttpd and Caddy read bodies before the relay sees them.
            assert drip.answers.count(None) == SLOW, drip.statuses()
    finally:
        drip.close()
    assert len(stack.fake_requests()) == n0 + normal  # none of the slow ones
    # What the authorizer reserved for them comes back: refunded by the relay,
    # or, for bodies that never reached it, reclaimed once expired.
    wait_for(lambda: stack.tg.ok("sweep") and reserved(stack, key_id) == 0, timeout=40,
             interval=1, what="the slow key's reservations released")


def test_slow_bodies_with_keys_in_them_do_not_starve_other_keys(stack):
    drip = Drip(stack.port, slow_body_head(stack), b" ")
    stack.slow_bodies = True
    try:
        normal_requests_stay_fast(stack)
        if stack.web == "apache":
            apache_answers_every_slow_body(drip)
        else:
            assert drip.answers.count(None) == SLOW, drip.statuses()
    finally:
        drip.close()


def test_slow_headers_do_not_stop_the_server(stack):
    head = lambda i: f"GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: 1\r\n".encode()
    drip = Drip(stack.port, head, b"X-More: 1\r\n", every=2)
    stack.slow_bodies = False
    try:
        normal_requests_stay_fast(stack)
        if stack.web == "lighttpd":
            # lighttpd reads headers without a thread per connection and has
            # no deadline for a whole header, only server.max-read-idle.
            return
        wait_for(lambda: None not in drip.answers, timeout=HEADER_DEADLINE + 5,
                 what="the server to end every slow header")
        assert max(drip.ended) <= HEADER_DEADLINE + 3, drip.ended
        assert all(s in (408, b"") for s in drip.statuses()), drip.statuses()
    finally:
        drip.close()


# ---- the relay alone, over FastCGI -------------------------------------------

def _params(path, extra):
    p = {"REQUEST_METHOD": "POST", "REQUEST_URI": path, "SCRIPT_NAME": path,
         "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
         "HTTP_HOST": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "100000"}
    p.update(extra)
    return p


def ticket(stack, key, path):
    r = fcgi.request(stack.authz_addr, _params(path, {
        "HTTP_AUTHORIZATION": f"Bearer {key}", "FCGI_APACHE_ROLE": "AUTHENTICATOR"}),
        role=fcgi.AUTHORIZER, send_stdin=False)
    assert r.status == 200, r
    return r.header("Variable-TOLLGATE_TICKET")


def begin(stack, params, keep=False):
    """A request to the relay whose body has not come yet."""
    s = fcgi.connect(stack.relay_sock, timeout=BODY_TIMEOUT + 15)
    s.sendall(fcgi._record(fcgi.BEGIN_REQUEST, struct.pack("!HB5x", fcgi.RESPONDER, 1 if keep else 0))
              + fcgi._record(fcgi.PARAMS, fcgi.encode_params(params)) + fcgi._record(fcgi.PARAMS)
              + fcgi._record(fcgi.STDIN, b"{"))
    return s


def answer(s):
    """The relay's answer on s, up to its END_REQUEST record."""
    out, buf = b"", b""
    while True:
        chunk = s.recv(65536)
        assert chunk, "the relay closed the connection without ending the request"
        buf += chunk
        while len(buf) >= 8:
            _v, rtype, _rid, clen, plen = struct.unpack("!BBHHBx", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            content, buf = buf[8:8 + clen], buf[8 + clen + plen:]
            if rtype == fcgi.STDOUT:
                out += content
            elif rtype == fcgi.END_REQUEST:
                return fcgi.Response(out, b"", 0)


def only_once(stack):
    if stack.web != "apache":
        pytest.skip("the relay alone, without a web server: checked once")


def test_a_slow_body_gets_408_in_the_family_shape_and_is_refunded(stack):
    only_once(stack)
    key, key_id = new_key(stack)
    path = "/v1/chat/completions"
    s = begin(stack, _params(path, {"TOLLGATE_TICKET": ticket(stack, key, path)}))
    try:
        r = answer(s)
    finally:
        s.close()
    assert r.status == 408, r
    err = json.loads(r.body)["error"]
    assert err["code"] == "request_timeout" and err["type"] == "invalid_request_error", err
    assert reserved(stack, key_id) == 0
    assert stack.db.rows(f"SELECT status, prompt_tokens + completion_tokens FROM usage_events "
                         f"WHERE key_id = {key_id}") == [["body_timeout", "0"]]


def test_past_body_reads_per_key_the_relay_answers_429_at_once(stack):
    only_once(stack)
    key, key_id = new_key(stack)
    held = [begin(stack, _params("/api/chat", {"TOLLGATE_TICKET": ticket(stack, key, "/api/chat")}))
            for _ in range(4)]
    try:
        time.sleep(0.5)  # the four are reading
        t = time.monotonic()
        s = begin(stack, _params("/api/chat", {"TOLLGATE_TICKET": ticket(stack, key, "/api/chat")}))
        try:
            r = answer(s)
        finally:
            s.close()
        assert time.monotonic() - t < 2  # at once, not after body_timeout
        assert r.status == 429 and r.header("Retry-After") == "1", r
        assert "at once" in json.loads(r.body)["error"]
        assert [answer(h).status for h in held] == [408] * 4
    finally:
        for h in held:
            h.close()
    assert reserved(stack, key_id) == 0


def test_a_thread_that_timed_out_serves_its_next_request(stack):
    only_once(stack)
    # As many slow bodies as threads (four keys, four each): every thread
    # times out once, then serves again.
    slow = []
    try:
        for _ in range(4):
            k, _ = new_key(stack)
            slow += [begin(stack, _params("/api/chat", {"TOLLGATE_TICKET": ticket(stack, k, "/api/chat")}))
                     for _ in range(4)]
        assert [answer(s).status for s in slow] == [408] * 16
    finally:
        for s in slow:
            s.close()
    key, _ = new_key(stack)
    for _ in range(20):
        r = stack.http("POST", "/api/chat", CHAT, {"Authorization": "Bearer " + key}, timeout=10)
        assert r.status == 200, r
    # A kept connection (FCGI_KEEP_CONN) does not keep the receive timeout:
    # its next request may wait longer for its body than body_timeout.
    body = json.dumps(CHAT).encode()
    s = fcgi.connect(stack.relay_sock, timeout=30)
    try:
        for wait in (0, BODY_TIMEOUT + 1):
            params = _params("/api/chat", {"TOLLGATE_TICKET": ticket(stack, key, "/api/chat"),
                                           "CONTENT_LENGTH": str(len(body))})
            s.sendall(fcgi._record(fcgi.BEGIN_REQUEST, struct.pack("!HB5x", fcgi.RESPONDER, 1)))
            time.sleep(wait)  # between requests: the relay waits in FCGX_Accept_r
            s.sendall(fcgi._record(fcgi.PARAMS, fcgi.encode_params(params)) + fcgi._record(fcgi.PARAMS)
                      + fcgi._record(fcgi.STDIN, body) + fcgi._record(fcgi.STDIN))
            assert answer(s).status == 200
    finally:
        s.close()
