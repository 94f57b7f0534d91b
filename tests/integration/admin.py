"""Runs tollgate-admin.cgi directly, as a web server would (CGI environment
variables and stdin), with a configuration of its own: fast, and what the
web server adds (Apache's routing) is tested through stack.py separately."""
import base64
import hashlib
import hmac
import os
import re
import subprocess
import time
import urllib.parse

from conftest import BUILD, Tollgate

CGI = os.path.join(BUILD, "admin-cgi", "tollgate-admin.cgi")
PASSWORD = "correct horse battery staple"
MASTER_KEY = "mk-" + "7" * 40


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hash_password(password, iterations=1000):
    """The admin_password_file format, with few iterations so that tests
    stay fast (the CGI's --hash-password uses 600000; verifying reads the
    count from the hash). test_hash_password_cli checks the two agree."""
    salt = os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    return f"pbkdf2-sha256${iterations}${b64(salt)}${b64(dk)}"


class CgiResponse:
    def __init__(self, raw, stderr):
        head, _, body = raw.partition(b"\r\n\r\n")
        self.headers = {}
        self.header_list = []
        for line in head.decode("latin-1").split("\r\n"):
            k, _, v = line.partition(":")
            self.header_list.append((k.strip(), v.strip()))
            self.headers.setdefault(k.strip().lower(), v.strip())
        self.status = int(self.headers.get("status", "200").split()[0])
        self.body = body
        self.text = body.decode("utf-8", errors="replace")
        self.stderr = stderr

    def cookie(self):
        sc = [v for k, v in self.header_list if k.lower() == "set-cookie"]
        return sc[0] if sc else None

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<CgiResponse {self.status} {self.headers} {self.text[:600]!r} stderr={self.stderr[-600:]!r}>"


class Admin:
    """The CGI with its own tollgate.conf over a migrated database."""

    def __init__(self, tmp_path, db, **conf):
        pw = tmp_path / "admin_password"
        pw.write_text(hash_password(PASSWORD) + "\n")
        pw.chmod(0o600)
        mk = tmp_path / "master_key"
        mk.write_text(MASTER_KEY + "\n")
        mk.chmod(0o600)
        settings = {"admin_password_file": str(pw), "master_key_file": str(mk),
                    "upstream": "http://127.0.0.1:9", "time_zone": "UTC"}
        settings.update(conf)
        self.tg = Tollgate(tmp_path, db, **settings)
        self.tg.ok("migrate")
        self.db = db
        self.cookie = None  # "tg_admin=..." after login()

    def run(self, method, path, body=None, form=None, cookie=None, headers=None, env=None,
            script="/admin", remote_addr="127.0.0.1"):
        path, _, query = path.partition("?")
        e = {k: v for k, v in os.environ.items() if k in ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        e.update(TOLLGATE_CONFIG=str(self.tg.conf), REQUEST_METHOD=method, SCRIPT_NAME=script,
                 PATH_INFO=path, QUERY_STRING=query, REMOTE_ADDR=remote_addr,
                 GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1")
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            e["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        elif isinstance(body, str):
            body = body.encode()
            e["CONTENT_TYPE"] = "application/json"
        if body is not None:
            e["CONTENT_LENGTH"] = str(len(body))
        cookie = cookie if cookie is not None else self.cookie
        if cookie:
            e["HTTP_COOKIE"] = cookie
        for k, v in (headers or {}).items():
            e["HTTP_" + k.upper().replace("-", "_")] = v
        e.update(env or {})
        r = subprocess.run([CGI], input=body or b"", capture_output=True, env=e, timeout=30)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        return CgiResponse(r.stdout, r.stderr.decode(errors="replace"))

    def login(self, password=PASSWORD, remote_addr="127.0.0.1"):
        r = self.run("POST", "/login", form={"password": password}, cookie="", remote_addr=remote_addr)
        if r.status == 303:
            self.cookie = r.cookie().split(";")[0]
            self._csrf = None
        return r

    _csrf = None

    def csrf(self, page="/keys"):
        """The session's CSRF token, as a page's forms carry it."""
        if self._csrf and page == "/keys":
            return self._csrf
        r = self.run("GET", page)
        assert r.status == 200, r
        m = re.search(r'name="csrf" value="([^"]+)"', r.text)
        assert m, r.text[:2000]
        self._csrf = m.group(1)
        return m.group(1)

    def post(self, path, form=None, csrf=True, **kw):
        form = dict(form or {})
        if csrf is True:
            form["csrf"] = self.csrf()
        elif csrf:
            form["csrf"] = csrf
        return self.run("POST", path, form=form, **kw)

    # ---- forging cookies, as an attacker with the secret would -------------

    def mac_key(self):
        secret = self.tg.secret.read_bytes().rstrip(b" \t\r\n")
        return hmac.new(secret, b"tollgate admin pages v1", hashlib.sha256).digest()

    def forge_cookie(self, sid, expires):
        body = f"v1.{sid}.{expires}"
        mac = hmac.new(self.mac_key(), b"cookie\0" + body.encode(), hashlib.sha256).digest()
        return body + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def now():
    return int(time.time())


def slow_password(path):
    """Rewrites the admin_password_file at path with as many PBKDF2
    iterations as make a check take a while (the real hash has 600000), so
    that concurrent sign-ins overlap while their passwords are checked, as
    they do in production; the file keeps its owner and mode."""
    path.write_text(hash_password(PASSWORD, iterations=300000) + "\n")


def checked(db, addr):
    """How many sign-ins from addr had their password checked (the CGI
    records each one it checked in admin_login_attempts)."""
    return int(db.value(f"SELECT count(*) FROM admin_login_attempts WHERE addr = '{addr}'"))


def assert_burst_locked_out(statuses, retry_afters, db, addr):
    """40 concurrent wrong passwords from addr: at most five checked (401),
    every other one refused at once (429) with the window's remaining time."""
    assert checked(db, addr) <= 5, statuses
    assert statuses.count(401) == checked(db, addr), statuses
    assert statuses.count(429) == len(statuses) - statuses.count(401), statuses
    assert statuses.count(429) >= 35, statuses
    assert retry_afters and all(1 <= s <= 900 for s in retry_afters), retry_afters
