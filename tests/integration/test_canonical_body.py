"""The body the relay forwards is canonical (issue 19, point 1), and its
prompt estimate cannot be gamed with one-letter words (point 7), under
every web server.

Ollama decodes request bodies with Go's encoding/json: field names match
case-insensitively (KELVIN SIGN is k, LONG S is s) and the last one wins.
fake-ollama decodes the forwarded body the same way and records what it
decoded (`decoded`), so these tests see what Ollama would have run: the
key's model and its output cap, whatever the client spelt, or a 400 that
names the field."""
import json
import uuid

import pytest

from conftest import INVARIANTS
from stack import Stack


@pytest.fixture(scope="module")
def stack(db, web):
    with Stack(db, web=web, name=f"canon-{web}") as s:
        yield s


@pytest.fixture(autouse=True)
def books_balance(stack):
    yield
    assert stack.db.rows(INVARIANTS) == []


def key(stack, *flags):
    name = "c-" + uuid.uuid4().hex[:8]
    k = stack.tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]
    return name, {"Authorization": "Bearer " + k}


def locked(stack):
    """A key that may run only `long` (100000 tokens unless capped), at
    most 5 output tokens."""
    return key(stack, "--models", "long", "--max-output", "5")[1]


def decoded_since(stack, n0):
    return [r["decoded"] for r in stack.fake_requests()[n0:] if "decoded" in r]


def rows_json(stack, sql):
    return [json.loads(r[0]) for r in stack.db.rows(sql)]


def charged(stack, name):
    """Each request's usage next to what was reserved for it."""
    return rows_json(stack, "SELECT json_build_object('prompt', e.prompt_tokens, 'completion', "
                            "e.completion_tokens, 'reserved', r.tokens, 'status', e.status) "
                            "FROM usage_events e JOIN reservations r ON r.id = e.reservation_id "
                            f"JOIN api_keys k ON k.id = e.key_id WHERE k.name = '{name}' ORDER BY e.id")


PATHS = ["/api/chat", "/api/generate", "/v1/chat/completions", "/v1/completions"]
MSG = '[{"role":"user","content":"hi"}]'


def base(path):
    """The JSON members of an ordinary request for `path`, without braces."""
    text = f'"messages":{MSG}' if "chat" in path else '"prompt":"hi"'
    return '"model":"long",' + text + (',"stream":false' if path.startswith("/api/") else "")


def cap_field(path, n, spelling=None):
    if path.startswith("/api/"):
        return '"options":{"%s":%d}' % (spelling or "num_predict", n)
    return '"%s":%d' % (spelling or "max_tokens", n)


def refused_bodies(path):
    """Bodies that mean something else to Ollama than to a reader of exact
    names, each with the field the 400 must name."""
    b = base(path)
    out = [
        ('{%s,"model":"qwen2.5:7b"}' % b, "duplicate field"),
        ('{%s,"MODEL":"qwen2.5:7b"}' % b, "duplicate field 'model' (also as 'MODEL')"),
        ('{"Model":"qwen2.5:7b",%s}' % b, "duplicate field 'Model' (also as 'model')"),
        ('{%s,"\u017ftream":true}' % b if path.startswith("/api/") else
         '{%s,"stream":false,"\u017ftream":true}' % b, "duplicate field 'stream' (also as '\u017ftream')"),
    ]
    if path.startswith("/api/"):
        out += [
            ('{%s,"options":{"num_predict":5},"OPTIONS":{"num_predict":100000}}' % b,
             "duplicate field 'options' (also as 'OPTIONS')"),
            ('{%s,"options":{"num_predict":5,"NUM_PREDICT":100000}}' % b,
             "duplicate field 'options.num_predict' (also as 'NUM_PREDICT')"),
        ]
    else:
        out += [
            ('{%s,"max_tokens":5,"MAX_TOKENS":100000}' % b,
             "duplicate field 'max_tokens' (also as 'MAX_TOKENS')"),
            ('{%s,"max_tokens":5,"max_to\u212aens":100000}' % b,
             "duplicate field 'max_tokens' (also as 'max_to\u212aens')"),
            ('{%s,"stream":true,"stream_options":{"include_usage":false,"INCLUDE_USAGE":true}}' % b,
             "duplicate field 'stream_options.include_usage' (also as 'INCLUDE_USAGE')"),
        ]
    if "chat" in path:
        out += [
            ('{%s,"Messages":[{"role":"user","content":"%s"}]}' % (b, "x" * 400),
             "duplicate field 'messages' (also as 'Messages')"),
            ('{%s}' % b.replace(MSG, '[{"role":"user","content":"hi","CONTENT":"%s"}]' % ("x" * 400)),
             "duplicate field 'messages[0].content' (also as 'CONTENT')"),
        ]
    else:
        out.append(('{%s,"PROMPT":"%s"}' % (b, "x" * 400), "duplicate field 'prompt' (also as 'PROMPT')"))
    return out


CASES = [(p, i) for p in PATHS for i in range(len(refused_bodies(p)))]


