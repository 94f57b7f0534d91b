"""Several upstreams (issue 10): the least-loaded choice, failover before
the first byte, upstream keys with their penalty box, the settings table's
list taking over without a restart, an error object after the first byte,
doubled prefixes, /health and /metrics.

Three (sometimes four) tests/fake-ollama processes of this module's own
play the upstreams; one is started and stopped again, so its address
refuses connections. The upstream list of each test comes from the
settings table (upstream_url), which the relay reads with every claim."""
import json
import math
import os
import re
import select
import signal
import subprocess
import uuid

import pytest

from conftest import INVARIANTS
from stack import FAKE, START_TIMEOUT, WEB_SERVERS, Stack, wait_for

GEN = {"model": "llama3", "prompt": "hi", "stream": False}
CHAT = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
BAD_KEY = "bad-" + uuid.uuid4().hex
LIMITED_KEY = "limited-" + uuid.uuid4().hex
GOOD_KEY = "good-" + uuid.uuid4().hex


class Fake:
    """One fake-ollama, stopped by PID."""

    def __init__(self, tmp, name, *args):
        self.log = open(tmp / f"{name}.log", "ab")
        self.p = subprocess.Popen([FAKE, "--port", "0", *args], stdout=subprocess.PIPE,
                                  stderr=self.log, stdin=subprocess.DEVNULL, start_new_session=True)
        r, _, _ = select.select([self.p.stdout], [], [], START_TIMEOUT)
        line = self.p.stdout.readline().decode() if r else ""
        assert line.startswith("listening "), line
        self.p.stdout.close()
        self.port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self, stack):
        r = stack.http("GET", "/_fake/requests", port=self.port)
        assert r.status == 200
        return [x for x in r.json() if not x["path"].startswith("/_fake")]

    def reset(self, stack):
        assert stack.http("POST", "/_fake/reset", port=self.port).status == 200

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fakes")
    made = {}
    try:
        made["a"] = Fake(tmp, "a")
        made["b"] = Fake(tmp, "b")
        made["dead"] = Fake(tmp, "dead")
        made["dead"].stop()  # its port now refuses connections
        made["keyed"] = Fake(tmp, "keyed", "--require-key", LIMITED_KEY, "--require-key", GOOD_KEY,
                             "--limit-key", LIMITED_KEY, "--retry-after", "120")
        (tmp / "keys").write_text(f"# upstream keys\n{BAD_KEY}\n{LIMITED_KEY}\n\n{GOOD_KEY}\n")
        made["key_file"] = str(tmp / "keys")
        yield made
    finally:
        for f in made.values():
            if isinstance(f, Fake):
                f.stop()


@pytest.fixture(scope="module")
def stack(db, fakes):
    # The file's list: fake a alone; tests put theirs in the settings table.
    with Stack(db, fake=False, upstream=[fakes["a"].url], name="upstreams", every_web=True) as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack, fakes):
    for f in ("a", "b", "keyed"):
        fakes[f].reset(stack)
    yield
    assert stack.db.rows(INVARIANTS) == []


def use(stack, text):
    stack.db.rows(f"UPDATE settings SET value = '{text}' WHERE name = 'upstream_url'")


def new_key(stack, *flags):
    key = stack.tg.ok("key", "create", "--name", "u-" + uuid.uuid4().hex[:10], *flags)
    return {"Authorization": "Bearer " + key.stdout.splitlines()[-1]}


def generate(stack, key, n):
    for _ in range(n):
        r = stack.http("POST", "/api/generate", GEN, key)
        assert r.status == 200, r


# ---- choice and failover ----------------------------------------------------

def test_least_loaded_goes_to_the_idle_upstream(stack, fakes):
    use(stack, f"{fakes['a'].url},{fakes['b'].url}")
    key = new_key(stack)
    # A stream that keeps one upstream busy (a token every 0.2 s).
    slow = stack.stream("POST", "/api/chat", {"model": "slow", "messages": CHAT["messages"],
                                              "options": {"fake_tokens": 10000}}, key)
    try:
        assert slow.status == 200
        next(slow.lines())  # it is running (fake-ollama records it at its end)
        generate(stack, key, 6)
    finally:
        slow.close()
    # Each fake's list waits for what it has in flight: the slow stream ends
    # once the hang-up has reached its upstream.
    got = [[r["path"] for r in fakes[f].requests(stack)] for f in ("a", "b")]
    assert sorted(got) == [["/api/chat"], ["/api/generate"] * 6], got


def tokens_2h(stack, admin):
    r = stack.http("GET", "/health/upstreams", headers=admin)
    assert r.status == 200, r
    return {u["url"]: u["tokens_2h"] for u in r.json()["upstreams"]}


