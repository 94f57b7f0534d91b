/* auth: session cookies (sign, verify, tamper, expiry), CSRF tokens bound
 * to a session, PBKDF2 password hashes. */
#include <config.h>

#include <string.h>

#include "auth.h"
#include "unit.h"

static void
key_for(const char *secret, unsigned char key[ADMIN_MAC_KEY_LEN])
{
    struct tg_secret s = {0};

    s.len = strlen(secret);
    memcpy(s.bytes, secret, s.len);
    admin_auth_derive(&s, key);
}

#define SID "0123456789abcdef0123456789abcdef"

START_TEST(a_cookie_verifies_until_it_expires)
{
    unsigned char k[ADMIN_MAC_KEY_LEN];
    char c[ADMIN_COOKIE_MAX + 1], sid[ADMIN_SID_LEN + 1];

    key_for("0123456789abcdef-secret", k);
    admin_cookie_make(k, SID, 1000, c);
    ck_assert_int_eq(admin_cookie_verify(k, c, 999, sid), TG_OK);
    ck_assert_str_eq(sid, SID);
    ck_assert_int_eq(admin_cookie_verify(k, c, 1000, sid), TG_E_NO_KEY);
    ck_assert_int_eq(admin_cookie_verify(k, c, 5000, sid), TG_E_NO_KEY);
}
END_TEST

START_TEST(a_tampered_cookie_is_refused)
{
    unsigned char k[ADMIN_MAC_KEY_LEN], other[ADMIN_MAC_KEY_LEN];
    char c[ADMIN_COOKIE_MAX + 1], t[ADMIN_COOKIE_MAX + 8];
    char sid[ADMIN_SID_LEN + 1];
    size_t i, n;

    key_for("0123456789abcdef-secret", k);
    key_for("0123456789abcdef-other", other);
    admin_cookie_make(k, SID, 2000, c);
    n = strlen(c);
    for (i = 0; i < n; i++) { /* every single-character change */
        strcpy(t, c);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(admin_cookie_verify(k, t, 1000, sid), TG_E_NO_KEY);
    }
    ck_assert_int_eq(admin_cookie_verify(other, c, 1000, sid), TG_E_NO_KEY);
    /* a later expiry with the old signature */
    strcpy(t, c);
    memcpy(strchr(t + 4 + ADMIN_SID_LEN, '.') - 4, "9999", 4);
    ck_assert_int_eq(admin_cookie_verify(k, t, 1000, sid), TG_E_NO_KEY);
    ck_assert_int_eq(admin_cookie_verify(k, "", 0, sid), TG_E_NO_KEY);
    ck_assert_int_eq(admin_cookie_verify(k, NULL, 0, sid), TG_E_NO_KEY);
    ck_assert_int_eq(admin_cookie_verify(k, "v1.x.1.y", 0, sid), TG_E_NO_KEY);
    strcpy(t, c);
    strcat(t, "AAAA");
    ck_assert_int_eq(admin_cookie_verify(k, t, 1000, sid), TG_E_NO_KEY);
}
END_TEST

START_TEST(a_csrf_token_is_bound_to_its_session)
{
    unsigned char k[ADMIN_MAC_KEY_LEN], other[ADMIN_MAC_KEY_LEN];
    char tok[ADMIN_CSRF_LEN + 1], bad[ADMIN_CSRF_LEN + 1];

    key_for("0123456789abcdef-secret", k);
    key_for("0123456789abcdef-other", other);
    admin_csrf_token(k, "session:" SID, tok);
    ck_assert_uint_eq(strlen(tok), ADMIN_CSRF_LEN);
    ck_assert(admin_csrf_verify(k, "session:" SID, tok));
    ck_assert(!admin_csrf_verify(k, "session:other", tok));
    ck_assert(!admin_csrf_verify(other, "session:" SID, tok));
    ck_assert(!admin_csrf_verify(k, "session:" SID, NULL));
    ck_assert(!admin_csrf_verify(k, "session:" SID, ""));
    strcpy(bad, tok);
    bad[5] = bad[5] == 'x' ? 'y' : 'x';
    ck_assert(!admin_csrf_verify(k, "session:" SID, bad));
    bad[ADMIN_CSRF_LEN - 1] = '\0';
    ck_assert(!admin_csrf_verify(k, "session:" SID, bad));
}
END_TEST

START_TEST(a_password_hash_verifies_only_its_password)
{
    char h[ADMIN_PW_HASH_MAX + 1], h2[ADMIN_PW_HASH_MAX + 1];
    struct tg_err err = {0};

    ck_assert_int_eq(admin_pw_hash("correct horse", 1000, h, &err), TG_OK);
    ck_assert(strncmp(h, "pbkdf2-sha256$1000$", 19) == 0);
    ck_assert(admin_pw_verify("correct horse", h));
    ck_assert(!admin_pw_verify("correct horsf", h));
    ck_assert(!admin_pw_verify("", h));
    ck_assert_int_eq(admin_pw_hash("correct horse", 1000, h2, &err), TG_OK);
    ck_assert_str_ne(h, h2); /* salted */
    ck_assert(!admin_pw_verify("correct horse", "plaintext"));
    ck_assert(!admin_pw_verify("correct horse", "pbkdf2-sha256$1000$$"));
    ck_assert(!admin_pw_verify("correct horse", NULL));
    ck_assert_int_eq(admin_pw_hash("x", 10, h, &err), TG_E_USAGE);
}
END_TEST

static Suite *
auth_suite(void)
{
    Suite *s = suite_create("auth");

    TG_TCASE(s, "a cookie verifies until it expires",
             a_cookie_verifies_until_it_expires);
    TG_TCASE(s, "a tampered cookie is refused", a_tampered_cookie_is_refused);
    TG_TCASE(s, "a CSRF token is bound to its session",
             a_csrf_token_is_bound_to_its_session);
    TG_TCASE(s, "a password hash verifies only its password",
             a_password_hash_verifies_only_its_password);
    return s;
}

TG_CHECK_MAIN(auth_suite)
