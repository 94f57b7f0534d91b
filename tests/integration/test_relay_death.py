"""A relay that dies mid-stream (kill -9) cannot write an error line; what
the client sees is its web server's doing (issue #19, point 7). Apache and
lighttpd end the chunked body without its terminating chunk: an error to
any HTTP client. Caddy 2.6 and nginx 1.22 end it cleanly, and no setting
changes that: Caddy's FastCGI client reads EOF between records as the end
of the answer (and 2.6 ends a body cleanly even on a read error: only later
versions abort with http.ErrAbortHandler); nginx without response buffering
(which streaming needs) takes the upstream's EOF as the end of a body of
unknown length, fastcgi_keep_conn or not. There the answer is known cut
by what it lacks: the final done:true line. README (When things fail)
says so; this holds each server to what it does, so a change shows."""
import os
import signal
import uuid

import pytest

from stack import WEB_SERVERS, Stack

SLOW = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
# What each server's client gets (see above).
ENDING = {"apache": "cut", "lighttpd": "cut", "caddy": "clean", "nginx": "clean"}


@pytest.fixture(scope="module")
def stack(db):
    with Stack(db, name="relay-death", every_web=True) as s:
        yield s


def new_key(stack):
    key = stack.tg.ok("key", "create", "--name", "d-" + uuid.uuid4().hex[:10]).stdout
    return {"Authorization": "Bearer " + key.splitlines()[-1]}


def cut_short(stream):
    """What the client got after its first two lines: 'cut' when the body
    ended without the HTTP framing's end (the error a client library
    raises), 'error line' when the last line says so, 'clean' when it ended
    as a complete body would, without the final done:true line."""
    lines = stream.lines()
    next(lines), next(lines)
    yield
    rest = []
    try:
        for _, rec in lines:
            rest.append(rec)
    except (ConnectionError, OSError):
        yield "cut", rest
        return
    if rest and b'"error"' in rest[-1]:
        yield "error line", rest
    else:
        yield "clean", rest


@pytest.mark.parametrize("web", WEB_SERVERS)
def test_a_stream_cut_by_a_dying_relay_never_reads_as_complete(stack, web):
    auth = new_key(stack)
    s = stack.stream("POST", "/api/chat", SLOW, auth, port=stack.ports[web])
    assert s.status == 200 and s.chunked, (web, s.headers)
    seen = cut_short(s)
    next(seen)
    p = stack.procs.pop("tollgate-relay")
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    try:
        how, rest = next(seen)
    finally:
        s.close()
        stack.start_program("tollgate-relay")
    assert not any(b'"done":true' in r for r in rest), (web, rest)
    assert how == ENDING[web], (web, how, rest)