def test_idle_upstreams_share_by_tokens(stack, fakes):
    use(stack, f"{fakes['a'].url} weight=5,{fakes['b'].url}")
    admin = new_key(stack, "--scope", "admin")
    generate(stack, new_key(stack), 1)
    before = tokens_2h(stack, admin)
    assert abs(before[fakes["a"].url] - before[fakes["b"].url]) < 10 * 18
    generate(stack, new_key(stack), 10)
    # One request at a time: in flight ties at 0, so the one with fewer
    # tokens in the last two hours takes each (18 here) until they are even.
    after = tokens_2h(stack, admin)
    assert abs(after[fakes["a"].url] - after[fakes["b"].url]) <= 18, after
    assert sum(after.values()) == sum(before.values()) + 10 * 18


def test_models_decide_who_may_serve(stack, fakes):
    use(stack, f"{fakes['a'].url} models=qwen2.5:*,{fakes['b'].url} models=llama3")
    generate(stack, new_key(stack), 3)
    assert len(fakes["b"].requests(stack)) == 3
    assert fakes["a"].requests(stack) == []


def test_failover_when_an_upstream_is_down(stack, fakes):
    use(stack, f"{fakes['dead'].url}\n{fakes['a'].url}")
    generate(stack, new_key(stack), 5)
    assert len(fakes["a"].requests(stack)) == 5
    assert f"upstream {fakes['dead'].url}/api/generate: " in stack.log_text()


def test_hundred_requests_two_live_one_stopped(stack, fakes):
    """Acceptance 2: every request succeeds, spread over the live two."""
    use(stack, f"{fakes['a'].url},{fakes['dead'].url},{fakes['b'].url}")
    key = new_key(stack)
    for i in range(100):
        if i % 2:
            r = stack.http("POST", "/api/generate", GEN, key)
        else:
            r = stack.http("POST", "/v1/chat/completions", dict(CHAT, stream=True), key)
        assert r.status == 200, (i, r)
    a, b = len(fakes["a"].requests(stack)), len(fakes["b"].requests(stack))
    assert a + b == 100 and a >= 25 and b >= 25, (a, b)


def test_busy_everywhere_gives_the_last_answer(stack, fakes):
    use(stack, f"{fakes['a'].url},{fakes['b'].url}")
    r = stack.http("POST", "/api/generate", {"model": "busy", "prompt": "hi"}, new_key(stack))
    assert r.status == 503
    assert "server busy" in r.json()["error"]
    # 503 is a reason to try the other one.
    assert len(fakes["a"].requests(stack)) == 1 and len(fakes["b"].requests(stack)) == 1


# ---- upstream keys ------------------------------------------------------------

def test_keys_rotate_on_401_and_429_into_the_penalty_box(stack, fakes):
    use(stack, f"{fakes['keyed'].url} key_file={fakes['key_file']}")
    key = new_key(stack)
    admin = new_key(stack, "--scope", "admin")
    r = stack.http("POST", "/api/generate", GEN, key)
    assert r.status == 200, r
    seen = [(x["headers"].get("authorization"), x["status"]) for x in fakes["keyed"].requests(stack)]
    assert seen == [(f"Bearer {BAD_KEY}", 401), (f"Bearer {LIMITED_KEY}", 429), (f"Bearer {GOOD_KEY}", 200)]
    # The boxed keys stay out: the next request goes straight to the good one.
    fakes["keyed"].reset(stack)
    generate(stack, key, 2)
    assert {x["headers"].get("authorization") for x in fakes["keyed"].requests(stack)} == {f"Bearer {GOOD_KEY}"}
    h = stack.http("GET", "/health/upstreams", headers=admin)
    assert h.status == 200, h
    (up,) = h.json()["upstreams"]
    limited = [k for k in up["keys"] if LIMITED_KEY.startswith(k["key"].rstrip("."))]
    assert len(up["keys"]) == 3 and len(limited) == 1
    assert limited[0]["state"] == "penalty" and 60 < limited[0]["penalty_seconds"] <= 120
    assert limited[0]["rejections"] == 1
    for secret in (BAD_KEY, LIMITED_KEY, GOOD_KEY):
        assert secret not in h.body.decode() and secret not in stack.log_text()


def test_health_upstreams_wants_an_admin_key(stack):
    assert stack.http("GET", "/health/upstreams").status == 401
    assert stack.http("GET", "/health/upstreams", headers=new_key(stack)).status == 403


# ---- the settings table ----------------------------------------------------------

def test_the_table_replaces_the_file_and_empty_restores_it(stack, fakes):
    key = new_key(stack)
    use(stack, fakes["b"].url)
    generate(stack, key, 2)
    use(stack, "")
    generate(stack, key, 3)
    assert len(fakes["b"].requests(stack)) == 2 and len(fakes["a"].requests(stack)) == 3


# ---- after the first byte ----------------------------------------------------------

