"""The clients people use, unchanged (issue 5): the official `openai` npm
package, `ollama` (ollama-js), LangChain's `@langchain/ollama` and what Open
WebUI does, through the real stack under every web server, each call
checked against what the fake upstream answers for it."""
import json
import os
import subprocess
import uuid

import pytest

from conftest import INVARIANTS, TOP
from stack import Stack

CLIENTS = os.path.join(TOP, "tests", "clients")
TOKS = "".join("tok%d " % i for i in range(8))


@pytest.fixture(scope="module")
def results(db, web):
    with Stack(db, web=web, name=f"clients-{web}") as s:
        def key(*flags):
            name = "c-" + uuid.uuid4().hex[:8]
            return s.tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]

        spent = key("--tokens-day", "0")
        # the database is the module's, shared by the runs under each server
        first = s.db.value("SELECT coalesce(max(id), 0) FROM usage_events")
        env = dict(os.environ, BASE=f"http://127.0.0.1:{s.port}", KEY=key(), SPENT=spent)
        r = subprocess.run(["node", os.path.join(CLIENTS, "clients.mjs")], cwd=CLIENTS,
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert s.db.rows(INVARIANTS) == []
        out["_events"] = s.db.rows("SELECT endpoint, prompt_tokens, completion_tokens "
                                   f"FROM usage_events WHERE id > {first} ORDER BY id")
        yield out


def test_openai_chat_streaming_and_not(results):
    assert results["openai_chat"] == {"content": TOKS, "finish": "stop", "usage": {
        "prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}}
    s = results["openai_chat_stream"]
    assert (s["content"], s["finish"], s["usage"]) == (TOKS, "stop", None)  # no usage unasked
    assert results["openai_chat_stream_usage"]["usage"] == {
        "prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}


def test_openai_completions_embeddings_and_models(results):
    c = results["openai_completion"]
    assert (c["text"], c["finish"], c["usage"]["completion_tokens"]) == ("tok0 tok1 tok2 ", "length", 3)
    e = results["openai_embeddings"]
    assert (e["n"], e["usage"]["prompt_tokens"]) == (2, 4)
    assert "llama3:latest" in results["openai_models"]["ids"]


def test_openai_errors_are_the_sdks_own_exceptions(results):
    assert results["openai_bad_key"]["error"] == "AuthenticationError"
    assert results["openai_bad_key"]["status"] == 401
    assert results["openai_limit"]["error"] == "RateLimitError"
    assert results["openai_limit"]["status"] == 429
    assert "Rate limit reached for this key: tokens per day (limit 0)" in results["openai_limit"]["message"]


def test_ollama_js(results):
    assert results["ollama_chat"] == {"content": TOKS, "prompt": 10, "eval": 8}
    s = results["ollama_chat_stream"]
    assert (s["content"], s["parts"], s["done"], s["eval"]) == (TOKS, 9, True, 8)
    assert results["ollama_generate"] == {"response": TOKS, "eval": 8}
    assert results["ollama_embed"] == {"n": 2, "prompt": 4}
    assert "llama3:latest" in results["ollama_list"]["names"]
    assert results["ollama_show"] == {"family": "llama", "capabilities": ["completion", "tools"]}
    assert results["ollama_bad_key"]["status"] == 401


def test_every_client_call_was_charged_what_it_used(results):
    charged = {}
    for endpoint, p, c in results["_events"]:
        charged.setdefault(endpoint, []).append((int(p), int(c)))
    # three chats, then the tool call (its prompt is longer; 8 tokens parsed)
    assert charged["/v1/chat/completions"] == [(10, 8)] * 3 + [(14, 8)]
    # ollama-js twice, LangChain, Open WebUI
    assert charged["/api/chat"] == [(10, 8)] * 4
    assert charged["/v1/completions"] == [(10, 3)]
    assert charged["/api/generate"] == [(10, 8)]


def test_openai_tool_call_in_a_streamed_answer(results):
    assert results["openai_tool_stream"] == {"content": "", "finish": "tool_calls", "calls": [
        {"name": "get_weather", "args": {"city": "fake-city"}, "id": True}]}


def test_langchain_streamed_chat(results):
    lc = results["langchain_stream"]
    # a chunk per token (streamed, not one answer at the end), plus its own
    assert lc["content"] == TOKS and lc["chunks"] >= 8, lc
    assert lc["usage"]["output_tokens"] == 8 and lc["usage"]["input_tokens"] == 10


def test_an_open_webui_style_client(results):
    w = results["openwebui"]
    assert w["version"] and w["status"] == 200 and w["type"] == "application/x-ndjson"
    assert (w["content"], w["lines"], w["done"], w["eval"]) == (TOKS, 9, True, 8)
