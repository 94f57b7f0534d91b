"""The admin pages and admin API (issue 6), with tollgate-admin.cgi run
directly as a CGI against a real PostgreSQL: login and sessions, CSRF,
escaping, every page, every key action, the JSON API and the master key."""
import json
import re
import subprocess
import time

import pytest

from admin import CGI, MASTER_KEY, PASSWORD, Admin, now

KEY_RE = re.compile(r"sk-tg-[A-Za-z0-9]{49}")
PAGES = ["/keys", "/keys/new", "/usage", "/usage?window=7d", "/usage?window=30d", "/requests",
         "/settings", "/health", "/audit"]


@pytest.fixture
def admin(tmp_path, database):
    a = Admin(tmp_path, database)
    r = a.login()
    assert r.status == 303, r
    return a


def create_key(admin, name, **limits):
    form = {"name": name, **limits}
    r = admin.post("/keys/new", form)
    assert r.status == 200, r
    keys = KEY_RE.findall(r.text)
    assert len(set(keys)) == 1, r.text
    key_id = admin.db.value(f"SELECT id FROM api_keys WHERE name = $${name}$$")
    return key_id, keys[0]


def assert_strict_page(r):
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "unsafe" not in csp
    assert "'unsafe-inline'" not in csp
    # one script, the copy button's static file: nothing inline
    tags = re.findall(r"<script\b([^>]*)>(.*?)</script>", r.text, re.S | re.I)
    assert len(tags) == 1 and tags[0][1] == "" and tags[0][0].endswith('-static/admin.js"'), tags
    assert r.text.lower().count("<script") == 1
    assert " style=" not in r.text and "<style" not in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


# ---- authentication ---------------------------------------------------------

def test_hash_password_cli_writes_a_pbkdf2_hash():
    # The format only: verifying 600000 iterations twice would cost seconds;
    # every login test verifies the same format (fewer iterations).
    r = subprocess.run([CGI, "--hash-password"], input="s3cret-enough\n", capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"pbkdf2-sha256\$600000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}", r.stdout.strip())
    assert "s3cret" not in r.stdout + r.stderr
    r = subprocess.run([CGI, "--hash-password"], input="short\n", capture_output=True, text=True)
    assert r.returncode == 1 and "at least 8" in r.stderr


def test_login_sets_a_strict_cookie_and_logout_ends_the_session(tmp_path, database):
    a = Admin(tmp_path, database)
    r = a.run("GET", "/keys", cookie="")
    assert r.status == 303 and r.headers["location"] == "/admin/login"
    r = a.run("GET", "/login", cookie="")
    assert r.status == 200 and 'type="password"' in r.text
    r = a.login()
    assert r.status == 303 and r.headers["location"] == "/admin/keys", r
    attrs = [x.strip() for x in r.cookie().split(";")]
    assert attrs[0].startswith("tg_admin=v1.")
    for want in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/admin/", "Max-Age=43200"):
        assert want in attrs, attrs
    assert a.run("GET", "/keys").status == 200
    cookie = a.cookie
    r = a.post("/logout")
    assert r.status == 303 and "Max-Age=0" in r.cookie()
    # the old cookie is dead: its session row is gone
    assert a.run("GET", "/keys", cookie=cookie).status == 303
    assert database.value("SELECT count(*) FROM admin_sessions") == "0"


def test_wrong_password_is_refused_and_failures_are_rate_limited(tmp_path, database):
    a = Admin(tmp_path, database)
    for _ in range(5):
        r = a.login("wrong password", remote_addr="10.0.0.9")
        assert r.status == 401 and "Wrong password" in r.text and r.cookie() is None
    r = a.login(PASSWORD, remote_addr="10.0.0.9")  # even the right one now
    assert r.status == 429 and r.cookie() is None and "Too many" in r.text
    assert 890 <= int(r.headers["retry-after"]) <= 900  # the window's end
    assert a.login(PASSWORD, remote_addr="10.0.0.10").status == 303  # another address
    assert database.value("SELECT count(*) FROM admin_login_attempts WHERE NOT ok") == "5"


