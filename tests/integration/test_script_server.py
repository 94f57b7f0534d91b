"""script/server as a user runs it: in a terminal, in front of an Ollama
(fake-ollama), then Ctrl-C; and as a service manager runs it: no terminal,
then SIGTERM. It must serve, and stopping it must leave nothing
behind: no web server, program, PostgreSQL or sleeper of its session.
Meanwhile it keeps the stack up: a relay that dies is started again, a
sweep that fails does not end the sweeps, and ending its whole process
group (which PostgreSQL, daemonised by pg_ctl, is not in) still stops
PostgreSQL."""
import os
import pty
import select
import signal
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import BUILD, TOP
from stack import FAKE, free_port, wait_for


def read_until(fd, text, timeout):
    out, deadline = b"", time.monotonic() + timeout
    while text.encode() not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {timeout}s:\n{out.decode(errors='replace')}"
        if select.select([fd], [], [], min(left, 1.0))[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            assert chunk, f"the terminal closed before {text!r}:\n{out.decode(errors='replace')}"
            out += chunk
    return out.decode(errors="replace")


def processes(pred):
    """(pid, cmdline) of live processes whose /proc/PID/stat fields and
    cmdline satisfy pred(fields, cmdline)."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and pred(fields, cmd):
            found.append((int(d), cmd))
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_script_server_serves_and_stopping_it_stops_everything(how):
    # Where PostgreSQL's user can reach it (pytest's own tmp is root's only).
    top = pathlib.Path(tempfile.mkdtemp(prefix="script-server.",
                                        dir=os.environ.get("TG_TMP") or tempfile.gettempdir()))
    top.chmod(0o755)
    run = top / "run"
    fake_port, port = free_port(), free_port()
    fake = subprocess.Popen([FAKE, "--port", str(fake_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    env = dict(os.environ, PORT=str(port), OLLAMA_URL=f"http://127.0.0.1:{fake_port}",
               TOLLGATE_RUN=str(run), TOLLGATE_BUILD=BUILD)
    argv = [os.path.join(TOP, "script", "server")]
    if how == "ctrl-c":  # in a terminal: a session of its own with the pty
        pid, fd = pty.fork()
        if pid == 0:
            # As from a terminal's shell: SIGINT not ignored, even when this
            # suite runs in the background (which ignores it, and a shell
            # cannot trap a signal ignored when it started).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(argv[0], argv, env)
    else:  # under a service manager: no terminal, so no SIGHUP at the end
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        pid, fd = proc.pid, os.dup(proc.stdout.fileno())
        proc.stdout.close()
    sid = str(pid)  # the server's shell leads a session of its own
    try:
        out = read_until(fd, "Ctrl-C stops everything", 300)
        assert f"http://127.0.0.1:{port}/" in out and "admin password" in out, out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            assert r.status == 200 and b'"database":"up"' in r.read()
        in_session = processes(lambda f, c: f[3] == sid)  # stat field 6: the session
        assert len(in_session) >= 4, in_session  # the shell, authz, relay, web server, ...
        assert processes(lambda f, c: str(run) in c and "postgres" in c), "no PostgreSQL under run/"

        if how == "ctrl-c":
            os.write(fd, b"\x03")  # as the terminal sends it: SIGINT to the group
        else:
            os.kill(pid, signal.SIGTERM)  # as a service manager stops it
        read_until(fd, "server: stopped", 60)
        _, status = os.waitpid(pid, 0)
        pid = None
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        wait_for(lambda: not processes(lambda f, c: f[3] == sid or str(run) in c),
                 timeout=10, what="every process of the server's session to end")
    finally:
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        os.close(fd)
        fake.terminate()
        fake.wait()
        shutil.rmtree(top, ignore_errors=True)


def health_ok(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return r.status == 200 and b'"database":"up"' in r.read()
    except (OSError, urllib.error.URLError):
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_script_server_restarts_the_relay_keeps_sweeping_and_a_group_kill_stops_pg(sig):
    top = pathlib.Path(tempfile.mkdtemp(prefix="script-server.",
                                        dir=os.environ.get("TG_TMP") or tempfile.gettempdir()))
    top.chmod(0o755)
    run = top / "run"
    fake_port, port = free_port(), free_port()
    fake = subprocess.Popen([FAKE, "--port", str(fake_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    env = dict(os.environ, PORT=str(port), OLLAMA_URL=f"http://127.0.0.1:{fake_port}",
               TOLLGATE_RUN=str(run), TOLLGATE_BUILD=BUILD, TOLLGATE_SWEEP_EVERY="1")
    proc = subprocess.Popen([os.path.join(TOP, "script", "server")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    pid, fd = proc.pid, os.dup(proc.stdout.fileno())
    proc.stdout.close()
    pg = lambda: processes(lambda f, c: str(run) in c and "postgres" in c)  # noqa: E731
    try:
        read_until(fd, "Ctrl-C stops everything", 300)
        assert health_ok(port)

        # A relay killed outright comes back, and /health answers again.
        relay = processes(lambda f, c: "tollgate-relay" in c and str(run) in c)
        assert len(relay) == 1, relay
        os.kill(relay[0][0], signal.SIGKILL)
        wait_for(lambda: [p for p, _ in processes(lambda f, c: "tollgate-relay" in c
                                                   and str(run) in c)
                          if p != relay[0][0]], timeout=30, what="a new relay")
        wait_for(lambda: health_ok(port), timeout=30, what="/health through the new relay")
        assert "relay exited (status 137)" in (run / "relay.log").read_text()

        # A sweep that fails (its configuration gone for a moment) is
        # logged, and the sweeps after it still run.
        sweeps = run / "sweep.log"
        wait_for(lambda: sweeps.exists() and "sweep: reclaimed" in sweeps.read_text(),
                 timeout=30, what="a first sweep")
        conf = run / "tollgate.conf"
        conf.rename(run / "tollgate.conf.away")
        try:
            wait_for(lambda: "sweep failed" in sweeps.read_text(), timeout=30,
                     what="a failed sweep")
        finally:
            (run / "tollgate.conf.away").rename(conf)
        after = lambda: sweeps.read_text().rsplit("sweep failed", 1)[1]  # noqa: E731
        wait_for(lambda: "sweep: reclaimed" in after(), timeout=30,
                 what="a sweep after the failed one")

        # The whole process group ended at once: PostgreSQL is not in it,
        # yet it stops too.
        assert pg(), "no PostgreSQL under run/"
        os.killpg(pid, sig)
        os.waitpid(pid, 0)
        pid = None
        wait_for(lambda: not pg(), timeout=60, what="PostgreSQL under run/ to stop")
    finally:
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        os.close(fd)
        fake.terminate()
        fake.wait()
        for p, _ in pg():  # left by a failure above: stop it, by PID
            os.kill(p, signal.SIGTERM)
        shutil.rmtree(top, ignore_errors=True)