@pytest.mark.parametrize("path,i", CASES, ids=[f"{p}-{i}" for p, i in CASES])
def test_names_that_fold_alike_are_refused_naming_the_field(stack, path, i):
    body, msg = refused_bodies(path)[i]
    auth = locked(stack)
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, body.encode(), auth)
    assert r.status == 400, (r, body)
    err = r.json()["error"]
    text = err["message"] if path.startswith("/v1/") else err
    assert msg in text, (text, body)
    if path.startswith("/v1/"):
        assert err["type"] == "invalid_request_error", err
    assert decoded_since(stack, n0) == []  # nothing reached the upstream


def respelt_bodies(path):
    """One spelling of each field the relay reads, as Ollama reads it too."""
    b = base(path)
    api = path.startswith("/api/")
    out = [
        '{%s}' % b.replace('"model"', '"MODEL"'),
        '{%s}' % b.replace('"model"', '"Model"'),
        '{%s,%s}' % (b, cap_field(path, 100000, "NUM_PREDICT" if api else "MAX_TOKENS")),
    ]
    if api:
        out.append('{%s,"OPTIONS":{"NUM_PREDICT":100000}}' % b)
    else:
        out.append('{%s,"max_to\u212aens":100000,"\u017ftream":false}' % b)
    return out


RESPELT = [(p, i) for p in PATHS for i in range(len(respelt_bodies(p)))]


@pytest.mark.parametrize("path,i", RESPELT, ids=[f"{p}-{i}" for p, i in RESPELT])
def test_a_name_spelt_another_way_is_policed_as_what_ollama_reads(stack, path, i):
    body = respelt_bodies(path)[i]
    auth = locked(stack)
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, body.encode(), auth)
    assert r.status == 200, (r, body)
    dec = decoded_since(stack, n0)
    assert len(dec) == 1, dec
    assert dec[0]["model"] == "long", dec
    cap = dec[0]["options"]["num_predict"] if path.startswith("/api/") else dec[0]["max_tokens"]
    assert cap == 5, dec
    out = r.json()
    n = out["eval_count"] if path.startswith("/api/") else out["usage"]["completion_tokens"]
    assert n == 5, out


@pytest.mark.parametrize("path", PATHS)
def test_a_model_spelt_another_way_is_still_outside_the_allow_list(stack, path):
    auth = locked(stack)
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, ('{%s}' % base(path).replace('"model":"long"', '"MODEL":"qwen2.5:7b"')).encode(),
                   auth)
    assert r.status == 403, r
    assert decoded_since(stack, n0) == []


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions", "/api/generate", "/v1/completions"])
def test_the_messages_spelt_another_way_are_in_the_estimate(stack, path):
    text = "a " * 600
    name, auth = key(stack, "--models", "bytewise", "--max-output", "5", "--reservation", "20")
    if "chat" in path:
        body = '{"model":"bytewise","Messages":[{"Content":"%s","role":"user"}]}' % text
    else:
        body = '{"model":"bytewise","Prompt":"%s"}' % text
    if path.startswith("/api/"):
        body = body[:-1] + ',"stream":false}'
    r = stack.http("POST", path, body.encode(), auth)
    assert r.status == 200, r
    (e,) = charged(stack, name)
    assert e["prompt"] == 10 + len(text), e  # what the fake counted: the text reached it
    assert e["prompt"] + e["completion"] <= e["reserved"], e


@pytest.mark.parametrize("path", PATHS)
def test_one_letter_words_are_reserved_at_least_their_tokens(stack, path):
    """`bytewise` counts a token a byte, a tokenizer's worst case; one-letter
    words are about a token every two bytes to a real one."""
    text = "a " * 1000
    name, auth = key(stack, "--max-output", "5", "--reservation", "20")
    body = {"model": "bytewise"}
    if "chat" in path:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    if path.startswith("/api/"):
        body["stream"] = False
    r = stack.http("POST", path, body, auth)
    assert r.status == 200, r
    (e,) = charged(stack, name)
    assert e["prompt"] == 10 + len(text), e
    assert e["prompt"] + e["completion"] <= e["reserved"], e


@pytest.mark.parametrize("path", PATHS)
def test_one_letter_words_cannot_run_past_the_token_limit(stack, path):
    text = "a " * 1000  # 2010 tokens to bytewise
    name, auth = key(stack, "--tokens-day", "1000", "--max-output", "5")
    body = {"model": "bytewise"}
    if "chat" in path:
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    n0 = len(stack.fake_requests())
    r = stack.http("POST", path, body, auth)
    assert r.status == 429, r
    assert decoded_since(stack, n0) == []
    used = stack.db.value("SELECT COALESCE(sum(q.tokens_used), 0) FROM quota_usage q "
                          f"JOIN api_keys k ON k.id = q.key_id WHERE k.name = '{name}'")
    assert used == "0"


@pytest.mark.parametrize("body", ['{"MODEL":"all-minilm"}', '{"Name":"all-minilm"}',
                                  '{"model":"long","\u017fname":"x","nAme":"all-minilm"}'])
def test_a_hidden_model_spelt_another_way_stays_hidden(stack, body):
    auth = locked(stack)
    r = stack.http("POST", "/api/show", body.encode(), auth)
    assert r.status == 404, r
    assert r.json() == {"error": "model 'all-minilm' not found"}