def test_tampered_or_expired_cookies_are_refused(admin):
    name, value = admin.cookie.split("=", 1)
    sid = value.split(".")[1]
    assert admin.run("GET", "/keys").status == 200
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    later = value.replace(value.split(".")[2], str(now() + 10 ** 6))
    for bad in (flipped, later, value + "x", "v1." + sid, "", "garbage"):
        r = admin.run("GET", "/keys", cookie=f"{name}={bad}")
        assert r.status == 303 and r.headers["location"] == "/admin/login", bad
        r = admin.run("GET", "/api/keys", cookie=f"{name}={bad}")
        assert r.status == 401, bad
    # correctly signed (we hold the secret) but expired
    r = admin.run("GET", "/keys", cookie=f"{name}={admin.forge_cookie(sid, now() - 1)}")
    assert r.status == 303
    # correctly signed and unexpired, but no such session in the database
    r = admin.run("GET", "/keys", cookie=f"{name}={admin.forge_cookie('ab' * 16, now() + 600)}")
    assert r.status == 303
    # a session past its expiry in the database is refused too
    admin.db.rows("UPDATE admin_sessions SET created_at = now() - interval '2 days', "
                  "expires_at = now() - interval '1 second'")
    assert admin.run("GET", "/keys").status == 303


def test_admin_api_without_credentials_is_401(tmp_path, database):
    a = Admin(tmp_path, database)
    for method, path in [("GET", "/api/keys"), ("POST", "/api/keys"), ("GET", "/api/audit"),
                         ("GET", "/api/settings"), ("DELETE", "/api/keys/1")]:
        r = a.run(method, path, cookie="")
        assert r.status == 401, (path, r)
        assert r.headers["content-type"] == "application/json"
        assert "Bearer" in r.headers["www-authenticate"]
    r = a.run("POST", "", script="/key/generate", cookie="")
    assert r.status == 401
    r = a.run("GET", "/api/keys", cookie="", headers={"Authorization": "Bearer " + "x" * 43})
    assert r.status == 401
    assert database.value("SELECT count(*) FROM api_keys") == "0"


def test_post_without_or_with_a_wrong_csrf_token_is_403_and_changes_nothing(admin, tmp_path, database):
    key_id, _ = create_key(admin, "victim")
    (tmp_path / "other").mkdir()
    other = Admin(tmp_path / "other", database)  # another session: its token is not ours
    other.login()
    theirs = other.csrf()
    posts = [("/keys/new", {"name": "evil"}), (f"/keys/{key_id}/disable", {}),
             (f"/keys/{key_id}/delete", {}), (f"/keys/{key_id}/rotate", {}),
             ("/settings", {"force_model": "evil"}), ("/logout", {})]
    cases = [(p, f, None) for p, f in posts] + \
        [(p, f, t) for t in ("", "x" * 43, theirs) for p, f in posts[:2]]
    for path, form, token in cases:
        r = admin.post(path, form, csrf=token)
        assert r.status == 403, (path, token, r)
    r = admin.run("POST", "/api/keys", body='{"name": "evil"}')  # session, no header
    assert r.status == 403
    assert database.value("SELECT count(*) FROM api_keys") == "1"
    assert database.value(f"SELECT disabled_at IS NULL FROM api_keys WHERE id = {key_id}") == "t"
    assert database.value("SELECT value FROM settings WHERE name = 'force_model'") == ""
    assert admin.run("GET", "/keys").status == 200  # still logged in


def test_get_never_changes_anything(admin):
    key_id, _ = create_key(admin, "g")
    before = admin.db.rows("SELECT count(*) FROM admin_audit")
    for path in [f"/keys/{key_id}/disable", f"/keys/{key_id}/delete", f"/keys/{key_id}/rotate",
                 "/logout", "/settings?force_model=x"]:
        admin.run("GET", path)
    assert admin.db.rows("SELECT count(*) FROM admin_audit") == before
    assert admin.db.value(f"SELECT disabled_at IS NULL FROM api_keys WHERE id = {key_id}") == "t"


