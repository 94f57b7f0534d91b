"""Operator commands (issue 10): usage and event export, sweep --retain,
and import from other proxies (the FastAPI seed's config.py, Ollaguard's
storage.json, CSV) with the imported keys working through the real stack."""
import csv
import hashlib
import hmac
import io
import json
import uuid

import pytest

from conftest import INVARIANTS, Tollgate
from stack import Stack, free_port


def key_hash(tg, key):
    secret = tg.secret.read_bytes().strip()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def secret_hmac_matches(tg, name, key):
    return tg.db.value(f"SELECT key_hash FROM api_keys WHERE name = '{name}'") == key_hash(tg, key)


def new_key(tg, name, *flags):
    return tg.ok("key", "create", "--name", name, *flags).stdout.splitlines()[-1]


def add_event(tg, name, at, model="llama3", prompt=10, completion=5, endpoint="/api/chat"):
    tg.db.rows(f"INSERT INTO usage_events (at, key_id, model, endpoint, prompt_tokens, "
               f"completion_tokens, status, http_status) SELECT '{at}'::timestamptz, id, "
               f"'{model}', '{endpoint}', {prompt}, {completion}, 'ok', 200 FROM api_keys "
               f"WHERE name = '{name}'")


@pytest.fixture
def tz_tg(tmp_path, database):
    t = Tollgate(tmp_path, database, time_zone="Europe/Berlin")
    t.ok("migrate")
    return t


# ---- usage and events ------------------------------------------------------
def test_usage_by_day_uses_the_configured_time_zone_and_sums_exactly(tz_tg):
    tg = tz_tg
    new_key(tg, "alice")
    new_key(tg, "bob")
    add_event(tg, "alice", "2026-03-01 23:30:00+00")  # 2 March in Berlin
    add_event(tg, "alice", "2026-03-01 12:00:00+00", prompt=1, completion=2)
    add_event(tg, "bob", "2026-03-02 08:00:00+00", prompt=100, completion=0)
    rows = json.loads(tg.ok("usage", "--by", "day", "--json").stdout)
    assert rows == [
        {"key": "alice", "day": "2026-03-01", "requests": 1, "prompt_tokens": 1,
         "completion_tokens": 2, "tokens": 3},
        {"key": "alice", "day": "2026-03-02", "requests": 1, "prompt_tokens": 10,
         "completion_tokens": 5, "tokens": 15},
        {"key": "bob", "day": "2026-03-02", "requests": 1, "prompt_tokens": 100,
         "completion_tokens": 0, "tokens": 100}]
    only = json.loads(tg.ok("usage", "--key", "alice", "--since", "2026-03-02",
                            "--until", "2026-03-02", "--json").stdout)
    assert only == [{"key": "alice", "requests": 1, "prompt_tokens": 10,
                     "completion_tokens": 5, "tokens": 15}]
    months = list(csv.reader(io.StringIO(tg.ok("usage", "--by", "month", "--csv").stdout)))
    assert months[0] == ["key", "month", "requests", "prompt_tokens", "completion_tokens", "tokens"]
    assert months[1] == ["alice", "2026-03", "2", "11", "7", "18"]
    table = tg.ok("usage", "--by", "model").stdout.splitlines()
    assert table[0].split() == ["key", "model", "requests", "prompt_tokens",
                                "completion_tokens", "tokens"]
    assert table[1].split() == ["alice", "llama3", "2", "11", "7", "18"]


def test_relative_since_counts_back_from_now(tg):
    new_key(tg, "k")
    tg.db.rows("INSERT INTO usage_events (at, key_id, endpoint, status, prompt_tokens) "
               "SELECT now() - interval '3 days', id, '/api/chat', 'ok', 7 FROM api_keys")
    tg.db.rows("INSERT INTO usage_events (at, key_id, endpoint, status, prompt_tokens) "
               "SELECT now() - interval '2 hours', id, '/api/chat', 'ok', 1 FROM api_keys")
    assert json.loads(tg.ok("usage", "--since", "24h", "--json").stdout)[0]["prompt_tokens"] == 1
    assert json.loads(tg.ok("usage", "--since", "7d", "--json").stdout)[0]["prompt_tokens"] == 8
    assert json.loads(tg.ok("usage", "--until", "2d", "--json").stdout)[0]["prompt_tokens"] == 7


