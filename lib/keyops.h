/* Key changes shared by the CLI and the admin pages: create, update,
 * disable, enable, delete, rotate. Each is one SQL statement that also
 * writes its admin_audit row, so the audit log cannot miss a change. */
#ifndef TG_KEYOPS_H
#define TG_KEYOPS_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "err.h"
#include "keys.h"

enum tg_keyops_kind {
    TG_KF_COUNT,
    TG_KF_TIME,
    TG_KF_LIST,
    TG_KF_TEXT,
    TG_KF_SCOPE,
    TG_KF_BOOL /* yes or no */
};

struct tg_keyops_field {
    const char *flag;   /* the CLI's option and the admin form's field */
    const char *column; /* api_keys column */
    enum tg_keyops_kind kind;
};

#define TG_KEYOPS_NFIELDS 13
#define TG_KEYOPS_NLIMITS 5 /* the first five fields are the limits */
#define TG_KEYOPS_EXPIRES 6 /* index of expires_at */
extern const struct tg_keyops_field tg_keyops_fields[TG_KEYOPS_NFIELDS];

/* What to change: set[i] says field i is given, val[i] its text (NULL:
 * SQL NULL, i.e. unlimited / none). Strings are borrowed. */
struct tg_keyops_change {
    const char *name;
    bool set[TG_KEYOPS_NFIELDS];
    const char *val[TG_KEYOPS_NFIELDS];
};

/* Who made a change, for admin_audit ("cli:root", "admin:alice"). */
struct tg_keyops_ctx {
    struct tg_db *db;
    const char *actor;
    const char *secret_file; /* create and rotate hash the new key with it */
    const char *key_prefix;
};

/* True for "none", "unlimited" and "never": the field becomes NULL. */
bool tg_keyops_is_none(const char *v);

/* Checks field i's value; the message starts with `label` + the flag name
 * ("--tokens-day: ..."). TG_E_USAGE when bad. */
enum tg_code tg_keyops_check(size_t i, const char *v, const char *label,
                             struct tg_err *err) TG_MUSTCHECK;

/* Creates the key; the plaintext goes to key (TG_KEY_MAX_LEN + 1 bytes),
 * the new id to *id (may be NULL). TG_E_CONFLICT if the name is taken. */
enum tg_code tg_keyops_create(const struct tg_keyops_ctx *ctx,
                              const struct tg_keyops_change *ch, char *key,
                              size_t keylen, long long *id,
                              struct tg_err *err) TG_MUSTCHECK;

/* Imports another proxy's key (plaintext `key`) as a legacy key: stored as
 * its HMAC like any key, named ch->name or the first free NAME-2, NAME-3
 * ..., which goes to name. TG_E_CONFLICT when the key is here already,
 * TG_E_BAD_REQUEST when its text cannot be a legacy key (see keys.h). */
enum tg_code tg_keyops_importable(const char *prefix, const char *key,
                                  struct tg_err *err) TG_MUSTCHECK;
enum tg_code tg_keyops_import(const struct tg_keyops_ctx *ctx,
                              const struct tg_keyops_change *ch,
                              const char *key, char *name, size_t namelen,
                              struct tg_err *err) TG_MUSTCHECK;

/* Updates the given fields; TG_E_USAGE when nothing is given,
 * TG_E_NOT_FOUND when no key has that name. */
enum tg_code tg_keyops_update(const struct tg_keyops_ctx *ctx,
                              const struct tg_keyops_change *ch,
                              struct tg_err *err) TG_MUSTCHECK;

enum tg_keyops_verb { TG_KEYOPS_DISABLE, TG_KEYOPS_ENABLE, TG_KEYOPS_DELETE };

/* Disable, enable or delete the named key. A delete is refused
 * (TG_E_CONFLICT) while reservations are open, unless force. */
enum tg_code tg_keyops_simple(const struct tg_keyops_ctx *ctx,
                              enum tg_keyops_verb verb, const char *name,
                              bool force, struct tg_err *err) TG_MUSTCHECK;

/* A new key for the named key (same limits and usage); plaintext as in
 * tg_keyops_create. */
enum tg_code tg_keyops_rotate(const struct tg_keyops_ctx *ctx, const char *name,
                              char *key, size_t keylen,
                              struct tg_err *err) TG_MUSTCHECK;

/* The past-tense word for a verb ("disabled"), and its audit action. */
const char *tg_keyops_done(enum tg_keyops_verb verb);

#endif