def test_trust_remote_user_uses_the_web_servers_login(tmp_path, database):
    a = Admin(tmp_path, database, trust_remote_user="yes")
    alice = {"REMOTE_USER": "alice"}
    r = a.run("GET", "/keys", env=alice)
    assert r.status == 200 and "user:alice" in r.text and "Log out" not in r.text
    token = re.search(r'name="csrf" value="([^"]+)"', a.run("GET", "/keys/new", env=alice).text).group(1)
    r = a.run("POST", "/keys/new", form={"name": "rk", "csrf": token}, env=alice)
    assert r.status == 200 and KEY_RE.search(r.text)
    assert database.value("SELECT actor FROM admin_audit WHERE action = 'key.create'") == "user:alice"
    # bob's token is not alice's
    r = a.run("POST", "/keys/new", form={"name": "rk2", "csrf": token}, env={"REMOTE_USER": "bob"})
    assert r.status == 403
    # no REMOTE_USER: the login page, as without the option
    assert a.run("GET", "/keys").status == 303
    # trust_remote_user = no ignores REMOTE_USER
    (tmp_path / "no").mkdir()
    b = Admin(tmp_path / "no", database)
    assert b.run("GET", "/keys", env=alice).status == 303


# ---- pages ------------------------------------------------------------------

def test_every_page_renders_with_a_strict_policy_and_no_script(admin):
    create_key(admin, "p")
    for path in PAGES:
        r = admin.run("GET", path)
        assert r.status == 200, (path, r)
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert_strict_page(r)
        assert '<link rel="stylesheet" href="/admin-static/admin.css">' in r.text
    assert admin.run("GET", "/nope").status == 404
    assert admin.run("GET", "/keys/999999").status == 404
    assert admin.run("GET", "").status == 303


def test_a_script_key_name_renders_as_text_everywhere(admin):
    evil = "<script>alert(1)</script>"
    key_id, _ = create_key(admin, evil)
    admin.db.rows(f"INSERT INTO usage_events (key_id, model, endpoint, status, http_status, "
                  f"prompt_tokens, completion_tokens) VALUES ({key_id}, $${evil}$$, '/api/chat', 'ok', 200, 3, 4)")
    admin.post(f"/keys/{key_id}/disable")
    for path in PAGES + [f"/keys/{key_id}", f"/keys/{key_id}/delete"]:
        r = admin.run("GET", path)
        assert r.status == 200, path
        assert "<script>" not in r.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin.run("GET", "/keys").text
    assert "&lt;script&gt;" in admin.run("GET", "/usage").text
    assert "&lt;script&gt;" in admin.run("GET", "/requests").text
    assert "&lt;script&gt;" in admin.run("GET", "/audit").text
    csv = admin.run("GET", "/usage.csv").text
    assert evil in csv  # CSV is not HTML; a leading = + - @ would be defused


def test_new_key_is_shown_once_and_works_with_every_limit(admin):
    form = {"name": "lab-3", "tokens-day": "1000", "tokens-month": "20000", "requests-day": "50",
            "requests-month": "900", "rpm": "10", "reservation": "256", "expires": "+30d",
            "models": "llama3,qwen2", "force-model": "", "scope": "infer"}
    r = admin.post("/keys/new", form)
    assert r.status == 200 and "shown this once" in r.text
    key = KEY_RE.search(r.text).group(0)
    rep = json.loads(admin.tg.ok("key", "show", "lab-3", "--json").stdout)
    assert (rep["tokens_day_limit"], rep["tokens_month_limit"], rep["requests_day_limit"],
            rep["requests_month_limit"], rep["rpm_limit"], rep["reservation_tokens"]) == \
        (1000, 20000, 50, 900, 10, 256)
    assert rep["allowed_models"] == ["llama3", "qwen2"] and rep["force_model"] is None
    assert rep["expires_at"] is not None and rep["scope"] == "infer"
    assert key not in admin.db.value("SELECT row_to_json(k)::text FROM api_keys k")
    for path in PAGES + [f"/keys/{rep['id']}"]:
        assert key not in admin.run("GET", path).text
    assert admin.db.value("SELECT actor FROM admin_audit WHERE action = 'key.create'") == "admin"
    # the name is taken now; a bad limit is refused with the form kept
    r = admin.post("/keys/new", {"name": "lab-3"})
    assert r.status == 409 and "already exists" in r.text
    r = admin.post("/keys/new", {"name": "x", "tokens-day": "lots"})
    assert r.status == 400 and "want a whole number" in r.text and 'value="lots"' in r.text
    r = admin.post("/keys/new", {"name": "x", "expires": "someday"})
    assert r.status == 400 and not KEY_RE.search(r.text)


