"""A throw-away tollgate stack for a test module (standard library only):
tests/fake-ollama as the upstream, tollgate-authz, tollgate-relay, and a web
server (Apache, lighttpd, Caddy or nginx) configured from the real
examples/<server> files, all on 127.0.0.1 free ports, with config, sockets
and logs in one directory under $TG_TMP.

    stack = Stack(database, web="nginx", conf={"max_body_bytes": "65536"})
    stack.start()          # StackError with the logs if anything fails
    stack.tg.ok("key", "create", "--name", "k")  # the CLI, same config
    stack.http("POST", "/api/chat", body, headers)
    stack.stop()           # SIGTERM each process by PID (SIGKILL after 10 s)

The web server's configuration is written by tg_web_render in script/web.sh,
the renderer script/server uses too. More front ends on the same programs:
stack.add_web("caddy") returns its port."""
import http.client
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import tempfile
import time

import leaks
from conftest import BUILD, TOP, Tollgate

FAKE = os.path.join(TOP, "tests", "fake-ollama", "fake-ollama")
AUTHZ = os.path.join(BUILD, "authz", "tollgate-authz")
RELAY = os.path.join(BUILD, "relay", "tollgate-relay")
WEB_SERVERS = ("apache", "lighttpd", "caddy", "nginx")
ADMIN_CGI = os.path.join(BUILD, "admin-cgi", "tollgate-admin.cgi")
START_TIMEOUT = 20


class StackError(Exception):
    pass


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, so a
    killed pytest leaves no stack behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns something true; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.header_list = headers  # [(name, value)] as received
        self.headers = {}
        for k, v in headers:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body

    def json(self):
        return json.loads(self.body)

    def lines(self):
        return [json.loads(l) for l in self.body.decode().splitlines() if l.strip()]

    def sse(self):
        """The data payloads of an SSE body, in order ("[DONE]" kept as is)."""
        out = []
        for event in self.body.decode().split("\n\n"):
            data = [l[5:].lstrip(" ") for l in event.split("\n") if l.startswith("data:")]
            if data:
                out.append("\n".join(data))
        return out

    def __repr__(self):
        return f"<Response {self.status} {self.header_list} {self.body[:400]!r}>"