def test_events_csv_quotes_per_rfc_4180_and_defuses_formulas(tg):
    new_key(tg, "k")
    add_event(tg, "k", "2026-01-05 10:00:00+00", model='we,ird "model"\nx')
    add_event(tg, "k", "2026-01-06 10:00:00+00", model="=HYPERLINK(1)")
    out = tg.ok("events", "--csv").stdout
    assert '"we,ird ""model""\nx"' in out
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[0][:4] == ["id", "time", "key", "model"]
    assert rows[1][3] == 'we,ird "model"\nx' and rows[2][3] == "'=HYPERLINK(1)"
    assert len(rows) == 3
    js = json.loads(tg.ok("events", "--json", "--since", "2026-01-06").stdout)
    assert [e["model"] for e in js] == ["=HYPERLINK(1)"]
    assert js[0]["prompt_tokens"] == 10 and js[0]["http_status"] == 200


def test_events_export_pages_through_more_than_one_batch(tg):
    new_key(tg, "k")
    tg.db.rows("INSERT INTO usage_events (key_id, endpoint, status, prompt_tokens) "
               "SELECT (SELECT id FROM api_keys), '/api/chat', 'ok', g FROM generate_series(1, 12001) g")
    rows = json.loads(tg.ok("events", "--json").stdout)
    assert len(rows) == 12001
    assert sorted(r["prompt_tokens"] for r in rows) == list(range(1, 12002))
    lines = tg.ok("events", "--csv").stdout.count("\n")
    assert lines == 12002


def test_report_mistakes_exit_1_with_the_reason(tg):
    for args, msg in [(["usage", "--by", "week"], "--by: use day, month or model"),
                      (["usage", "--key", "nobody"], "no key named 'nobody'"),
                      (["usage", "--since", "yesterday-ish"], "--since/--until"),
                      (["events", "--by", "day"], "unknown or incomplete option"),
                      (["sweep", "--retain", "90"], "--retain: want days or hours")]:
        r = tg.run(*args)
        assert r.returncode == 1 and msg in r.stderr, (args, r.stderr)


def test_sweep_retain_prunes_old_events_quota_rows_and_sessions(tmp_path, database):
    (tmp_path / "spool").mkdir()
    tg = Tollgate(tmp_path, database, spool_dir=str(tmp_path / "spool"))
    tg.ok("migrate")
    new_key(tg, "k")
    add_event(tg, "k", "2020-01-01 00:00:00+00")
    tg.db.rows("INSERT INTO usage_events (key_id, endpoint, status) SELECT id, '/api/chat', 'ok' FROM api_keys")
    tg.db.rows("INSERT INTO quota_usage (key_id, period, period_start, tokens_used) "
               "SELECT id, 'day', '2020-01-01', 5 FROM api_keys UNION ALL "
               "SELECT id, 'day', date_trunc('day', now()), 5 FROM api_keys")
    tg.db.rows("INSERT INTO admin_sessions (id, actor, created_at, expires_at) VALUES "
               f"('{uuid.uuid4().hex}', 'a', '2020-01-01', '2020-01-02'), "
               f"('{uuid.uuid4().hex}', 'a', now(), now() + interval '1 hour')")
    out = tg.ok("sweep", "--retain", "90d").stdout
    assert "removed 1 usage event(s) older than 90 days" in out
    assert "removed 1 quota row(s) older than 90 days" in out
    assert "removed 1 admin session(s) older than 90 days" in out
    assert tg.db.value("SELECT count(*) FROM usage_events") == "1"
    assert tg.db.value("SELECT count(*) FROM quota_usage") == "1"
    assert tg.db.value("SELECT count(*) FROM admin_sessions") == "1"
    assert "removed 0 usage event(s)" in tg.ok("sweep", "--retain", "90d").stdout


# ---- import ---------------------------------------------------------------
FASTAPI = '''# seed config
import os

OLLAMA_URL = os.getenv("OLLAMA_URL", "http://localhost:11434")
VALID_API_KEYS = {
    "fa-key-0001-alice": "alice",  # the first
    'fa-key-0002-bob': 'bob',
    # a comment between entries
    "fa-key-0003-alice2": "alice",
    "fa-key-0004-carol": 'car\\'ol',
}
'''