def test_key_detail_edits_disables_enables_rotates_and_deletes(admin):
    key_id, key = create_key(admin, "d1", **{"tokens-day": "100"})
    r = admin.run("GET", f"/keys/{key_id}")
    assert r.status == 200 and "Edit limits" in r.text and 'value="100"' in r.text
    r = admin.post(f"/keys/{key_id}/update", {"tokens-day": "500", "tokens-month": "", "rpm": "7",
                                               "models": "m1", "scope": "admin", "expires": ""})
    assert r.status == 303 and r.headers["location"] == f"/admin/keys/{key_id}?done=saved"
    rep = json.loads(admin.tg.ok("key", "show", "d1", "--json").stdout)
    assert (rep["tokens_day_limit"], rep["rpm_limit"], rep["allowed_models"], rep["scope"]) == \
        (500, 7, ["m1"], "admin")
    assert "Saved." in admin.run("GET", f"/keys/{key_id}?done=saved").text
    audit = json.loads(admin.db.value("SELECT detail FROM admin_audit WHERE action = 'key.update'"))
    assert audit["before"]["tokens_day_limit"] == 100 and audit["change"]["tokens_day_limit"] == "500"
    assert "key_hash" not in audit["before"]

    assert admin.post(f"/keys/{key_id}/disable").status == 303
    assert admin.db.value(f"SELECT tg_key_state(disabled_at, not_before, expires_at) FROM api_keys WHERE id = {key_id}") == "disabled"
    assert "Enable key" in admin.run("GET", f"/keys/{key_id}").text
    assert admin.post(f"/keys/{key_id}/enable").status == 303
    old_hash = admin.db.value(f"SELECT key_hash FROM api_keys WHERE id = {key_id}")
    r = admin.post(f"/keys/{key_id}/rotate")
    assert r.status == 200 and "shown this once" in r.text
    new = KEY_RE.search(r.text).group(0)
    assert new != key and admin.db.value(f"SELECT key_hash FROM api_keys WHERE id = {key_id}") != old_hash
    r = admin.run("GET", f"/keys/{key_id}/delete")
    assert r.status == 200 and "Delete for good" in r.text
    assert admin.db.value("SELECT count(*) FROM api_keys") == "1"  # GET asked only
    r = admin.post(f"/keys/{key_id}/delete")
    assert r.status == 303 and r.headers["location"] == "/admin/keys"
    assert admin.db.value("SELECT count(*) FROM api_keys") == "0"
    actions = [x[0] for x in admin.db.rows("SELECT action FROM admin_audit ORDER BY id")]
    assert actions == ["key.create", "key.update", "key.disable", "key.enable", "key.rotate", "key.delete"]


def test_delete_is_refused_while_requests_are_in_flight(admin):
    key_id, _ = create_key(admin, "busy")
    admin.db.rows(f"INSERT INTO reservations (key_id, tokens, day_start, month_start, expires_at) "
                  f"VALUES ({key_id}, 10, now(), now(), now() + interval '1 hour')")
    r = admin.post(f"/keys/{key_id}/delete")
    assert r.status == 409 and "unsettled reservation" in r.text
    assert admin.db.value("SELECT count(*) FROM api_keys") == "1"