@pytest.mark.parametrize("path,body,sse", [
    ("/api/chat", {"model": "slow", "messages": CHAT["messages"], "options": {"fake_tokens": 10000}}, False),
    ("/v1/chat/completions", {"model": "slow", "messages": CHAT["messages"], "stream": True,
                              "fake_tokens": 10000}, True),
])
def test_a_stream_cut_upstream_ends_with_an_error_object(stack, fakes, tmp_path, path, body, sse):
    cut = Fake(tmp_path, "cut")
    try:
        use(stack, cut.url)
        key = new_key(stack)
        s = stack.stream("POST", path, body, key)
        assert s.status == 200
        lines = s.lines(b"\n\n" if sse else b"\n")
        first = [next(lines)[1], next(lines)[1]]
        cut.stop()  # mid-stream
        rest = [rec for _, rec in lines]
        s.close()
    finally:
        cut.stop()
    last = rest[-1].decode()
    if sse:
        assert last.startswith("data: ")
        err = json.loads(last[6:])["error"]
        assert err["type"] == "api_error" and err["message"]
    else:
        assert set(json.loads(last)) == {"error"}
    assert first
    status = stack.db.value("SELECT status FROM usage_events ORDER BY id DESC LIMIT 1")
    assert status == "truncated"
    completion = int(stack.db.value("SELECT completion_tokens FROM usage_events ORDER BY id DESC LIMIT 1"))
    assert completion >= 1


# ---- paths ---------------------------------------------------------------------------

def test_doubled_prefixes_under_every_server(stack, fakes):
    use(stack, fakes["a"].url)
    key = new_key(stack)
    for web, port in stack.ports.items():
        r = stack.http("POST", "/api/api/generate", GEN, key, port=port)
        assert r.status == 200, (web, r)
        r = stack.http("GET", "/v1/v1/models", None, key, port=port)
        assert r.status == 200 and r.json()["object"] == "list", (web, r)
    assert {x["path"] for x in fakes["a"].requests(stack)} == {"/api/generate", "/v1/models"}


def test_health_and_metrics_under_every_server(stack, fakes):
    use(stack, f"{fakes['a'].url},{fakes['b'].url}")
    admin = new_key(stack, "--scope", "admin")
    for web, port in stack.ports.items():
        r = stack.http("GET", "/health", port=port)
        assert r.status == 200, (web, r)
        doc = r.json()
        assert doc["status"] == "ok" and doc["database"] == "up", (web, doc)
        assert [u["state"] for u in doc["upstreams"]] == ["up", "up"]
        assert fakes["a"].url not in r.body.decode()  # addresses are for admins
        # The admin key reaches the relay through each server.
        r = stack.http("GET", "/health/upstreams", headers=admin, port=port)
        assert r.status == 200 and r.json()["upstreams"][0]["url"] == fakes["a"].url, (web, r)
        assert stack.http("GET", "/health/upstreams", port=port).status == 401, web
        r = stack.http("GET", "/metrics", port=port)
        assert r.status == 200 and b"# TYPE tollgate_requests_total counter" in r.body, (web, r)
    assert set(stack.ports) == set(WEB_SERVERS)


def test_health_is_503_without_a_live_upstream(stack, fakes):
    use(stack, fakes["dead"].url)
    r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(stack.http("GET", "/health")),
                 timeout=30, what="/health to see the dead upstream")
    assert r.json()["status"] == "unavailable"
    assert r.json()["upstreams"] == [{"upstream": 1, "state": "down"}]


def test_health_is_503_without_the_database(stack, fakes):
    use(stack, fakes["a"].url)
    stack.stop_process("tollgate-relay")
    try:
        stack.start_program("tollgate-relay", db="host=127.0.0.1 port=9 dbname=none connect_timeout=1")
        r = stack.http("GET", "/health")
        assert r.status == 503 and r.json()["database"] == "down", r
    finally:
        stack.stop_process("tollgate-relay")
        stack.start_program("tollgate-relay")


# ---- /metrics ---------------------------------------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")


def parse(text):
    """Checks the text format 0.0.4 line by line; returns {name: [(labels, value)]}
    and {family: type}."""
    types, samples = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert re.match(rf"^# HELP {NAME} \S", line), line
        elif line.startswith("# TYPE "):
            m = re.match(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$", line)
            assert m and m.group(1) not in types, line
            types[m.group(1)] = m.group(2)
        else:
            m = SAMPLE.match(line)
            assert m, line
            name, labels, value = m.groups()
            v = float(value)
            assert not math.isnan(v)
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            assert family in types, f"sample before its TYPE: {line}"
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels or ""))
            samples.setdefault(name, []).append((labels, v))
    return samples, types


def check_histogram(samples, name):
    buckets = samples[name + "_bucket"]
    les = [float(l["le"]) for l, _ in buckets]
    assert les == sorted(les) and les[-1] == math.inf
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert counts[-1] == samples[name + "_count"][0][1]
    return counts[-1]


