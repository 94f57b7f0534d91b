"""The admin pages end to end in headless Chromium (tests/browser/flow.mjs)
against a real stack: Apache from examples/apache with the /admin block,
the CGI run by mod_cgid, fake-ollama as Ollama. Screenshots of every page at
1280 and 390 px go to the stack's folder under $TG_TMP (screenshots/)."""
import os
import re
import subprocess

import pytest

from admin import PASSWORD, hash_password
from conftest import TOP, create_database, drop_database
from stack import Stack

BROWSER = os.path.join(TOP, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def stack():
    db = create_database()
    s = Stack(db, name="admin-browser", admin=True)
    pw = s.dir / "admin_password"
    pw.write_text(hash_password(PASSWORD) + "\n")
    pw.chmod(0o600)
    s.extra_conf["admin_password_file"] = str(pw)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        drop_database(db)


def test_admin_flow_in_chromium(stack):
    if not os.access(CHROMIUM, os.X_OK) or not os.path.isdir(os.path.join(BROWSER, "node_modules")):
        pytest.fail("chromium or tests/browser/node_modules missing: run script/bootstrap")
    out = stack.dir / "screenshots"
    out.mkdir()
    env = dict(os.environ, BASE=f"http://127.0.0.1:{stack.port}", PASSWORD=PASSWORD, OUT=str(out))
    r = subprocess.run(["node", os.path.join(BROWSER, "flow.mjs")], cwd=BROWSER, env=env,
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("FLOW OK"), \
        f"{r.stdout}\n{r.stderr}\n{stack.report()}"
    for step in ("logged in", "shown once", "Copy key button put the key on the clipboard",
                 "curl through the stack with the key: 200",
                 "usage chart", "Recent requests", "curl gets 403", "logged out"):
        assert step in r.stdout, r.stdout
    shots = sorted(p.name for p in out.iterdir())
    assert len(shots) == 21, shots  # 10 pages at two widths, and the focus shot
    assert all(p.stat().st_size > 5000 for p in out.iterdir())
    # Apache served the stylesheet as CSS, with nosniff
    css = stack.http("GET", "/admin-static/admin.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    # and the compatibility route through Apache still needs the master key
    assert stack.http("POST", "/key/generate").status == 401
    # no key and no session cookie in any log of the stack
    logs = stack.log_text()
    assert not re.search(r"sk-tg-[A-Za-z0-9]{49}", logs) and "tg_admin=v1." not in logs