def test_keys_list_filters_sorts_and_pages_beyond_100(admin):
    admin.db.rows("INSERT INTO api_keys (name, key_hash, display_prefix) SELECT 'bulk-' || "
                  "lpad(i::text, 3, '0'), lpad(to_hex(i), 64, '0'), 'abcd' FROM generate_series(1, 130) i")
    r = admin.run("GET", "/keys")
    assert r.status == 200 and "130 keys" in r.text and "Page 1 of 2" in r.text
    assert "bulk-100" in r.text and "bulk-101" not in r.text
    r = admin.run("GET", "/keys?page=2")
    assert "bulk-101" in r.text and "bulk-130" in r.text and "bulk-001" not in r.text
    r = admin.run("GET", "/keys?q=BULK-12")
    assert "10 keys" in r.text and "bulk-120" in r.text and "bulk-119" not in r.text
    r = admin.run("GET", "/keys?sort=created")
    assert r.text.index("bulk-130") < r.text.index("bulk-129")
    assert "No key matches" in admin.run("GET", "/keys?q=%25").text  # % is literal


def seed_usage(admin, key_id):
    admin.db.rows(
        "INSERT INTO usage_events (at, key_id, model, endpoint, status, http_status, prompt_tokens, "
        "completion_tokens, latency_ms, ttfb_ms) VALUES "
        f"(now() - interval '2 hours', {key_id}, 'llama3', '/api/chat', 'ok', 200, 10, 20, 150, 30),"
        f"(now() - interval '1 hour', {key_id}, 'qwen2', '/v1/chat/completions', 'ok', 200, 5, 6, 90, 12),"
        f"(now() - interval '3 days', {key_id}, 'llama3', '/api/generate', 'client_gone', 200, 1, 2, 9, 3),"
        f"(now() - interval '20 days', NULL, 'old', '/api/embed', 'ok', 200, 100, 0, 5, 5)")


def test_usage_page_draws_the_chart_and_totals_per_key(admin):
    key_id, _ = create_key(admin, "u1")
    r = admin.run("GET", "/usage")
    assert "No usage in this window" in r.text
    seed_usage(admin, key_id)
    r = admin.run("GET", "/usage")
    assert r.status == 200 and "<svg" in r.text and "No usage" not in r.text
    assert "llama3 at" in r.text or "llama3: 30 tokens" in r.text
    assert re.search(r"<tr><th scope=\"row\"><a href=\"/admin/keys/%s\">u1</a></th>"
                     r"<td class=\"num\">2</td><td class=\"num\">15</td><td class=\"num\">26</td>"
                     r"<td class=\"num\">41</td>" % key_id, r.text), r.text
    r = admin.run("GET", "/usage?window=7d")
    assert '<td class="num">3</td>' in r.text  # the client_gone one is 3 days old
    r = admin.run("GET", "/usage?window=30d")
    assert "deleted key" in r.text and "old" in r.text


def test_usage_csv_downloads_a_range(admin):
    key_id, _ = create_key(admin, "=cmd")
    seed_usage(admin, key_id)
    r = admin.run("GET", "/usage.csv")
    assert r.status == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.strip().split("\r\n")
    assert lines[0].startswith("time,key_id,key_name,model,endpoint")
    assert len(lines) == 1 + 3  # the 20-day-old event is outside the default week
    assert all(",\"'=cmd\"," in l for l in lines[1:])  # formula defused
    old = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 25 * 86400))
    r = admin.run("GET", f"/usage.csv?from={old}&to={old}")
    assert len(r.text.strip().split("\r\n")) == 1
    assert admin.run("GET", "/usage.csv?from=2026-13-45").status == 400


def test_recent_requests_filter(admin):
    key_id, _ = create_key(admin, "rq")
    seed_usage(admin, key_id)
    r = admin.run("GET", "/requests")
    assert r.text.count("<tr>") == 1 + 4
    assert admin.run("GET", "/requests?model=qwen2").text.count("<tr>") == 2
    assert admin.run("GET", "/requests?status=client_gone").text.count("<tr>") == 2
    assert admin.run("GET", "/requests?key=RQ&endpoint=/api/").text.count("<tr>") == 3
    r = admin.run("GET", f"/keys/{key_id}")
    assert "Recent requests" in r.text and "/v1/chat/completions" in r.text