def test_import_fastapi_config_round_trip_and_idempotent(tg, tmp_path):
    f = tmp_path / "config.py"
    f.write_text(FASTAPI)
    out = tg.ok("import", "--from", "fastapi", str(f)).stdout
    assert "import: 4 imported, 0 skipped" in out
    assert "fa-key" not in out
    names = [r[0] for r in tg.db.rows("SELECT name FROM api_keys ORDER BY id")]
    assert names == ["alice", "bob", "alice-2", "car'ol"]
    assert secret_hmac_matches(tg, "alice", "fa-key-0001-alice")
    assert secret_hmac_matches(tg, "alice-2", "fa-key-0003-alice2")
    assert secret_hmac_matches(tg, "car''ol", "fa-key-0004-carol")
    assert tg.db.value("SELECT bool_and(legacy) FROM api_keys") == "t"
    assert "fa-key-0001" not in tg.db.value("SELECT display_prefix FROM api_keys WHERE name = 'alice'")
    again = tg.ok("import", "--from", "fastapi", str(f)).stdout
    assert "import: 0 imported, 4 skipped" in again
    assert "skipped 'alice' (line 6): key already imported" in again
    assert tg.db.value("SELECT count(*) FROM api_keys") == "4"
    assert tg.db.value("SELECT count(*) FROM admin_audit WHERE action = 'key.import'") == "4"


@pytest.mark.parametrize("text,line,what", [
    ('VALID_API_KEYS = {\n  "abcdefgh1": get_user(),\n}\n', 2, "a quoted string"),
    ('VALID_API_KEYS = {\n  "abcdefgh1": "a"\n  "abcdefgh2": "b"}\n', 3, "',' or '}'"),
    ('VALID_API_KEYS = {\n\n  f"abcdefgh1": "a"}\n', 3, "a quoted string"),
    ('VALID_API_KEYS = dict(a="b")\n', 1, "'{'"),
])
def test_import_fastapi_refuses_what_it_cannot_read_with_a_line_number(tg, tmp_path, text, line, what):
    f = tmp_path / "config.py"
    f.write_text(text)
    r = tg.run("import", "--from", "fastapi", str(f))
    assert r.returncode == 1
    assert f"line {line}: {what} expected" in r.stderr and "nothing was imported" in r.stderr
    assert tg.db.value("SELECT count(*) FROM api_keys") == "0"


def test_import_refuses_keys_that_are_too_short_or_shaped_like_ours(tg, tmp_path):
    ours = new_key(tg, "native")
    for bad in ["short", ours[:-1] + ("A" if ours[-1] != "A" else "B"), "has space in it"]:
        f = tmp_path / "k.csv"
        f.write_text(f'name,key\r\nx,"{bad}"\r\n')
        r = tg.run("import", "--from", "csv", str(f))
        assert r.returncode == 1 and "line 2 (x): not importable" in r.stderr, r.stderr
    assert tg.db.value("SELECT count(*) FROM api_keys") == "1"


def test_import_csv_takes_the_key_fields_from_the_header(tg, tmp_path):
    f = tmp_path / "keys.csv"
    f.write_text("name,key,tokens_day,rpm,models,scope\r\n"
                 "team a,csv-key-aaaaaaaa,1000,,\"llama3,qwen2.5\",infer\r\n"
                 "\r\n"
                 "ops,csv-key-bbbbbbbb,none,5,,admin\r\n")
    assert "2 imported" in tg.ok("import", "--from", "csv", str(f)).stdout
    a = json.loads(tg.ok("key", "show", "team a", "--json").stdout)
    assert a["tokens_day_limit"] == 1000 and a["rpm_limit"] is None
    assert a["allowed_models"] == ["llama3", "qwen2.5"]
    b = json.loads(tg.ok("key", "show", "ops", "--json").stdout)
    assert b["tokens_day_limit"] is None and b["rpm_limit"] == 5 and b["scope"] == "admin"
    assert secret_hmac_matches(tg, "ops", "csv-key-bbbbbbbb")
    assert "0 imported, 2 skipped" in tg.ok("import", "--from", "csv", str(f)).stdout
    f.write_text("name,key,colour\r\nx,csv-key-cccccccc,red\r\n")
    r = tg.run("import", "--from", "csv", str(f))
    assert r.returncode == 1 and "line 1: unknown column 'colour'" in r.stderr
    f.write_text("name,key,rpm\r\nx,csv-key-cccccccc,many\r\n")
    r = tg.run("import", "--from", "csv", str(f))
    assert r.returncode == 1 and "line 2: rpm: want a whole number" in r.stderr


