"""Shared fixtures: the throw-away PostgreSQL that script/test started, a
fresh database per test, and a runner for the `tollgate` CLI."""
import os
import re
import subprocess
import uuid

import pytest

import leaks

TOP = os.environ.get("TG_TOP", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("TG_BUILD_DIR", os.path.join(TOP, "build", "test"))
PGHOST = os.environ.get("TG_TEST_PGHOST")
PGPORT = os.environ.get("TG_TEST_PGPORT")
PGBIN = sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
    key=lambda p: int(p.split("/")[-2]),
)[-1]


def pytest_configure(config):
    if not PGHOST or not PGPORT:
        raise pytest.UsageError("run the integration tests through script/test (it starts PostgreSQL)")


def psql(dbname, sql, *args):
    """Runs one statement through psql; returns rows as lists of strings."""
    cmd = [os.path.join(PGBIN, "psql"), "-h", PGHOST, "-p", PGPORT, "-U", "tollgate",
           "-d", dbname, "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines()]


class Database:
    def __init__(self, name):
        self.name = name
        self.conninfo = f"host={PGHOST} port={PGPORT} user=tollgate dbname={name}"

    def rows(self, sql):
        return psql(self.name, sql)

    def value(self, sql):
        rows = self.rows(sql)
        return rows[0][0] if rows else None


def create_database():
    """A new, empty database (for fixtures wider than one test)."""
    name = "t_" + uuid.uuid4().hex[:12]
    psql("postgres", f"CREATE DATABASE {name}")
    return Database(name)


def drop_database(db):
    psql("postgres", f"DROP DATABASE {db.name} WITH (FORCE)")


@pytest.fixture(scope="module")
def db():
    """A database of the test module's own."""
    d = create_database()
    yield d
    drop_database(d)


# Bookkeeping that must hold after any test (tests/invariants.sql): each of
# its queries returns the rows that break an invariant.
INVARIANTS = open(os.path.join(TOP, "tests", "invariants.sql")).read()


@pytest.fixture
def database():
    db = create_database()
    yield db
    drop_database(db)


class Tollgate:
    """The CLI with a configuration of its own."""

    def __init__(self, tmp_path, db, **conf):
        self.dir = tmp_path
        self.db = db
        self.secret = tmp_path / "secret"
        self.secret.write_text(uuid.uuid4().hex + uuid.uuid4().hex + "\n")
        self.secret.chmod(0o600)
        self.conf = tmp_path / "tollgate.conf"
        settings = {"db": db.conninfo, "secret_file": str(self.secret),
                    "sql_dir": os.path.join(TOP, "sql"), "db_connect_timeout": "2"}
        settings.update(conf)
        # A list value is a repeatable key: one line per item.
        self.conf.write_text("".join(f"{k} = {x}\n" for k, v in settings.items()
                                     for x in (v if isinstance(v, list) else [v])))

    def run(self, *args, env=None, timeout=30):
        e = dict(os.environ, TOLLGATE_CONFIG=str(self.conf))
        e.update(env or {})
        r = subprocess.run([os.path.join(BUILD, "cli", "tollgate"), *args],
                           capture_output=True, text=True, env=e, timeout=timeout)
        if r.returncode == 0:
            leaks.remember_cli(args, r.stdout)
        return r

    def ok(self, *args):
        r = self.run(*args)
        assert r.returncode == 0, f"tollgate {' '.join(args)}: {r.returncode}\n{r.stderr}"
        return r


# The web servers tollgate is tested behind; a module-scoped fixture over
# them runs a whole end-to-end module once per server (ids name each).
WEB_SERVERS = ["apache", "lighttpd", "caddy", "nginx"]


@pytest.fixture(scope="module", params=WEB_SERVERS)
def web(request):
    return request.param


@pytest.fixture
def tg(tmp_path, database):
    t = Tollgate(tmp_path, database)
    t.ok("migrate")
    return t


# A test that uses a tollgate stack (tests/integration/stack.py) and fails gets
# what the stack's logs gained during the test attached to its report.
def _stacks(item):
    return [(n, v) for n, v in getattr(item, "funcargs", {}).items()
            if hasattr(v, "report") and hasattr(v, "mark") and hasattr(v, "log_files")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when == "setup" and rep.passed:
        item._tg_marks = {n: s.mark() for n, s in _stacks(item)}
    elif rep.failed:
        marks = getattr(item, "_tg_marks", {})
        for n, s in _stacks(item):
            try:
                rep.sections.append((f"tollgate stack '{n}' logs", s.report(marks.get(n))))
            except OSError as e:
                rep.sections.append((f"tollgate stack '{n}' logs", f"unreadable: {e}"))


def pytest_terminal_summary(terminalreporter):
    """One line naming each web server with how its tests went (just above
    pytest's own summary line)."""
    counts = {w: {} for w in WEB_SERVERS}
    for outcome in ("passed", "failed", "error", "skipped"):
        for rep in terminalreporter.stats.get(outcome, []):
            m = re.search(r"\[(.*)\]$", getattr(rep, "nodeid", ""))
            found = [w for w in WEB_SERVERS if m and w in m.group(1).split("-")]
            if found:
                c = counts[found[0]]
                c[outcome] = c.get(outcome, 0) + 1
    if any(counts.values()):
        terminalreporter.write_line("end to end, per web server: " + "; ".join(
            f"{w} " + ", ".join(f"{n} {o}" for o, n in c.items()) for w, c in counts.items() if c))