def test_settings_are_saved_validated_and_audited(admin):
    r = admin.post("/settings", {"upstream_url": "http://127.0.0.1:11434,http://10.0.0.2:11434",
                                 "force_model": "llama3", "reservation_tokens": "512", "output_cap": "300"},
                   csrf=admin.csrf("/settings"))
    assert r.status == 200 and "Saved (4 changed)" in r.text
    rows = dict(admin.db.rows("SELECT name, value FROM settings"))
    assert rows == {"upstream_url": "http://127.0.0.1:11434,http://10.0.0.2:11434", "force_model": "llama3",
                    "reservation_tokens": "512", "output_cap": "300"}
    audit = admin.db.rows("SELECT target, detail->>'before', detail->>'after' FROM admin_audit ORDER BY id")
    assert ["reservation_tokens", "", "512"] in audit and len(audit) == 4
    for bad in ({"reservation_tokens": "0"}, {"output_cap": "-1"}, {"upstream_url": "ftp://x"},
                {"force_model": "a\x01b"}):
        r = admin.post("/settings", bad)
        assert r.status == 400, bad
    assert dict(admin.db.rows("SELECT name, value FROM settings")) == rows


def test_health_reports_the_database_and_each_upstream(admin):
    r = admin.run("GET", "/health")
    assert r.status == 200 and "PostgreSQL" in r.text
    assert "http://127.0.0.1:9" in r.text and "down" in r.text
    assert "Spool backlog" in r.text and "Unsettled" in r.text


def test_database_down_gives_a_503_page(tmp_path, database):
    a = Admin(tmp_path, database)
    a.login()
    conf = a.tg.conf.read_text().replace(database.conninfo, "host=127.0.0.1 port=1 dbname=x")
    a.tg.conf.write_text(conf)
    r = a.run("GET", "/keys")
    assert r.status in (303, 503)  # without a database no session can be checked
    r = a.run("POST", "/login", form={"password": PASSWORD}, cookie="")
    assert r.status == 503 and "PostgreSQL" in r.text


# ---- the JSON API -----------------------------------------------------------

def api(admin, method, path, body=None, **kw):
    hdrs = {"Authorization": "Bearer " + MASTER_KEY}
    r = admin.run(method, "/api" + path, body=json.dumps(body) if body is not None else None,
                  headers=hdrs, cookie="", **kw)
    return r


def test_api_with_the_master_key_does_what_the_pages_do(tmp_path, database):
    a = Admin(tmp_path, database)
    r = api(a, "POST", "/keys", {"name": "auto", "tokens_day_limit": 100, "allowed_models": ["m"]})
    assert r.status == 201, r
    doc = r.json()
    assert KEY_RE.fullmatch(doc["key"]) and doc["name"] == "auto"
    kid = doc["id"]
    assert api(a, "POST", "/keys", {"name": "auto"}).status == 409
    assert api(a, "POST", "/keys", {"name": "x", "bogus": 1}).status == 400
    assert api(a, "POST", "/keys", {"name": "x", "rpm_limit": "many"}).status == 400
    keys = api(a, "GET", "/keys").json()
    assert [k["name"] for k in keys] == ["auto"] and keys[0]["tokens_day_limit"] == 100
    r = api(a, "PATCH", f"/keys/{kid}", {"tokens_day_limit": None, "rpm_limit": 5})
    assert r.status == 200 and r.json()["tokens_day_limit"] is None and r.json()["rpm_limit"] == 5
    assert api(a, "POST", f"/keys/{kid}/disable").json()["state"] == "disabled"
    assert api(a, "POST", f"/keys/{kid}/enable").json()["state"] == "active"
    r = api(a, "POST", f"/keys/{kid}/rotate")
    assert r.status == 200 and KEY_RE.fullmatch(r.json()["key"]) and r.json()["key"] != doc["key"]
    assert api(a, "GET", f"/keys/{kid}").json()["name"] == "auto"
    assert api(a, "GET", "/keys/424242").status == 404
    r = api(a, "PUT", "/settings", {"force_model": "llama3"})
    assert r.status == 200 and r.json()["force_model"] == "llama3"
    assert api(a, "PUT", "/settings", {"reservation_tokens": "0"}).status == 400
    assert api(a, "PUT", "/settings", {"bogus": "1"}).status == 400
    assert api(a, "GET", "/usage?window=7d").json() == []
    assert api(a, "GET", "/requests").json() == []
    audit = api(a, "GET", "/audit").json()
    assert [x["action"] for x in audit][:3] == ["setting.update", "key.rotate", "key.enable"]
    assert all(x["actor"] == "master-key" for x in audit)
    assert api(a, "DELETE", f"/keys/{kid}").json() == {"deleted": True}
    assert api(a, "GET", "/keys").json() == []
    assert MASTER_KEY not in a.run("GET", "/audit", cookie="").text