class RawStream:
    """An HTTP/1.1 request over a plain socket whose response body is read
    piece by piece as it arrives (chunked or not), with arrival times."""

    def __init__(self, port, method, path, body=None, headers=None, timeout=30):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        hdrs = {"Host": f"127.0.0.1:{port}", "Connection": "close"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            hdrs["Content-Length"] = str(len(body))
        hdrs.update(headers or {})
        req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.t0 = time.monotonic()
        self.sock.sendall(req.encode() + (body or b""))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            if not self._recv():
                raise ConnectionError("connection closed before the response headers")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.header_list = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
        self.headers = {k.lower(): v for k, v in self.header_list}
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.done = False

    def _recv(self):
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def pieces(self):
        """Yields (seconds since the request, bytes) as body data arrives."""
        while not self.done:
            if not self.chunked:
                if self.buf:
                    data, self.buf = self.buf, b""
                    yield time.monotonic() - self.t0, data
                if not self._recv():
                    self.done = True
                continue
            while b"\r\n" not in self.buf:
                if not self._recv():
                    raise ConnectionError("connection closed inside a chunked body")
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                if not self._recv():
                    raise ConnectionError("connection closed inside a chunk")
                size_line, rest = self.buf.split(b"\r\n", 1)
            self.buf = rest[size + 2:]
            if size == 0:
                self.done = True
                return
            yield time.monotonic() - self.t0, rest[:size]

    def lines(self, sep=b"\n"):
        """Yields (seconds, record) for each complete line (or, with
        sep=b"\\n\\n", each SSE event), timed when its last byte arrived."""
        pending = b""
        for t, data in self.pieces():
            pending += data
            while sep in pending:
                rec, pending = pending.split(sep, 1)
                yield t, rec
        if pending:
            yield time.monotonic() - self.t0, pending

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Stack:
    def __init__(self, db, *, web="apache", fake=True, upstream=None, conf=None, name="stack",
                 admin=False, every_web=False):
        base = os.environ.get("TG_TMP") or tempfile.gettempdir()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{name}.", dir=base))
        # The web server's workers run as nobody when we are root: they must
        # reach the relay socket below this directory.
        self.dir.chmod(0o755)
        self.db = db
        self.name = name
        self.with_fake = fake
        self.upstream = upstream
        self.extra_conf = dict(conf or {})
        self.web = web
        self.port = free_port()
        self.ports = {web: self.port}   # every front end started, by server
        self.authz_port = free_port()
        self.authz_addr = f"127.0.0.1:{self.authz_port}"
        self.run_dir = self.dir / "run"
        self.relay_sock = str(self.run_dir / "relay.sock")
        self.fake_port = None
        self.fake_record = self.dir / "fake-requests.jsonl"
        self.procs = {}   # name -> Popen, in start order
        self.exit_codes = {}
        self.tg = None
        self.every_web = every_web  # a front end of each server, one set of programs
        self.admin = admin  # also serve tollgate-admin.cgi at /admin
        leaks.STACKS.append(self)

    # ---- logs --------------------------------------------------------------

    def log_files(self):
        names = {"fake-ollama": self.dir / "fake-ollama.log",
                 "fake-ollama record": self.fake_record,
                 "tollgate-authz": self.dir / "authz.log",
                 "tollgate-relay": self.dir / "relay.log",
                 }
        for web in self.ports:
            names[f"{web} (stderr)"] = self.dir / f"{web}.out"
            names[f"{web} error.log"] = self.dir / web / "error.log"
            names[f"{web} access.log"] = self.dir / web / "access.log"
            names[f"fcgiwrap ({web})"] = self.dir / f"{web}.fcgiwrap.log"
        return {k: v for k, v in names.items() if v.exists()}

    def log_text(self):
        """Every log of the stack, concatenated (to search for secrets)."""
        return "\n".join(p.read_text(errors="replace") for p in self.log_files().values())

    def mark(self):
        return {name: p.stat().st_size for name, p in self.log_files().items()}

    def report(self, since=None, max_lines=80):
        """What each log gained since mark() (or its tail), for failure reports."""
        fronts = ", ".join(f"{w} 127.0.0.1:{p}" for w, p in self.ports.items())
        out = [f"stack {self.name} in {self.dir} ({fronts}, "
               f"authz {self.authz_addr}, relay {self.relay_sock}, fake {self.fake_port})"]
        for name, p in self.log_files().items():
            with open(p, "rb") as f:
                f.seek((since or {}).get(name, 0))
                text = f.read().decode(errors="replace")
            lines = text.splitlines()
            if not lines:
                continue
            cut = len(lines) > max_lines
            out.append(f"----- {name} ({p}){' last %d lines' % max_lines if cut else ''}")
            out.extend(lines[-max_lines:])
        return "\n".join(out)

    # ---- processes ---------------------------------------------------------

    def _spawn(self, name, argv, log, **kw):
        f = open(log, "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=kw.pop("stdout", f), stderr=f,
                                 cwd=self.dir, start_new_session=True, preexec_fn=_die_with_parent, **kw)
        finally:
            f.close()
        self.procs[name] = p
        return p

    def _wait(self, name, ready, what):
        p = self.procs[name]
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if p.poll() is not None:
                raise StackError(f"{name} exited with status {p.returncode} before {what}\n" + self.report())
            if time.monotonic() > deadline:
                raise StackError(f"{name}: no {what} after {START_TIMEOUT}s\n" + self.report())
            time.sleep(0.05)

    @staticmethod
    def _accepts(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    @staticmethod
    def _accepts_unix(path):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(1)
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def start_program(self, name, **overrides):
        """Starts tollgate-authz or tollgate-relay (again, after stop_process)
        and waits until it listens. Overrides (config key = value) go into a
        configuration file of their own, for this process only."""
        conf = self.tg.conf
        if overrides:
            settings = {}
            for line in self.tg.conf.read_text().splitlines():
                k, _, v = line.partition("=")
                settings[k.strip()] = v.strip()
            settings.update({k: str(v) for k, v in overrides.items()})
            conf = self.dir / f"{name}.override.conf"
            conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if name == "tollgate-authz":
            self._spawn(name, [AUTHZ, "-c", str(conf)], self.dir / "authz.log")
            self._wait(name, lambda: self._accepts(self.authz_port), f"listener on {self.authz_addr}")
        elif name == "tollgate-relay":
            self._spawn(name, [RELAY, "-c", str(conf)], self.dir / "relay.log")
            self._wait(name, lambda: self._accepts_unix(self.relay_sock), f"socket {self.relay_sock}")
        else:
            raise ValueError(name)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        missing = [p for p in (AUTHZ, RELAY) if not os.access(p, os.X_OK)]
        if missing:
            raise StackError("not built: " + ", ".join(missing) +
                             f" (TG_BUILD_DIR={BUILD}; script/test builds them)")
        self.run_dir.mkdir(mode=0o755)
        self.run_dir.chmod(0o755)

        if self.with_fake:
            p = self._spawn("fake-ollama", [FAKE, "--port", "0", "--record", str(self.fake_record)],
                            self.dir / "fake-ollama.log", stdout=subprocess.PIPE)
            r, _, _ = select.select([p.stdout], [], [], START_TIMEOUT)
            line = p.stdout.readline().decode() if r else ""
            if not line.startswith("listening "):
                raise StackError(f"fake-ollama did not start: {line!r}\n" + self.report())
            self.fake_port = int(line.rsplit(":", 1)[1])
            p.stdout.close()
            self.upstream = self.upstream or f"http://127.0.0.1:{self.fake_port}"

        settings = {"upstream": self.upstream or "http://127.0.0.1:9",
                    "authz_listen": self.authz_addr, "relay_listen": self.relay_sock,
                    "threads": "16", "log_level": "info", "time_zone": "UTC",
                    "spool_dir": str(self.dir / "spool")}
        if os.getuid() == 0:
            # The relay socket is 0660: the web servers' workers (nobody:
            # nogroup, script/web.sh) connect as its group.
            settings["socket_group"] = "nogroup"
        settings.update(self.extra_conf)
        self.settings = settings
        self.tg = Tollgate(self.dir, self.db, **settings)
        self.tg.ok("migrate")

        self.start_program("tollgate-authz")
        self.start_program("tollgate-relay")

        self._start_web(self.web, self.port)
        for web in WEB_SERVERS:
            if self.every_web and web != self.web:
                self.add_web(web)

    def _start_web(self, web, port):
        if web not in WEB_SERVERS:
            raise ValueError(web)
        web_sh = os.path.join(TOP, "script", "web.sh")
        env = dict(os.environ, TOP=TOP)
        if self.admin:  # the admin pages at /admin too
            env.update(TG_ADMIN_CGI=ADMIN_CGI, TG_ADMIN_CONFIG=str(self.tg.conf))
            self._admin_files_for_nobody()
        have = subprocess.run(["sh", "-c", '. "$1" && command -v "$(tg_web_bin "$2")"', "sh", web_sh, web],
                              env=env, capture_output=True, text=True)
        if have.returncode != 0:
            raise StackError(f"{web} not found: script/bootstrap installs it\n{have.stderr}")
        wdir = self.dir / web
        render = subprocess.run(
            ["sh", "-c", '. "$0" && tg_web_render "$@" && tg_web_check "$1" "$2"', web_sh,
             web, str(wdir), str(port), self.authz_addr, self.relay_sock],
            env=env, capture_output=True, text=True)
        if render.returncode != 0:
            raise StackError(f"{web} configuration refused:\n{render.stdout}{render.stderr}")
        if self.admin and subprocess.run(["sh", "-c", '. "$0" && tg_web_fcgiwrap "$1"', web_sh, web],
                                         env=env).returncode == 0:
            # Caddy and nginx run the CGI through fcgiwrap, one per front end.
            name = f"fcgiwrap ({web})"
            self._spawn(name, ["sh", "-c", '. "$0" && tg_web_fcgiwrap_exec "$1"', web_sh, str(wdir)],
                        self.dir / f"{web}.fcgiwrap.log", env=env)
            self._wait(name, lambda: subprocess.run(
                ["sh", "-c", '. "$0" && tg_web_fcgiwrap_ready "$1"', web_sh, str(wdir)]).returncode == 0,
                f"socket {wdir}/fcgiwrap.sock")
        self._spawn(web, ["sh", "-c", '. "$0" && tg_web_exec "$@"', web_sh, web, str(wdir)],
                    self.dir / f"{web}.out", env=env)
        self._wait(web, lambda: self._accepts(port), f"listener on 127.0.0.1:{port}")

    def add_web(self, web):
        """Starts another front end on the same programs; returns its port."""
        port = free_port()
        self.ports[web] = port
        try:
            self._start_web(web, port)
        except BaseException:
            self.stop_process(web)
            self.stop_process(f"fcgiwrap ({web})")
            raise
        return port

    def _admin_files_for_nobody(self):
        """As root, Apache and lighttpd run the CGI as nobody: it must read
        the secret and the admin credential files (mode 600 stays: owner
        nobody; fcgiwrap, for Caddy and nginx, runs as root here)."""
        if os.getuid() != 0:
            return
        import pwd
        nobody = pwd.getpwnam("nobody")
        for key in ("secret_file", "admin_password_file", "master_key_file"):
            path = key == "secret_file" and str(self.tg.secret) or self.settings.get(key)
            if path and os.path.exists(path):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)

    def stop_process(self, name, timeout=10):
        """SIGTERM by PID, SIGKILL after timeout; returns the exit status."""
        p = self.procs.get(name)
        if p is None:
            return self.exit_codes.get(name)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.exit_codes[name] = "killed after SIGTERM was ignored for %ds" % timeout
                del self.procs[name]
                return self.exit_codes[name]
        self.exit_codes[name] = p.returncode
        del self.procs[name]
        return p.returncode

    def stop(self):
        for name in [*self.ports, *(f"fcgiwrap ({w})" for w in self.ports),
                     "tollgate-relay", "tollgate-authz", "fake-ollama"]:
            self.stop_process(name)
        return self.exit_codes

    # ---- talking to it -----------------------------------------------------

    def http(self, method, path, body=None, headers=None, port=None, timeout=60):
        """One request through the web server (or to `port`); the whole response."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        hdrs = {}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def stream(self, method, path, body=None, headers=None, timeout=30, port=None):
        return RawStream(port or self.port, method, path, body, headers, timeout)

    def fake_requests(self):
        """What fake-ollama received so far (its /_fake/requests)."""
        r = self.http("GET", "/_fake/requests", port=self.fake_port)
        assert r.status == 200, r
        return r.json()

    def fake(self, method, path, body=None, headers=None):
        """A request straight to fake-ollama (what Ollama itself would answer)."""
        return self.http(method, path, body, headers, port=self.fake_port)