OLLAGUARD = {"keys": ["og-0123456789abcdef0123456789abcdef",
                      {"key": "og-fedcba9876543210fedcba9876543210", "name": "lab"}]}


def test_import_ollaguard_round_trip(tg, tmp_path):
    f = tmp_path / "storage.json"
    f.write_text(json.dumps(OLLAGUARD))
    assert "2 imported" in tg.ok("import", "--from", "ollaguard", str(f)).stdout
    assert [r[0] for r in tg.db.rows("SELECT name FROM api_keys ORDER BY id")] == ["ollaguard", "lab"]
    assert secret_hmac_matches(tg, "lab", OLLAGUARD["keys"][1]["key"])
    assert "2 skipped" in tg.ok("import", "--from", "ollaguard", str(f)).stdout
    f.write_text(json.dumps({"og-map-key-0000000001": "carol"}))
    r = tg.run("import", "--from", "ollaguard", str(f))
    assert r.returncode == 1 and "no list of keys" in r.stderr
    f.write_text(json.dumps({"keys": {"og-map-key-0000000001": "carol"}}))
    assert "1 imported" in tg.ok("import", "--from", "ollaguard", str(f)).stdout
    assert secret_hmac_matches(tg, "carol", "og-map-key-0000000001")


# ---- imported keys through the stack --------------------------------------
@pytest.fixture(scope="module")
def stack(db):
    with Stack(db, name="ops") as s:
        yield s


def test_ollaguard_keys_work_through_tollgate_right_after_import(stack, tmp_path):
    f = tmp_path / "storage.json"
    f.write_text(json.dumps(OLLAGUARD))
    stack.tg.ok("import", "--from", "ollaguard", str(f))
    body = {"model": "llama3", "stream": False, "messages": [{"role": "user", "content": "hi"}]}
    for k in (OLLAGUARD["keys"][0], OLLAGUARD["keys"][1]["key"]):
        r = stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + k})
        assert r.status == 200, r
    assert stack.db.value("SELECT count(*) FROM usage_events e JOIN api_keys k ON k.id = e.key_id "
                          "WHERE k.name = 'lab'") == "1"
    stack.tg.ok("key", "disable", "lab")
    r = stack.http("POST", "/api/chat", body,
                   {"Authorization": "Bearer " + OLLAGUARD["keys"][1]["key"]})
    assert r.status == 403, r
    # a made-up key of legacy shape is unknown; a row with its hash that
    # was not imported (legacy false) is never matched by the legacy path
    fake = "og-not-imported-key-0000"
    n0 = len(stack.fake_requests())
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + fake}).status == 401
    stack.db.rows("INSERT INTO api_keys (name, key_hash, display_prefix) VALUES "
                  f"('planted-{uuid.uuid4().hex[:6]}', '{key_hash(stack.tg, fake)}', 'og')")
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + fake}).status == 401
    # too short or outside the alphabet: refused before any lookup
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer og-1"}).status == 401
    assert len(stack.fake_requests()) == n0
    assert stack.db.rows(INVARIANTS) == []


# ---- tollgate check --------------------------------------------------------
def check_line(r, what):
    return next((l for l in r.stdout.splitlines() if l.split()[:1] == [what]), "")


def test_check_is_all_well_against_the_running_stack(stack):
    r = stack.tg.run("check")
    assert r.returncode == 0, r.stdout + r.stderr
    for what in ("config", "secret", "database", "upstream", "spool"):
        assert check_line(r, what).split()[1] == "ok", r.stdout
    assert "all migrations applied" in check_line(r, "database")
    assert "(Ollama " in check_line(r, "upstream")
    assert check_line(r, "web")  # best effort, but always reported


