/* Reading the key lists of other proxies for `tollgate import`: the FastAPI
 * seed's `VALID_API_KEYS = {"key": "user", ...}` in config.py, Ollaguard's
 * storage.json, and a CSV with a header naming the CLI's key fields. Each
 * parser hands every entry to a callback; nothing here touches the
 * database, so the formats are tested on their own. */
#ifndef TG_IMPORT_H
#define TG_IMPORT_H

#include "err.h"
#include "keyops.h"

#define TG_IMPORT_NAME_MAX 90 /* leaves room for "-NNN" under api_keys' 100 */

/* One key to import: ch.name is the wanted name (the user field, or the
 * format's default), ch.set/val the limits (CSV only); key is the
 * plaintext. Everything is borrowed for the callback's duration. */
struct tg_import_entry {
    struct tg_keyops_change ch;
    const char *key;
    int line; /* where it was found, for messages (0 when unknown) */
};

typedef enum tg_code (*tg_import_fn)(void *arg, const struct tg_import_entry *e,
                                     struct tg_err *err);

enum tg_import_format { TG_IMPORT_FASTAPI, TG_IMPORT_OLLAGUARD, TG_IMPORT_CSV };

/* "fastapi", "ollaguard" or "csv"; -1 for anything else. */
int tg_import_format(const char *name);

/* Parses `text` (NUL-terminated) in the format and calls fn for each entry
 * in file order, stopping at fn's first failure. Anything the parser does
 * not understand is TG_E_BAD_REQUEST naming the line: nothing is guessed. */
enum tg_code tg_import_parse(enum tg_import_format fmt, const char *text,
                             tg_import_fn fn, void *arg,
                             struct tg_err *err) TG_MUSTCHECK;

#endif