def test_key_generate_answers_like_ollaguard(tmp_path, database):
    a = Admin(tmp_path, database)
    r = a.run("POST", "", script="/key/generate", cookie="",
              headers={"Authorization": "Bearer " + MASTER_KEY})
    assert r.status == 201 and r.headers["content-type"] == "application/json"
    assert KEY_RE.fullmatch(r.json()["key"])
    assert database.value("SELECT name FROM api_keys").startswith("generated-")
    r = a.run("GET", "", script="/key/generate", cookie="",
              headers={"Authorization": "Bearer " + MASTER_KEY})
    assert r.status == 405


def test_api_with_a_session_needs_the_csrf_header_for_changes(admin):
    assert admin.run("GET", "/api/keys").status == 200
    assert admin.run("POST", "/api/keys", body='{"name":"s"}').status == 403
    r = admin.run("POST", "/api/keys", body='{"name":"s"}', headers={"X-CSRF-Token": admin.csrf()})
    assert r.status == 201


def test_stats_json_for_dashboards_hourly_by_model_and_key_per_minute_and_24h(tmp_path, database):
    a = Admin(tmp_path, database)
    assert api(a, "POST", "/keys", {"name": "dash"}).status == 201
    kid = a.db.value("SELECT id FROM api_keys WHERE name = 'dash'")
    seed_usage(a, kid)
    a.db.rows("INSERT INTO usage_events (at, key_id, model, endpoint, status, prompt_tokens, "
              f"completion_tokens) VALUES (now() - interval '5 minutes', {kid}, 'llama3', "
              "'/api/chat', 'upstream_error', 3, 0)")
    hourly = api(a, "GET", "/stats").json()
    assert hourly["bucket"] == "hour" and hourly["minutes"] == 1440
    got = sorted((b["model"], b["key"], b["requests"], b["tokens"]) for b in hourly["buckets"])
    assert got == [("llama3", "dash", 1, 3), ("llama3", "dash", 1, 30), ("qwen2", "dash", 1, 11)]
    assert all(b["ts"] % 3600 == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00", b["start"])
               for b in hourly["buckets"])
    week = api(a, "GET", "/stats?hours=168").json()
    assert sum(b["requests"] for b in week["buckets"]) == 4
    minute = api(a, "GET", "/stats/minute").json()
    assert [(b["model"], b["errors"], b["prompt_tokens"]) for b in minute["buckets"]] == [("llama3", 1, 3)]
    day = api(a, "GET", "/stats/24h").json()
    assert day["requests"] == 3 and day["errors"] == 1 and day["tokens"] == 44 and day["keys"] == 1
    assert day["by_model"] == {"llama3": {"requests": 2, "tokens": 33}, "qwen2": {"requests": 1, "tokens": 11}}
    assert api(a, "GET", "/stats?hours=0").status == 400
    assert api(a, "GET", "/stats?hours=lots").status == 400
    assert api(a, "GET", "/stats/weekly").status == 404
    anon = a.run("GET", "/api/stats", cookie="")
    assert anon.status == 401


def test_recent_requests_show_a_captured_body_as_text(admin):
    key_id, _ = create_key(admin, "cap")
    admin.db.rows("INSERT INTO usage_events (key_id, reservation_id, model, endpoint, status, http_status) "
                  f"VALUES ({key_id}, 4242, 'llama3', '/api/chat', 'ok', 200)")
    admin.db.rows("INSERT INTO request_bodies (reservation_id, key_id, body) VALUES "
                  f"(4242, {key_id}, '{{\"prompt\": \"<script>alert(1)</script>\"}}')")
    r = admin.run("GET", "/requests")
    assert r.status == 200
    assert "<details><summary>body</summary><pre>" in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert" not in r.text