def test_check_names_a_bad_configuration_value(tmp_path, database):
    tg = Tollgate(tmp_path, database, threads="lots")
    r = tg.run("check")
    line = check_line(r, "config")
    assert r.returncode == 2 and "FAIL" in line and "threads" in line and "tollgate.conf:" in line
    assert "-- fix: correct it in " + str(tg.conf) in line


@pytest.mark.parametrize("mode,says", [(0o644, "other users may read it"),
                                       (0o640, "the group may read it")])
def test_check_fails_a_secret_others_can_read(tg, mode, says):
    tg.secret.chmod(mode)
    r = tg.run("check")
    line = check_line(r, "secret")
    assert r.returncode == 2 and "FAIL" in line and says in line and "chmod 600" in line, r.stdout


def test_check_fails_when_the_database_is_down(tmp_path, database):
    port = free_port()
    tg = Tollgate(tmp_path, database)
    tg.conf.write_text(tg.conf.read_text().replace(database.conninfo,
                                                   f"host=127.0.0.1 port={port} user=tollgate dbname=x"))
    r = tg.run("check")
    line = check_line(r, "database")
    assert r.returncode == 2 and "FAIL" in line and "fix: start PostgreSQL or correct db =" in line, r.stdout


def test_check_fails_when_migrations_are_missing(tmp_path, database):
    tg = Tollgate(tmp_path, database)
    r = tg.run("check")
    line = check_line(r, "database")
    assert r.returncode == 2 and "not applied, the first 001_init.sql" in line, r.stdout
    assert line.endswith("fix: run tollgate migrate")
    tg.ok("migrate")
    assert "all migrations applied" in check_line(tg.run("check"), "database")


def test_check_fails_when_the_upstream_is_down(tmp_path, database):
    port = free_port()
    tg = Tollgate(tmp_path, database, upstream=f"http://127.0.0.1:{port}")
    tg.ok("migrate")
    r = tg.run("check")
    line = check_line(r, "upstream")
    assert r.returncode == 2 and "FAIL" in line and f"127.0.0.1:{port}/api/version" in line, r.stdout
    assert "fix: start Ollama there or correct upstream =" in line


# ---- capture_bodies ----------------------------------------------------------
def test_captured_bodies_are_stored_compressed_by_postgresql_and_pruned(stack):
    name = "cap-" + uuid.uuid4().hex[:6]
    k = stack.tg.ok("key", "create", "--name", name, "--capture-bodies", "yes").stdout.splitlines()[-1]
    other = stack.tg.ok("key", "create", "--name", name + "-no").stdout.splitlines()[-1]
    assert json.loads(stack.tg.ok("key", "show", name, "--json").stdout)["capture_bodies"] is True
    text = "tell me about tolls " * 400  # 8 kB: past the TOAST threshold
    body = {"model": "llama3", "stream": False, "messages": [{"role": "user", "content": text}]}
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + k}).status == 200
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + other}).status == 200
    rows = stack.db.rows("SELECT k.name, b.body, pg_column_compression(b.body) IS NOT NULL, "
                         "pg_column_size(b.body) < octet_length(b.body) FROM request_bodies b "
                         f"JOIN api_keys k ON k.id = b.key_id WHERE k.name LIKE '{name}%'")
    assert len(rows) == 1 and rows[0][0] == name
    assert json.loads(rows[0][1]) == body
    assert rows[0][2:] == ["t", "t"], rows[0][2:]
    stack.tg.ok("key", "update", name, "--capture-bodies", "no")
    assert stack.http("POST", "/api/chat", body, {"Authorization": "Bearer " + k}).status == 200
    assert stack.db.value(f"SELECT count(*) FROM request_bodies b JOIN api_keys k ON k.id = b.key_id "
                          f"WHERE k.name = '{name}'") == "1"
    stack.db.rows("UPDATE request_bodies SET at = now() - interval '100 days'")
    assert "request body(ies) older than 90 days" in stack.tg.ok("sweep", "--retain", "90d").stdout
    assert stack.db.value("SELECT count(*) FROM request_bodies") == "0"
    r = stack.tg.run("key", "update", name, "--capture-bodies", "maybe")
    assert r.returncode == 1 and "--capture-bodies: use yes or no" in r.stderr
    assert stack.db.rows(INVARIANTS) == []
