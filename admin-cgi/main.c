/* tollgate-admin.cgi: a plain CGI (environment + stdin in, stdout out).
 * Loads the configuration, works out who is asking, refuses what they may
 * not do (no credentials: 401 or the login page; a POST without the
 * session's CSRF token: 403), then hands over to the pages or the API.
 * `tollgate-admin.cgi --hash-password` reads a password on stdin and prints
 * the line for admin_password_file. */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin.h"
#include "log.h"
#include "secret.h"

static const char *
env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL ? v : "";
}

void
admin_header(struct admin *a, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tg_buf_puts(&a->headers, line);
    tg_buf_puts(&a->headers, "\r\n");
}

void
admin_redirect(struct admin *a, const char *path)
{
    a->status = 303;
    admin_header(a, "Location: %s%s", a->base, path);
    a->ctype = "text/plain; charset=utf-8";
    tg_buf_puts(&a->out, "See Other\n");
}

void
admin_json(struct admin *a, int status, json_t *doc)
{
    char *s =
        doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

    a->status = s != NULL ? status : 500;
    a->ctype = "application/json";
    tg_buf_free(&a->out);
    tg_buf_puts(&a->out, s != NULL ? s : "{\"error\":\"internal error\"}");
    tg_buf_puts(&a->out, "\n");
    free(s);
    json_decref(doc);
}

void
admin_json_error(struct admin *a, int status, const char *msg)
{
    admin_json(a, status, json_pack("{s:s}", "error", msg));
}

const char *
admin_err_client(const struct tg_err *err, char *buf, size_t buflen)
{
    char rid[TG_RID_MAX + 1];

    tg_log_rid(getenv("HTTP_X_REQUEST_ID"), rid);
    if (err->sqlstate[0] != '\0' || tg_code_http_status(err->code) >= 500)
        tg_log(TG_LOG_ERROR, rid, "admin: %s (SQLSTATE %s)", err->msg,
               err->sqlstate[0] != '\0' ? err->sqlstate : "none");
    return tg_err_client(err, rid, buf, buflen);
}

/* Reads a small file's first line (a password hash, the master key). */
static bool
read_line_file(const char *path, char *out, size_t outlen)
{
    FILE *f = path[0] != '\0' ? fopen(path, "r") : NULL;
    bool ok = false;

    if (f == NULL)
        return false;
    if (fgets(out, (int)outlen, f) != NULL) {
        out[strcspn(out, "\r\n")] = '\0';
        ok = out[0] != '\0';
    }
    fclose(f);
    return ok;
}

