"""The `tollgate` CLI against a real PostgreSQL: migrations and keys."""
import json
import os
import re
import subprocess
import threading

from conftest import PGBIN, PGHOST, PGPORT, Tollgate

KEY_RE = re.compile(r"^sk-tg-[A-Za-z0-9]{49}$")
MIGRATIONS = len([f for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "sql"))
                  if re.match(r"^\d{3}_.*\.sql$", f)])


def create(tg, name, *flags):
    r = tg.ok("key", "create", "--name", name, *flags)
    key = r.stdout.splitlines()[-1]
    assert KEY_RE.match(key), r.stdout
    return key


def show(tg, name):
    return json.loads(tg.ok("key", "show", name, "--json").stdout)


def test_migrate_twice_is_a_no_op(tmp_path, database):
    tg = Tollgate(tmp_path, database)
    first = tg.ok("migrate")
    assert first.stdout.strip() == f"migrate: {MIGRATIONS} migration{'s' if MIGRATIONS != 1 else ''} applied"
    tables = database.rows("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    second = tg.ok("migrate")
    assert second.stdout.strip() == "migrate: 0 migrations applied"
    assert database.rows("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == tables
    assert database.value("SELECT count(*) FROM schema_migrations") == str(MIGRATIONS)


def test_concurrent_migrates_apply_each_migration_once(tmp_path, database):
    tg = Tollgate(tmp_path, database)
    results = []

    def run():
        results.append(tg.run("migrate"))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 4, [r.stderr for r in results]
    applied = sum(int(re.match(r"migrate: (\d+)", r.stdout).group(1)) for r in results)
    assert applied == MIGRATIONS
    assert database.value("SELECT count(*) FROM schema_migrations") == str(MIGRATIONS)


def test_create_prints_the_key_alone_on_the_last_line_and_stores_only_a_hash(tg):
    r = tg.ok("key", "create", "--name", "demo", "--tokens-day", "1000")
    lines = r.stdout.splitlines()
    key = lines[-1]
    assert KEY_RE.match(key)
    assert key not in "\n".join(lines[:-1]) and key not in r.stderr
    dump = subprocess.run([os.path.join(PGBIN, "pg_dump"), "--data-only", "-h", PGHOST, "-p", PGPORT,
                           "-U", "tollgate", tg.db.name], capture_output=True, text=True, check=True).stdout
    assert "demo" in dump
    assert key not in dump and key[6:] not in dump and key[6:30] not in dump
    assert tg.db.value("SELECT display_prefix FROM api_keys") == key[6:14]


def test_list_shows_the_key_with_its_limit(tg):
    create(tg, "demo", "--tokens-day", "1000")
    create(tg, "other", "--rpm", "7", "--scope", "admin")
    out = tg.ok("key", "list").stdout.splitlines()
    assert out[0].split()[:5] == ["NAME", "PREFIX", "SCOPE", "STATE", "TOK/DAY"]
    demo = next(l.split() for l in out if l.startswith("demo "))
    assert demo[2:5] == ["infer", "active", "1000"]
    rows = json.loads(tg.ok("key", "list", "--json").stdout)
    assert [k["name"] for k in rows] == ["demo", "other"]
    assert rows[1]["rpm_limit"] == 7 and rows[1]["scope"] == "admin"
    assert rows[1]["tokens_day_limit"] is None


def test_show_reports_limits_and_current_usage(tg):
    create(tg, "demo", "--tokens-day", "1000", "--tokens-month", "20000",
           "--requests-day", "50", "--requests-month", "900", "--rpm", "10")
    tg.db.rows("""INSERT INTO quota_usage (key_id, period, period_start, tokens_used, requests)
                  SELECT id, 'day', tg_period_start('day', 'UTC'), 123, 4 FROM api_keys;
                  INSERT INTO quota_usage (key_id, period, period_start, tokens_used, requests)
                  SELECT id, 'month', tg_period_start('month', 'UTC'), 456, 9 FROM api_keys;
                  INSERT INTO reservations (key_id, tokens, day_start, month_start, expires_at)
                  SELECT id, 77, now(), now(), now() + interval '1 minute' FROM api_keys""")
    s = show(tg, "demo")
    assert (s["tokens_today"], s["tokens_month"], s["requests_today"], s["requests_month"]) == (123, 456, 4, 9)
    assert s["reserved_tokens"] == 77
    assert (s["tokens_day_limit"], s["tokens_month_limit"], s["requests_day_limit"],
            s["requests_month_limit"], s["rpm_limit"]) == (1000, 20000, 50, 900, 10)
    text = tg.ok("key", "show", "demo").stdout
    assert re.search(r"^tokens_today\s+123$", text, re.M)


def test_update_changes_only_what_is_given(tg):
    create(tg, "demo", "--tokens-day", "1000", "--rpm", "5")
    tg.ok("key", "update", "demo", "--tokens-month", "5000", "--models", "llama3,qwen2.5:*",
          "--expires", "2099-01-01T00:00:00Z", "--force-model", "llama3")
    s = show(tg, "demo")
    assert (s["tokens_day_limit"], s["tokens_month_limit"], s["rpm_limit"]) == (1000, 5000, 5)
    assert s["allowed_models"] == ["llama3", "qwen2.5:*"]
    assert s["force_model"] == "llama3"
    assert s["expires_at"].startswith("2099-01-01")
    tg.ok("key", "update", "demo", "--unlimited", "--no-expiry", "--expires", "+30d")
    s = show(tg, "demo")
    assert all(s[k] is None for k in ("tokens_day_limit", "tokens_month_limit", "rpm_limit",
                                      "requests_day_limit", "requests_month_limit"))
    assert s["expires_at"] is None  # --no-expiry wins: it is applied last
    tg.ok("key", "update", "demo", "--expires", "+30d", "--tokens-day", "none")
    assert show(tg, "demo")["expires_at"] is not None
    audit = tg.db.rows("SELECT action, target FROM admin_audit ORDER BY id")
    assert audit == [["key.create", "demo"]] + [["key.update", "demo"]] * 3


def test_disable_enable_rotate_delete_round_trip(tg):
    old = create(tg, "demo", "--tokens-day", "1000")
    old_hash = tg.db.value("SELECT key_hash FROM api_keys")
    tg.ok("key", "disable", "demo")
    assert show(tg, "demo")["state"] == "disabled"
    tg.ok("key", "enable", "demo")
    assert show(tg, "demo")["state"] == "active"
    tg.db.rows("""INSERT INTO quota_usage (key_id, period, period_start, tokens_used)
                  SELECT id, 'day', tg_period_start('day', 'UTC'), 42 FROM api_keys""")
    r = tg.ok("key", "rotate", "demo")
    new = r.stdout.splitlines()[-1]
    assert KEY_RE.match(new) and new != old
    assert tg.db.value("SELECT key_hash FROM api_keys") != old_hash
    s = show(tg, "demo")
    assert s["tokens_today"] == 42 and s["tokens_day_limit"] == 1000
    assert s["display_prefix"] == new[6:14]
    tg.ok("key", "delete", "demo")
    assert tg.db.value("SELECT count(*) FROM api_keys") == "0"
    assert tg.run("key", "show", "demo").returncode == 1


def test_delete_is_refused_while_reservations_are_open(tg):
    create(tg, "busy")
    tg.db.rows("""INSERT INTO reservations (key_id, tokens, day_start, month_start, expires_at)
                  SELECT id, 10, now(), now(), now() + interval '1 minute' FROM api_keys""")
    r = tg.run("key", "delete", "busy")
    assert r.returncode == 1
    assert "key 'busy' has 1 unsettled reservation" in r.stderr and "--force" in r.stderr
    assert tg.db.value("SELECT count(*) FROM api_keys") == "1"
    tg.ok("key", "delete", "busy", "--force")
    assert tg.db.value("SELECT count(*) FROM api_keys") == "0"


def test_duplicate_name_fails_naming_the_duplicate(tg):
    create(tg, "demo")
    r = tg.run("key", "create", "--name", "demo")
    assert r.returncode == 1
    assert r.stderr == "tollgate: a key named 'demo' already exists\n"
    assert r.stdout == ""


def test_usage_errors_exit_1_with_a_message(tg):
    create(tg, "demo")
    cases = [
        (["key", "create"], "which key? give --name NAME"),
        (["key", "create", "--name", "x", "--tokens-day", "-5"], "--tokens-day: want a whole number"),
        (["key", "create", "--name", "x", "--tokens-day", "12abc"], "--tokens-day: want a whole number"),
        (["key", "create", "--name", "x", "--scope", "root"], "--scope: use infer or admin"),
        (["key", "create", "--name", "x", "--bogus"], "unknown or incomplete option '--bogus'"),
        (["key", "create", "--name", "x", "--expires", "someday"], "invalid input syntax"),
        (["key", "update", "demo"], "nothing to change"),
        (["key", "update", "nobody", "--rpm", "1"], "no key named 'nobody'"),
        (["key", "show", "nobody"], "no key named 'nobody'"),
        (["key", "disable", "nobody"], "no key named 'nobody'"),
        (["key", "frobnicate"], "unknown subcommand 'frobnicate'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["key", "show"], "which key? give NAME"),
    ]
    for args, msg in cases:
        r = tg.run(*args)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
    assert tg.db.value("SELECT count(*) FROM api_keys") == "1"


def test_unreachable_database_exits_2_with_advice(tmp_path, database):
    class Down:
        name = database.name
        conninfo = "host=127.0.0.1 port=1 user=tollgate dbname=x"

    tg = Tollgate(tmp_path, Down)
    r = tg.run("key", "list")
    assert r.returncode == 2
    assert r.stderr.startswith("tollgate: cannot reach PostgreSQL at host=127.0.0.1 port=1: ")
    assert "is it running? (script/server starts one)" in r.stderr


def test_bad_configuration_exits_2_naming_the_problem(tmp_path, database):
    tg = Tollgate(tmp_path, database, bogus_setting="1")
    r = tg.run("key", "list")
    assert r.returncode == 2
    assert f"{tg.conf}:5: unknown key 'bogus_setting'" in r.stderr
    r = tg.run("key", "list", env={"TOLLGATE_CONFIG": str(tmp_path / "missing.conf")})
    assert r.returncode == 2 and "cannot read" in r.stderr and "missing.conf" in r.stderr


def test_secret_file_must_exist_be_private_and_non_empty(tg):
    tg.secret.chmod(0o644)
    r = tg.run("key", "create", "--name", "x")
    assert r.returncode == 2 and "other users may read it (mode 0644)" in r.stderr
    tg.secret.chmod(0o600)
    tg.secret.write_text("\n")
    r = tg.run("key", "create", "--name", "x")
    assert r.returncode == 2 and "empty" in r.stderr
    tg.secret.unlink()
    r = tg.run("key", "create", "--name", "x")
    assert r.returncode == 2 and "No such file" in r.stderr
    assert tg.db.value("SELECT count(*) FROM api_keys") == "0"