def test_metrics_in_the_text_format(stack, fakes):
    use(stack, f"{fakes['a'].url},{fakes['b'].url}")
    key = new_key(stack)
    kid = str(stack.db.value("SELECT id FROM api_keys ORDER BY id DESC LIMIT 1"))
    r1 = stack.http("GET", "/metrics")
    assert r1.status == 200 and r1.headers["content-type"].startswith("text/plain; version=0.0.4")
    generate(stack, key, 3)
    r2 = stack.http("GET", "/metrics")
    before, types = parse(r1.body.decode())
    after, types2 = parse(r2.body.decode())
    assert types["tollgate_requests_total"] == "counter"
    assert types["tollgate_request_duration_seconds"] == "histogram"
    assert types2 == types
    # Counters only grow.
    for n in ("tollgate_requests_total", "tollgate_tokens_total"):
        old = {tuple(sorted(l.items())): v for l, v in before.get(n, [])}
        new = {tuple(sorted(l.items())): v for l, v in after[n]}
        assert all(new[k] >= v for k, v in old.items())
    ok = {tuple(sorted(l.items())): v for l, v in after["tollgate_requests_total"]}
    assert ok[(("endpoint", "/api/generate"), ("status", "200"))] >= 3
    mine = {l["type"]: v for l, v in after["tollgate_tokens_total"] if l["key_id"] == kid}
    assert mine["prompt"] > 0 and mine["completion"] == 3 * 8
    assert all(l["model"] == "llama3" for l, _ in after["tollgate_tokens_total"]
               if l["key_id"] == kid)
    assert check_histogram(after, "tollgate_request_duration_seconds") >= \
        check_histogram(before, "tollgate_request_duration_seconds") + 3
    check_histogram(after, "tollgate_time_to_first_byte_seconds")
    ups = {l["upstream"]: v for l, v in after["tollgate_upstream_up"]}
    assert ups == {fakes["a"].url: 1, fakes["b"].url: 1}
    assert {l["upstream"] for l, _ in after["tollgate_upstream_in_flight"]} == set(ups)
    attempts = {l["upstream"]: v for l, v in after["tollgate_upstream_attempts_total"]}
    attempts0 = {l["upstream"]: v for l, v in before["tollgate_upstream_attempts_total"]}
    assert sum(attempts.values()) == sum(attempts0.values()) + 3
    assert types["tollgate_upstream_failures_total"] == "counter"
    assert after["tollgate_reservations_open"][0][1] >= 0
    assert after["tollgate_spool_backlog"][0][1] == 0


def test_metrics_name_keys_only_for_an_admin_key(stack, fakes):
    # 127.0.0.1 is on metrics_allow, and so is every local user and process
    # behind the web server: they see keys by id; an admin key sees names.
    use(stack, fakes["a"].url)
    name = "metrics-" + uuid.uuid4().hex[:8]
    key = {"Authorization": "Bearer " +
           stack.tg.ok("key", "create", "--name", name).stdout.splitlines()[-1]}
    kid = str(stack.db.value(f"SELECT id FROM api_keys WHERE name = '{name}'"))
    admin = new_key(stack, "--scope", "admin")
    generate(stack, key, 1)
    for web, port in stack.ports.items():
        r = stack.http("GET", "/metrics", port=port)
        assert r.status == 200, (web, r)
        assert name not in r.body.decode(), web
        tokens = parse(r.body.decode())[0]["tollgate_tokens_total"]
        assert all("key" not in l for l, _ in tokens), (web, tokens)
        assert {l["type"] for l, _ in tokens if l["key_id"] == kid} == {"prompt", "completion"}
        r = stack.http("GET", "/metrics", headers=admin, port=port)
        assert r.status == 200, (web, r)
        tokens = parse(r.body.decode())[0]["tollgate_tokens_total"]
        assert {l["key"] for l, _ in tokens if l["key_id"] == kid} == {name}, (web, tokens)
        # A key that is not an admin's, from an allowed address: ids only.
        r = stack.http("GET", "/metrics", headers=new_key(stack), port=port)
        assert r.status == 200 and name not in r.body.decode(), (web, r)


def test_metrics_outside_metrics_allow_want_an_admin_key(stack):
    stack.stop_process("tollgate-relay")
    try:
        stack.start_program("tollgate-relay", metrics_allow="192.0.2.1, 198.51.100.7")
        assert stack.http("GET", "/metrics").status == 401
        assert stack.http("GET", "/metrics", headers=new_key(stack)).status == 403
        r = stack.http("GET", "/metrics", headers=new_key(stack, "--scope", "admin"))
        assert r.status == 200
        parse(r.body.decode())
    finally:
        stack.stop_process("tollgate-relay")
        stack.start_program("tollgate-relay")