/* Bearer <master key>, compared in constant time. */
static bool
master_key_ok(struct admin *a, const char *authz)
{
    char want[512];
    size_t n;
    bool ok;

    if (strncmp(authz, "Bearer ", 7) != 0 ||
        !read_line_file(a->conf.master_key_file, want, sizeof(want)))
        return false;
    authz += 7;
    n = strlen(want);
    ok = n >= 16 && strlen(authz) == n && CRYPTO_memcmp(want, authz, n) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

static bool
session_ok(struct admin *a)
{
    char cookie[ADMIN_COOKIE_MAX + 2];
    const char *params[1];
    struct tg_err err = {0};
    PGresult *res;
    bool ok;

    if (!admin_cookie_value(env("HTTP_COOKIE"), ADMIN_COOKIE, cookie,
                            sizeof(cookie)) ||
        admin_cookie_verify(a->mac_key, cookie, time(NULL), a->sid) != TG_OK)
        return false;
    params[0] = a->sid;
    res = tg_db_exec(a->db, PGRES_TUPLES_OK,
                     "SELECT actor FROM admin_sessions WHERE id = $1 AND "
                     "expires_at > now()",
                     1, params, &err);
    ok = res != NULL && PQntuples(res) == 1;
    if (ok)
        snprintf(a->actor, sizeof(a->actor), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ok;
}

/* Sets a.who, a.actor and the CSRF binding from the request's credentials. */
static void
identify(struct admin *a)
{
    const char *authz = env("HTTP_AUTHORIZATION");
    const char *user = env("REMOTE_USER");

    if (authz[0] != '\0' && master_key_ok(a, authz)) {
        a->who = WHO_MASTER_KEY;
        snprintf(a->actor, sizeof(a->actor), "master-key");
    } else if (strcmp(a->conf.trust_remote_user, "yes") == 0 &&
               user[0] != '\0') {
        a->who = WHO_REMOTE_USER;
        snprintf(a->actor, sizeof(a->actor), "user:%.100s", user);
        snprintf(a->binding, sizeof(a->binding), "user:%.100s", user);
    } else if (session_ok(a)) {
        a->who = WHO_SESSION;
        snprintf(a->binding, sizeof(a->binding), "session:%s", a->sid);
    }
    if (a->binding[0] != '\0')
        admin_csrf_token(a->mac_key, a->binding, a->csrf);
}

static bool
read_body(struct admin *a)
{
    int64_t len = 0;
    size_t got = 0;
    const char *cl = env("CONTENT_LENGTH");

    if (cl[0] != '\0' &&
        tg_conf_parse_int(cl, 0, ADMIN_BODY_MAX, &len) != TG_OK)
        return false;
    a->body = malloc((size_t)len + 1);
    if (a->body == NULL)
        return false;
    while (got < (size_t)len) {
        size_t n = fread(a->body + got, 1, (size_t)len - got, stdin);

        if (n == 0)
            break;
        got += n;
    }
    a->body[got] = '\0';
    a->body_len = got;
    if (strncmp(env("CONTENT_TYPE"), "application/x-www-form-urlencoded", 33) ==
        0)
        return admin_params_parse(&a->form, a->body, got);
    return true;
}

static void
security_headers(struct admin *a)
{
    admin_header(a,
                 "Content-Security-Policy: default-src 'none'; "
                 "style-src 'self'; script-src 'self'; img-src 'self' data:; "
                 "form-action 'self'; frame-ancestors 'none'; "
                 "base-uri 'none'");
    admin_header(a, "X-Content-Type-Options: nosniff");
    admin_header(a, "X-Frame-Options: DENY");
    admin_header(a, "Referrer-Policy: no-referrer");
    admin_header(a, "Cache-Control: no-store");
}

static bool
setup(struct admin *a, struct tg_err *err)
{
    struct tg_secret secret;

    if (tg_conf_load(&a->conf, tg_conf_path(NULL), err) != TG_OK ||
        tg_log_open("tollgate-admin", a->conf.log_level, a->conf.log_target,
                    err) != TG_OK)
        return false;
    if (tg_secret_load(a->conf.secret_file, &secret, err) != TG_OK)
        return false;
    admin_auth_derive(&secret, a->mac_key);
    tg_secret_wipe(&secret);
    a->db = tg_db_new(a->conf.db, (int)a->conf.db_connect_timeout,
                      (int)a->conf.statement_timeout, "tollgate-admin");
    return a->db != NULL;
}

static void
dispatch(struct admin *a)
{
    const char *r = a->route;
    bool api = strncmp(r, "/api/", 5) == 0 || strcmp(r, "/key/generate") == 0;
    bool post = strcmp(a->method, "GET") != 0 && strcmp(a->method, "HEAD");

    if (strcmp(r, "/login") == 0 && a->who != WHO_REMOTE_USER) {
        if (post)
            admin_login_post(a);
        else
            admin_login_page(a, NULL, 200);
        return;
    }
    if (a->who == WHO_NONE) {
        if (api) {
            admin_header(a, "WWW-Authenticate: Bearer realm=\"tollgate "
                            "admin\"");
            admin_json_error(a, 401, "authentication required");
        } else {
            admin_redirect(a, "/login");
        }
        return;
    }
    /* A change needs the session's CSRF token, unless it came with the
     * master key (no cookie, so no cross-site request can carry it). */
    if (post && a->who != WHO_MASTER_KEY) {
        const char *tok = admin_param(&a->form, "csrf");

        if (tok == NULL)
            tok = getenv("HTTP_X_CSRF_TOKEN");
        if (!admin_csrf_verify(a->mac_key, a->binding, tok)) {
            if (api)
                admin_json_error(a, 403, "missing or wrong CSRF token");
            else
                admin_error_page(a, 403,
                                 "This form has expired or did not come "
                                 "from this site. Go back, reload the page "
                                 "and try again.");
            return;
        }
    }
    if (strcmp(r, "/key/generate") == 0)
        admin_key_generate(a);
    else if (api)
        admin_api(a, r + 4);
    else if (strcmp(r, "/logout") == 0 && post)
        admin_logout(a);
    else
        admin_pages(a, r);
}

static int
hash_password(void)
{
    char pw[1024], out[ADMIN_PW_HASH_MAX + 1];
    struct tg_err err = {0};

    if (fgets(pw, sizeof(pw), stdin) == NULL) {
        fprintf(stderr, "tollgate-admin.cgi: give the password on stdin\n");
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (strlen(pw) < 8) {
        fprintf(stderr, "tollgate-admin.cgi: use at least 8 characters\n");
        return 1;
    }
    if (admin_pw_hash(pw, ADMIN_PW_ITERATIONS, out, &err) != TG_OK) {
        fprintf(stderr, "tollgate-admin.cgi: %s\n", err.msg);
        return 1;
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    printf("%s\n", out);
    return 0;
}

int
main(int argc, char **argv)
{
    static struct admin a; /* large: off the stack */
    struct tg_err err = {0};
    const char *script = env("SCRIPT_NAME");
    size_t slen = strlen(script);

    if (argc == 2 && strcmp(argv[1], "--hash-password") == 0)
        return hash_password();
    tg_buf_init(&a.headers, 16384);
    tg_buf_init(&a.out, ADMIN_PAGE_MAX);
    a.status = 200;
    a.ctype = "text/html; charset=utf-8";
    a.method = env("REQUEST_METHOD");
    a.remote_addr = env("REMOTE_ADDR");
    /* Mounted at /admin (pages, API) and at /key/generate (Ollaguard's
     * route): the route is PATH_INFO, or the compatibility route itself. */
    if (slen >= 13 && strcmp(script + slen - 13, "/key/generate") == 0) {
        a.route = "/key/generate";
        a.base = "";
    } else {
        a.route = env("PATH_INFO");
        a.base = script;
    }
    security_headers(&a);
    (void)admin_params_parse(&a.query, env("QUERY_STRING"),
                             strlen(env("QUERY_STRING")));
    if (!setup(&a, &err)) {
        fprintf(stderr, "tollgate-admin.cgi: %s\n",
                err.msg[0] ? err.msg : "out of memory");
        admin_error_page(&a, 500,
                         "The admin pages are not configured correctly; "
                         "the web server's error log says why.");
    } else if (!read_body(&a)) {
        admin_error_page(&a, 413, "The request body is too large.");
    } else {
        identify(&a);
        dispatch(&a);
    }
    if (tg_buf_failed(&a.out)) {
        tg_buf_free(&a.out);
        a.status = 500;
        a.ctype = "text/plain; charset=utf-8";
        tg_buf_puts(&a.out, "response too large\n");
    }
    printf("Status: %d\r\nContent-Type: %s\r\n%s\r\n", a.status, a.ctype,
           tg_buf_cstr(&a.headers));
    if (strcmp(a.method, "HEAD") != 0)
        fwrite(tg_buf_cstr(&a.out), 1, tg_buf_len(&a.out), stdout);
    fflush(stdout);
    admin_params_free(&a.query);
    admin_params_free(&a.form);
    free(a.body);
    tg_buf_free(&a.headers);
    tg_buf_free(&a.out);
    tg_db_free(a.db);
    OPENSSL_cleanse(a.mac_key, sizeof(a.mac_key));
    return 0;
}
