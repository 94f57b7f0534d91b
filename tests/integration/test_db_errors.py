"""What a PostgreSQL error tells whom (issue #19, point 7). PostgreSQL's
DETAIL quotes the failing row, a key's HMAC among it, and its messages quote
values as given, control bytes and all. The admin API and pages tell a
client only what the error's class means (and a request id to find it in
the log); the CLI, an operator's tool, shows the cleaned message with its
SQLSTATE; the log gets the detail, control bytes escaped, hex runs masked.
The relay's and the authorizer's answers are fixed texts (test_faults.py
holds them with PostgreSQL down)."""
import re

import pytest

from admin import Admin
from conftest import Tollgate
from test_admin import api

HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text):
    assert not HEX_RUN.search(text), text
    assert not CONTROL.search(text), repr(text)
    assert "Failing row" not in text and "DETAIL" not in text, text


@pytest.fixture
def admin(tmp_path, database):
    return Admin(tmp_path, database)


def test_api_duplicate_name_is_a_409_naming_the_name(admin):
    assert api(admin, "POST", "/keys", {"name": "twice"}).status == 201
    r = api(admin, "POST", "/keys", {"name": "twice"})
    assert r.status == 409, r
    assert r.json() == {"error": "a key named 'twice' already exists"}


def test_api_constraint_violation_tells_the_class_not_the_row(admin):
    # not_before after expires: the table's CHECK, whose DETAIL is the whole
    # row with the new key's HMAC.
    r = api(admin, "POST", "/keys", {"name": "backwards", "expires_at": "2027-01-01",
                                     "not_before": "2027-02-01"})
    assert r.status == 400, r
    assert r.json() == {"error": "a value is not valid (check the names, times and numbers)"}
    clean(r.text)
    # The log says which constraint, with the SQLSTATE, still without the HMAC.
    assert "api_keys_check" in r.stderr and "SQLSTATE 23514" in r.stderr, r.stderr
    clean(r.stderr)


def test_api_control_bytes_in_a_name_get_a_clear_message(admin):
    r = api(admin, "POST", "/keys", {"name": "bad\x01\x1b[2Jname"})
    assert r.status == 400, r
    assert r.json() == {"error": "a key name is 1 to 100 characters, none of them "
                                 "control characters"}
    clean(r.text)
    clean(r.stderr)


def test_api_value_with_control_bytes_in_postgresqls_message(admin):
    # 22007: PostgreSQL quotes the bad time, escape sequence and all.
    r = api(admin, "POST", "/keys", {"name": "t", "expires_at": "2027\x1b[31m-01-01"})
    assert r.status == 400, r
    clean(r.text)
    assert "\x1b" not in r.stderr
    clean(r.stderr)


def test_html_pages_show_the_class_too(admin):
    assert admin.login().status == 303
    r = admin.post("/keys/new", {"name": "backwards", "expires": "2027-01-01",
                                 "not-before": "2027-02-01"})
    assert r.status == 400, r
    assert "a value is not valid" in r.text, r.text[-3000:]
    clean(r.text)


def test_api_database_down_is_a_503_that_says_so(admin):
    conf = admin.tg.conf
    conf.write_text(re.sub(r"(?m)^db = .*$", "db = host=127.0.0.1 port=1 user=tollgate dbname=x",
                           conf.read_text()))
    r = api(admin, "GET", "/keys")
    assert r.status == 503, r
    assert r.json() == {"error": "database (PostgreSQL) unavailable, try again in a moment"}
    assert "cannot reach PostgreSQL" in r.stderr, r.stderr


def test_cli_shows_the_cleaned_message_with_its_sqlstate(tg):
    tg.ok("key", "create", "--name", "one")
    r = tg.run("key", "create", "--name", "one")
    assert r.returncode == 1 and r.stderr == "tollgate: a key named 'one' already exists\n", r
    r = tg.run("key", "create", "--name", "backwards", "--expires", "2027-01-01",
               "--not-before", "2027-02-01")
    assert r.returncode == 1, r
    assert 'violates check constraint "api_keys_check" (SQLSTATE 23514)' in r.stderr, r.stderr
    clean(r.stderr)
    r = tg.run("key", "create", "--name", "a\x01\x1b[2Jb")
    assert r.returncode == 1, r
    assert "none of them control characters" in r.stderr, r.stderr
    clean(r.stderr)


def test_cli_escapes_control_bytes_postgresql_quotes(tg):
    r = tg.run("key", "create", "--name", "t", "--expires", "2027\x1b[31m-01-01")
    assert r.returncode == 1, r
    clean(r.stderr)
    assert '"2027\\x1b[31m-01-01" (SQLSTATE 22007)' in r.stderr, r.stderr
