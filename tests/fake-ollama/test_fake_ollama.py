"""Format checks for tests/fake-ollama/fake-ollama.

Run: /usr/bin/python3 -m pytest tests/fake-ollama -q
"""

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake-ollama")


def start_fake(tmp_path, *extra):
    record = str(tmp_path / "record.jsonl")
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--record", record, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], 5)
    assert ready, "fake-ollama did not start"
    line = proc.stdout.readline().decode()
    assert line.startswith("listening 127.0.0.1:"), line
    return proc, int(line.strip().rsplit(":", 1)[1]), record


def stop_fake(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    proc, port, record = start_fake(tmp_path_factory.mktemp("fake"))
    yield {"port": port, "record": record, "proc": proc}
    stop_fake(proc)


def request(fake, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", fake["port"], timeout=10)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def ndjson(data):
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().split("\n")[:-1]]


def sse_events(data):
    text = data.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    for e in events:
        assert e.startswith("data: ") and "\n" not in e
    return [e[len("data: "):] for e in events]


METRICS = ("total_duration", "load_duration", "prompt_eval_count",
           "prompt_eval_duration", "eval_count", "eval_duration")


# ---- liveness, version, lists -------------------------------------------

def test_root_version_tags_and_models(fake):
    resp, data = request(fake, "GET", "/")
    assert resp.status == 200 and data == b"Ollama is running"
    assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
    resp, data = request(fake, "HEAD", "/")
    assert resp.status == 200 and data == b""
    resp, data = request(fake, "GET", "/api/version")
    assert json.loads(data) == {"version": "0.32.15"}
    assert resp.getheader("Content-Type") == "application/json; charset=utf-8"
    _, data = request(fake, "GET", "/api/tags")
    names = {m["name"] for m in json.loads(data)["models"]}
    assert {"llama3:latest", "qwen2.5:7b", "all-minilm:latest", "slow:latest",
            "fail-mid:latest", "busy:latest", "long:latest", "bytewise:latest"} == names
    _, data = request(fake, "GET", "/v1/models")
    body = json.loads(data)
    assert body["object"] == "list" and {"id", "object", "created", "owned_by"} == set(body["data"][0])
    resp, data = request(fake, "GET", "/v1/models/llama3")
    assert resp.status == 200 and json.loads(data)["id"] == "llama3"
    assert json.loads(data)["owned_by"] == "library"


def test_unknown_path_and_wrong_method(fake):
    resp, data = request(fake, "GET", "/api/nope")
    assert resp.status == 404 and data == b"404 page not found"
    resp, data = request(fake, "GET", "/api/generate")
    assert resp.status == 405 and resp.getheader("Content-Type") == "text/plain"


def test_foreign_host_is_403_empty(fake):
    resp, data = request(fake, "POST", "/api/generate",
                         {"model": "llama3", "prompt": "hi"}, {"Host": "api.example.com"})
    assert resp.status == 403 and data == b""
    resp, _ = request(fake, "GET", "/", headers={"Host": "localhost:11434"})
    assert resp.status == 200


# ---- native generate / chat ---------------------------------------------

def test_generate_stream_ndjson(fake):
    resp, data = request(fake, "POST", "/api/generate",
                         {"model": "llama3", "prompt": "hello world"})   # 11 bytes -> 10 + 2
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "application/x-ndjson"
    assert resp.getheader("Transfer-Encoding") == "chunked"
    lines = ndjson(data)
    assert len(lines) == 9
    for i, line in enumerate(lines[:-1]):
        assert line["response"] == "tok%d " % i and line["done"] is False
        assert "done_reason" not in line and not set(METRICS) & set(line)
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and final["response"] == ""
    assert final["prompt_eval_count"] == 12 and final["eval_count"] == 8
    assert all(final[k] > 0 for k in METRICS)
    assert isinstance(final["context"], list)


def test_generate_stream_false_single_object(fake):
    resp, data = request(fake, "POST", "/api/generate",
                         {"model": "llama3:latest", "system": "abcd", "prompt": "abcd", "stream": False})
    assert resp.status == 200 and resp.getheader("Content-Length") == str(len(data))
    obj = json.loads(data)
    assert obj["response"] == "".join("tok%d " % i for i in range(8))
    assert obj["done"] is True and obj["done_reason"] == "stop"
    assert obj["prompt_eval_count"] == 12 and obj["eval_count"] == 8


def test_chat_num_predict_cap_gives_length(fake):
    resp, data = request(fake, "POST", "/api/chat", {
        "model": "qwen2.5:7b", "options": {"num_predict": 3},
        "messages": [{"role": "system", "content": "abcd"}, {"role": "user", "content": "efgh"}]})
    lines = ndjson(data)
    assert [x["message"]["content"] for x in lines[:-1]] == ["tok0 ", "tok1 ", "tok2 "]
    assert all(x["message"]["role"] == "assistant" for x in lines)
    assert lines[-1]["done_reason"] == "length" and lines[-1]["eval_count"] == 3
    assert lines[-1]["prompt_eval_count"] == 12 and "context" not in lines[-1]


def test_fake_tokens_and_chunked_request_body(fake):
    conn = http.client.HTTPConnection("127.0.0.1", fake["port"], timeout=10)
    body = json.dumps({"model": "llama3", "prompt": "x", "stream": False,
                       "options": {"fake_tokens": 20, "num_predict": 15}}).encode()
    conn.request("POST", "/api/generate", body=iter([body[:10], body[10:]]),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    obj = json.loads(conn.getresponse().read())
    conn.close()
    assert obj["eval_count"] == 15 and obj["done_reason"] == "length"


def test_load_and_unload(fake):
    resp, data = request(fake, "POST", "/api/generate", {"model": "llama3", "prompt": ""})
    assert resp.getheader("Content-Length") == str(len(data))
    obj = json.loads(data)
    assert obj["done"] is True and obj["done_reason"] == "load" and obj["response"] == ""
    assert not set(METRICS) & set(obj)
    _, data = request(fake, "POST", "/api/chat", {"model": "llama3", "messages": [], "keep_alive": 0})
    obj = json.loads(data)
    assert obj["done_reason"] == "unload" and obj["message"] == {"role": "assistant", "content": ""}


def test_body_errors(fake):
    resp, data = request(fake, "POST", "/api/chat", b"")
    assert resp.status == 400 and json.loads(data) == {"error": "missing request body"}
    resp, data = request(fake, "POST", "/api/chat", b"{nope")
    assert resp.status == 400 and isinstance(json.loads(data)["error"], str)
    resp, data = request(fake, "POST", "/api/generate", {"prompt": "x"})
    assert resp.status == 400 and json.loads(data) == {"error": "model is required"}
    resp, data = request(fake, "POST", "/v1/chat/completions", {"model": "llama3", "messages": []})
    err = json.loads(data)["error"]
    assert resp.status == 400 and err["type"] == "invalid_request_error"
    assert err["message"] == "[] is too short - 'messages'" and err["param"] is None and err["code"] is None


def test_unknown_model_native_and_openai(fake):
    resp, data = request(fake, "POST", "/api/generate", {"model": "x", "prompt": "hi"})
    assert resp.status == 404 and json.loads(data) == {"error": "model 'x' not found"}
    resp, data = request(fake, "POST", "/v1/chat/completions",
                         {"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert resp.status == 404
    assert json.loads(data) == {"error": {"message": "model 'x' not found", "type": "not_found_error",
                                          "param": None, "code": None}}


def test_busy_is_503(fake):
    resp, data = request(fake, "POST", "/api/chat",
                         {"model": "busy", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status == 503
    assert json.loads(data) == {"error": "server busy, please try again.  maximum pending requests exceeded"}
    resp, data = request(fake, "POST", "/v1/completions", {"model": "busy", "prompt": "hi"})
    assert resp.status == 503 and json.loads(data)["error"]["type"] == "api_error"


def test_fail_mid_native_and_openai(fake):
    resp, data = request(fake, "POST", "/api/generate", {"model": "fail-mid", "prompt": "hi"})
    assert resp.status == 200
    lines = ndjson(data)
    assert len(lines) == 4 and all(x["done"] is False for x in lines[:3])
    assert lines[-1] == {"error": "an error was encountered while running the model: fake failure"}
    resp, data = request(fake, "POST", "/v1/chat/completions", {
        "model": "fail-mid", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True}})
    events = [json.loads(e) for e in sse_events(data)]   # no [DONE]
    assert len(events) == 4
    assert events[-1]["model"] == "" and events[-1]["choices"][0]["delta"] == {"content": ""}
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    resp, data = request(fake, "POST", "/api/generate",
                         {"model": "fail-mid", "prompt": "hi", "stream": False})
    assert resp.status == 500 and "fake failure" in json.loads(data)["error"]


# ---- OpenAI surface -------------------------------------------------------

def sse_chat_expected(first, model, deltas, reason, usage=None):
    def dump(o):
        return json.dumps(o, separators=(",", ":"))
    base = {"id": first["id"], "object": "chat.completion.chunk", "created": first["created"],
            "model": model, "system_fingerprint": "fp_ollama"}
    out = ""
    for d, fr in [(d, None) for d in deltas] + [({}, reason)]:
        out += "data: %s\n\n" % dump(dict(base, choices=[{"index": 0, "delta": d, "finish_reason": fr}]))
    if usage:
        out += "data: %s\n\n" % dump(dict(base, choices=[], usage=usage))
    return (out + "data: [DONE]\n\n").encode()


def test_openai_chat_sse_byte_exact(fake):
    req = {"model": "llama3", "messages": [{"role": "user", "content": "hi there"}],
           "stream": True, "max_tokens": 2}
    resp, data = request(fake, "POST", "/v1/chat/completions", req)
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    first = json.loads(sse_events(data)[0])
    assert first["id"].startswith("chatcmpl-")
    deltas = [{"role": "assistant", "content": "tok0 "}, {"content": "tok1 "}]
    assert data == sse_chat_expected(first, "llama3", deltas, "length")
    assert b'"usage"' not in data

    req["stream_options"] = {"include_usage": True}
    _, data = request(fake, "POST", "/v1/chat/completions", req)
    first = json.loads(sse_events(data)[0])
    usage = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    assert data == sse_chat_expected(first, "llama3", deltas, "length", usage)


def test_openai_chat_non_stream_and_max_completion_tokens_ignored(fake):
    resp, data = request(fake, "POST", "/v1/chat/completions", {
        "model": "llama3", "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 2})
    body = json.loads(data)
    assert resp.status == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"] == {"role": "assistant",
                                             "content": "".join("tok%d " % i for i in range(8))}
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}


def test_openai_completions_zero_usage_quirk(fake):
    _, data = request(fake, "POST", "/v1/completions", {
        "model": "llama3", "prompt": "abcdefgh", "stream": True, "max_tokens": 3, "fake_tokens": 2,
        "stream_options": {"include_usage": True}})
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["tok0 ", "tok1 ", ""]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert all(c["usage"] == zero for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    _, data = request(fake, "POST", "/v1/completions", {"model": "llama3", "prompt": "x", "stream": True})
    assert b'"usage"' not in data


# ---- embeddings -----------------------------------------------------------

def test_embeddings(fake):
    _, data = request(fake, "POST", "/api/embed", {"model": "all-minilm", "input": ["abcd", "abcdefgh"]})
    obj = json.loads(data)
    assert obj["prompt_eval_count"] == (2 + 1) + (2 + 2) and "eval_count" not in obj
    assert len(obj["embeddings"]) == 2 and len(obj["embeddings"][0]) == 384
    _, data = request(fake, "POST", "/api/embed", {"model": "all-minilm", "input": ""})
    assert json.loads(data) == {"model": "all-minilm", "embeddings": []}
    _, data = request(fake, "POST", "/api/embeddings", {"model": "all-minilm", "prompt": "abcd"})
    assert list(json.loads(data)) == ["embedding"]
    _, data = request(fake, "POST", "/v1/embeddings", {"model": "all-minilm", "input": ["abcd", "ab"]})
    obj = json.loads(data)
    assert obj["object"] == "list" and [d["index"] for d in obj["data"]] == [0, 1]
    assert obj["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


# ---- record file and client disconnect --------------------------------------

def test_record_file(fake):
    request(fake, "POST", "/api/generate?x=1", {"model": "llama3", "prompt": "rec"},
            {"X-Test-Id": "record-1"})
    # The line is written just after the response has been sent; a read of
    # /_fake/requests waits for it.
    _, data = request(fake, "GET", "/_fake/requests")
    assert any(r["headers"].get("x-test-id") == "record-1" for r in json.loads(data))
    with open(fake["record"]) as f:
        recs = [json.loads(line) for line in f]
    rec = next((r for r in recs if r["headers"].get("x-test-id") == "record-1"), None)
    assert rec is not None
    assert rec["method"] == "POST" and rec["path"] == "/api/generate" and rec["query"] == "x=1"
    assert json.loads(rec["body"]) == {"model": "llama3", "prompt": "rec"}
    assert rec["status"] == 200 and rec["chunks_sent"] == 9 and rec["client_gone"] is False
    assert rec["t_start"] <= rec["t_end"]


def test_requests_include_every_answered_request(fake):
    """The record is appended after the answer has gone out, so a read sent
    the moment an answer arrives (on a connection opened beforehand) used to
    miss it now and then; the read now waits for requests in flight."""
    def connected():
        conn = http.client.HTTPConnection("127.0.0.1", fake["port"], timeout=10)
        conn.connect()
        return conn

    def answer(conn, method, path, body=None):
        conn.request(method, path, body=body and json.dumps(body))
        data = conn.getresponse().read()
        conn.close()
        return data

    n0 = len(json.loads(request(fake, "GET", "/_fake/requests")[1]))
    missed = []
    for i in range(300):
        ask, read = connected(), connected()
        answer(ask, "POST", "/api/generate", {"model": "llama3", "prompt": "race %d" % i, "stream": i % 2 == 0})
        n = len(json.loads(answer(read, "GET", "/_fake/requests")))
        if n != n0 + i + 1:
            missed.append(i)
    assert missed == []


def test_a_stream_held_open_delays_a_read_only_boundedly(tmp_path):
    proc, port, _ = start_fake(tmp_path)
    try:
        fake = {"port": port}
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        body = json.dumps({"model": "slow", "prompt": "held", "options": {"fake_tokens": 1000}}).encode()
        sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        assert b'"done":false' in sock.recv(4096)
        # The stream goes on (200 s of tokens): the read answers anyway,
        # without it.
        resp, data = request(fake, "GET", "/_fake/requests")
        assert resp.status == 200 and json.loads(data) == []
        sock.close()
        # Once the client has gone the fake stops and records at once.
        _, data = request(fake, "GET", "/_fake/requests")
        recs = json.loads(data)
        assert len(recs) == 1 and recs[0]["client_gone"] is True, recs
    finally:
        stop_fake(proc)


@pytest.mark.parametrize("path,req,marker", [
    ("/api/generate", {"model": "slow", "prompt": "disconnect-me"}, b'"done":false'),
    ("/v1/chat/completions", {"model": "slow", "stream": True,
                              "messages": [{"role": "user", "content": "disconnect-me-sse"}]}, b"data: "),
])
def test_client_disconnect_on_slow(fake, path, req, marker):
    sock = socket.create_connection(("127.0.0.1", fake["port"]), timeout=5)
    body = json.dumps(req).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
    buf = b""
    while buf.count(marker) < 2:
        chunk = sock.recv(4096)
        assert chunk
        buf += chunk
    sock.close()
    # The fake sees the peer leave at once, and the read waits for its record.
    _, data = request(fake, "GET", "/_fake/requests")
    rec = next((r for r in json.loads(data) if r["body"] == body.decode()), None)
    assert rec is not None, "no record for the abandoned stream"
    assert rec["client_gone"] is True and rec["status"] == 200
    assert 2 <= rec["chunks_sent"] < 8
    assert rec["t_end"] - rec["t_start"] < 1.2


def test_sigterm_and_sigint_exit_zero(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc, _port, _record = start_fake(tmp_path)
        os.kill(proc.pid, sig)
        assert proc.wait(5) == 0


# ---- tool calls (ollama-protocol.md §1.2, §3.5) ---------------------------

WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK = [{"role": "user", "content": "weather in Oslo?"}]


def test_native_chat_answers_tools_with_one_whole_call(fake):
    resp, data = request(fake, "POST", "/api/chat", {"model": "llama3", "messages": ASK, "tools": WEATHER})
    lines = ndjson(data)
    assert len(lines) == 2
    call = lines[0]["message"]["tool_calls"]
    assert lines[0]["message"]["content"] == "" and lines[0]["done"] is False
    assert len(call) == 1 and call[0]["id"].startswith("call_")
    assert call[0]["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "fake-city"}}
    assert lines[1]["done"] is True and lines[1]["done_reason"] == "stop" and lines[1]["eval_count"] == 8
    resp, data = request(fake, "POST", "/api/chat",
                         {"model": "llama3", "messages": ASK, "tools": WEATHER, "stream": False})
    obj = json.loads(data)
    assert obj["message"]["tool_calls"][0]["function"]["arguments"] == {"city": "fake-city"}
    assert obj["message"]["content"] == "" and obj["eval_count"] == 8


def test_openai_chat_streams_a_tool_call_in_one_chunk(fake):
    resp, data = request(fake, "POST", "/v1/chat/completions", {
        "model": "llama3", "messages": ASK, "tools": WEATHER, "stream": True,
        "stream_options": {"include_usage": True}})
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    delta = chunks[0]["choices"][0]["delta"]
    assert delta["role"] == "assistant" and delta["content"] == ""
    tc = delta["tool_calls"]
    assert tc[0]["index"] == 0 and tc[0]["type"] == "function" and tc[0]["id"].startswith("call_")
    assert tc[0]["function"] == {"name": "get_weather", "arguments": '{"city":"fake-city"}'}
    assert chunks[1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    assert chunks[2]["choices"] == [] and chunks[2]["usage"]["completion_tokens"] == 8
    resp, data = request(fake, "POST", "/v1/chat/completions",
                         {"model": "llama3", "messages": ASK, "tools": WEATHER})
    choice = json.loads(data)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":"fake-city"}'


# ---- Go's decoding of request bodies -------------------------------------------

def last_record(fake, test_id):
    _, data = request(fake, "GET", "/_fake/requests")
    return [r for r in json.loads(data) if r["headers"].get("x-test-id") == test_id][-1]


def test_body_fields_match_as_go_decodes_them(fake):
    """encoding/json matches struct fields case-insensitively (KELVIN SIGN is
    k, LONG S is s), the last occurrence wins and objects merge; map keys
    (options, content parts) match exactly."""
    raw = ('{"model":"busy","MODEL":"llama3","prompt":"p","OPTIONS":{"num_predict":100},'
           '"options":{"NUM_PREDICT":7,"num_predict":2},"\u017ftream":false,'
           '"\u212aeep_alive":"1m","fake_tokens":1}')
    resp, data = request(fake, "POST", "/api/generate", raw.encode(), {"X-Test-Id": "go-1"})
    assert resp.status == 200, data
    obj = json.loads(data)
    assert obj["model"] == "llama3" and obj["eval_count"] == 2 and obj["done_reason"] == "length"
    dec = last_record(fake, "go-1")["decoded"]
    assert dec["model"] == "llama3" and dec["stream"] is False and dec["keep_alive"] == "1m"
    assert dec["options"] == {"num_predict": 2, "NUM_PREDICT": 7}
    assert "MODEL" not in dec and dec["fake_tokens"] == 1   # unknown names kept as spelt

    raw = ('{"Model":"llama3","Messages":[{"ROLE":"user","Content":"abcdefgh"}],'
           '"STREAM":false,"Options":{"num_predict":1}}')
    resp, data = request(fake, "POST", "/api/chat", raw.encode(), {"X-Test-Id": "go-2"})
    obj = json.loads(data)
    assert resp.status == 200 and obj["prompt_eval_count"] == 12 and obj["eval_count"] == 1, obj
    dec = last_record(fake, "go-2")["decoded"]
    assert dec["messages"] == [{"role": "user", "content": "abcdefgh"}]

    raw = ('{"model":"llama3","messages":[{"role":"user","content":"hi"}],"Max_Tokens":3,'
           '"\u017ftream":true,"STREAM_OPTIONS":{"Include_Usage":true}}')
    resp, data = request(fake, "POST", "/v1/chat/completions", raw.encode(), {"X-Test-Id": "go-3"})
    events = sse_events(data)
    assert resp.status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["usage"]["completion_tokens"] == 3
    dec = last_record(fake, "go-3")["decoded"]
    assert dec["max_tokens"] == 3 and dec["stream_options"] == {"include_usage": True}

    # the dotless i is not in i's fold orbit for Go: no field, ignored
    raw = '{"model":"llama3","prompt":"p","stream":false,"\u0131nput":1,"opt\u0131ons":{"num_predict":1}}'
    _, data = request(fake, "POST", "/api/generate", raw.encode(), {"X-Test-Id": "go-4"})
    assert json.loads(data)["eval_count"] == 8
    assert "options" not in last_record(fake, "go-4")["decoded"]


def test_bytewise_counts_a_prompt_token_a_byte(fake):
    _, data = request(fake, "POST", "/api/generate",
                      {"model": "bytewise", "prompt": "a a a a", "stream": False})
    assert json.loads(data)["prompt_eval_count"] == 10 + 7
    _, data = request(fake, "POST", "/v1/chat/completions",
                      {"model": "bytewise", "messages": [{"role": "user", "content": "a a"}]})
    assert json.loads(data)["usage"]["prompt_tokens"] == 10 + 3
