"""The README never lies: every ```sh block of README.md with a curl in it
is run as written against a real stack (script/tollgate and script/psql
stand for this stack's; the URL becomes the stack's), and each curl's
status and body are checked against the `# answers STATUS[: BODY]` comment
that follows it. BODY is compared as JSON when it is JSON; otherwise every
"quoted" string in it must appear in the answer."""
import json
import os
import re
import subprocess

import pytest

from conftest import BUILD, INVARIANTS, PGBIN, TOP
from stack import Stack

README = open(os.path.join(TOP, "README.md")).read()
BLOCKS = [b for b in re.findall(r"^```sh\n(.*?)^```", README, re.S | re.M) if "curl " in b]
ANSWER = re.compile(r"^# answers (\d{3})(?:: (.*))?$", re.M)
MARK = "@@tollgate-readme-status %{http_code}@@"


def expected():
    return [(int(s), b) for block in BLOCKS for s, b in ANSWER.findall(block)]


@pytest.fixture(scope="module")
def answers(db, tmp_path_factory):
    with Stack(db, name="readme", conf={"cors_origins": "https://app.example",
                                        "accept_body_key": "yes"}) as s:
        d = tmp_path_factory.mktemp("readme")
        (d / "script").mkdir()
        for name, cmd in (("tollgate", f'exec "{BUILD}/cli/tollgate" -c "{s.tg.conf}" "$@"'),
                          ("psql", f'exec "{PGBIN}/psql" "{db.conninfo}" "$@" </dev/null')):
            (d / "script" / name).write_text(f"#!/bin/sh\n{cmd}\n")
            (d / "script" / name).chmod(0o755)
        script = "\n".join(BLOCKS).replace("http://127.0.0.1:8080", f"http://127.0.0.1:{s.port}")
        prelude = f"set -e\ncurl() {{ command curl -w '\\n{MARK}\\n' \"$@\"; }}\n"
        r = subprocess.run(["bash", "-c", prelude + script], cwd=d, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, f"README blocks failed ({r.returncode}):\n{r.stderr}\n{r.stdout}"
        parts = re.split(r"\n@@tollgate-readme-status (\d{3})@@\n", r.stdout)
        got = [(int(parts[i + 1]), parts[i]) for i in range(0, len(parts) - 1, 2)]
        assert s.db.rows(INVARIANTS) == []
        yield got


def test_every_curl_example_says_what_it_answers(answers):
    assert len(BLOCKS) >= 4
    assert len(answers) == len(expected()), "each curl needs one '# answers' comment after it"


@pytest.mark.parametrize("i", range(len(expected())))
def test_each_example_answers_what_the_readme_says(answers, i):
    status, body = expected()[i]
    got_status, got_body = answers[i]
    # the last line of output before the status mark is the body (headers
    # come first with -D -)
    assert got_status == status, f"example {i}: {got_body}"
    if not body:
        return
    try:
        want = json.loads(body)
    except ValueError:
        for quoted in re.findall(r'"([^"]+)"', body):
            assert quoted in got_body, f"example {i}: {quoted!r} not in {got_body!r}"
        return
    assert json.loads(got_body.strip().splitlines()[-1]) == want
