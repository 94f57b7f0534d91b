"""The admin pages behind every web server (issue 7): one stack with
admin=True, Apache in front and lighttpd, Caddy and nginx added, each
serving tollgate-admin.cgi at /admin and its stylesheet at /admin-static
from its examples/<server> admin part (Caddy and nginx through fcgiwrap).
Through each: the login page, the stylesheet, a login and the key list,
and the sign-in lock-out of one client address (issue 19)."""
import concurrent.futures
import http.client
import re
import uuid

import pytest

from admin import PASSWORD, assert_burst_locked_out, hash_password, slow_password
from conftest import WEB_SERVERS
from stack import Response, Stack


@pytest.fixture(scope="module")
def stack(db):
    s = Stack(db, name="admin-web", admin=True, every_web=True)
    pw = s.dir / "admin_password"
    pw.write_text(hash_password(PASSWORD) + "\n")
    pw.chmod(0o600)
    s.extra_conf["admin_password_file"] = str(pw)
    with s:
        yield s


@pytest.mark.parametrize("web", WEB_SERVERS)
def test_admin_pages_are_served_under_every_server(stack, web):
    port = stack.ports[web]
    name = "adm-" + uuid.uuid4().hex[:10]
    stack.tg.ok("key", "create", "--name", name)

    r = stack.http("GET", "/admin/", port=port)
    assert r.status in (200, 303), f"{r}\n{stack.report()}"
    if r.status == 303:  # / sends a visitor without a session to the login page
        assert r.headers["location"] == "/admin/login", r
        r = stack.http("GET", "/admin/login", port=port)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html"), f"{r}\n{stack.report()}"
    assert b'type="password"' in r.body, r
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert "script-src 'self';" in csp  # the copy button's file, nothing inline

    css = stack.http("GET", "/admin-static/admin.css", port=port)
    assert css.status == 200 and css.headers["content-type"].startswith("text/css"), css
    assert css.headers.get("x-content-type-options") == "nosniff", css
    assert b"tollgate admin" in css.body
    js = stack.http("GET", "/admin-static/admin.js", port=port)
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript"), js
    assert js.headers.get("x-content-type-options") == "nosniff", js
    assert b"navigator.clipboard" in js.body

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = stack.http("POST", "/admin/login", "password=wrong+password", form, port=port)
    assert r.status == 401 and "set-cookie" not in r.headers, r
    body = "password=" + PASSWORD.replace(" ", "+")
    r = stack.http("POST", "/admin/login", body, form, port=port)
    assert r.status == 303 and r.headers["location"] == "/admin/keys", f"{r}\n{stack.report()}"
    cookie = r.headers["set-cookie"].split(";")[0]
    assert cookie.startswith("tg_admin=v1.")

    r = stack.http("GET", "/admin/keys", headers={"Cookie": cookie}, port=port)
    assert r.status == 200 and r.headers["content-type"].startswith("text/html"), r
    assert name.encode() in r.body, r
    # the admin API answers there too, and wants credentials
    assert stack.http("GET", "/admin/api/keys", port=port).status == 401
    assert stack.http("POST", "/key/generate", port=port).status == 401
    # the CGI's own pages never leak a key or a session into the logs
    logs = stack.log_text()
    assert not re.search(r"sk-tg-[A-Za-z0-9]{49}", logs) and "tg_admin=v1." not in logs


def post_login(port, password, source):
    """POST /admin/login from the loopback address `source` (all of
    127.0.0.0/8 reaches a server listening on 127.0.0.1), so the web server
    gives the CGI that REMOTE_ADDR."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        c.request("POST", "/admin/login", body="password=" + password.replace(" ", "+"),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


@pytest.mark.parametrize("web", WEB_SERVERS)
def test_sign_in_lock_out_is_per_address_under_every_server(stack, web):
    port = stack.ports[web]
    i = WEB_SERVERS.index(web)
    attacker, admin_addr = f"127.0.0.{20 + i}", f"127.0.0.{40 + i}"
    slow_password(stack.dir / "admin_password")
    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        got = list(ex.map(lambda _: post_login(port, "wrong password", attacker), range(40)))
    statuses = [r.status for r in got]
    assert_burst_locked_out(statuses, [int(r.headers["retry-after"]) for r in got if r.status == 429],
                            stack.db, attacker)
    assert post_login(port, PASSWORD, attacker).status == 429
    r = post_login(port, PASSWORD, admin_addr)
    assert r.status == 303 and r.headers["set-cookie"].startswith("tg_admin=v1."), r
    stack.tg.ok("admin", "unlock", "--address", attacker)
    assert post_login(port, PASSWORD, attacker).status == 303
