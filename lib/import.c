/* Parsers for `tollgate import` (see import.h). Each is conservative: a
 * construct it does not know is an error with a line number, never a
 * guess, since a misread key list would lock clients out or let the wrong
 * ones in. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "csv.h"
#include "import.h"

#define PY_STR_MAX 1024

int
tg_import_format(const char *name)
{
    static const char *const names[] = {"fastapi", "ollaguard", "csv"};
    int i;

    for (i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* A name for api_keys: control characters become '_', at most
 * TG_IMPORT_NAME_MAX bytes without splitting a UTF-8 sequence, and
 * `fallback` when nothing is left. */
static const char *
clean_name(const char *src, const char *fallback, char *out)
{
    size_t n = strlen(src), i;

    if (n > TG_IMPORT_NAME_MAX) {
        n = TG_IMPORT_NAME_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '_' : src[i];
    out[n] = '\0';
    return n > 0 ? out : fallback;
}

static enum tg_code
emit(tg_import_fn fn, void *arg, const char *name, const char *fallback,
     const char *key, int line, struct tg_err *err)
{
    char clean[TG_IMPORT_NAME_MAX + 1];
    struct tg_import_entry e = {.key = key, .line = line};

    e.ch.name = clean_name(name, fallback, clean);
    return fn(arg, &e, err);
}

/* ---- config.py: VALID_API_KEYS = {"key": "user", ...} ------------------ */

struct py {
    const char *p;
    int line;
};

static void
py_blank(struct py *s)
{
    for (;;) {
        if (*s->p == ' ' || *s->p == '\t' || *s->p == '\r')
            s->p++;
        else if (*s->p == '\n')
            s->p++, s->line++;
        else if (*s->p == '#')
            s->p += strcspn(s->p, "\n");
        else
            return;
    }
}

static enum tg_code
py_bad(struct py *s, const char *want, struct tg_err *err)
{
    return tg_err_set(err, TG_E_BAD_REQUEST,
                      "line %d: %s expected in VALID_API_KEYS, found '%.12s' "
                      "(only a literal dict of plain strings is read)",
                      s->line, want, *s->p != '\0' ? s->p : "end of file");
}

/* A plain '...' or "..." literal with \\ \' \" escapes; no prefixes,
 * triple quotes or line breaks. */
static enum tg_code
py_string(struct py *s, char *out, struct tg_err *err)
{
    char q = *s->p;
    size_t n = 0;

    if ((q != '"' && q != '\'') || (s->p[1] == q && s->p[2] == q))
        return py_bad(s, "a quoted string", err);
    for (s->p++; *s->p != q; s->p++) {
        if (*s->p == '\0' || *s->p == '\n' || n + 1 >= PY_STR_MAX)
            return py_bad(s, "the string's end", err);
        if (*s->p == '\\' && strchr("\\'\"", s->p[1]) == NULL)
            return py_bad(s, "an escape of \\, ' or \"", err);
        if (*s->p == '\\')
            s->p++;
        out[n++] = *s->p;
    }
    s->p++;
    out[n] = '\0';
    return TG_OK;
}

/* The start of `VALID_API_KEYS = {` (an annotation is fine), at column 0. */
static const char *
py_find(const char *text, int *line)
{
    const char *p = text, *q;

    for (*line = 1; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (p != text)
            (*line)++;
        if (strncmp(p, "VALID_API_KEYS", 14) != 0)
            continue;
        q = p + 14 + strspn(p + 14, " \t");
        if (*q == ':')
            q += strcspn(q, "=\n");
        if (*q == '=' && q[1] != '=')
            return q + 1;
    }
    return NULL;
}

static enum tg_code
parse_fastapi(const char *text, tg_import_fn fn, void *arg, struct tg_err *err)
{
    char key[PY_STR_MAX], user[PY_STR_MAX];
    struct py s;
    enum tg_code rc;
    int at;

    s.p = py_find(text, &s.line);
    if (s.p == NULL)
        return tg_err_set(err, TG_E_BAD_REQUEST,
                          "no 'VALID_API_KEYS = {...}' at the start of a line");
    py_blank(&s);
    if (*s.p != '{')
        return py_bad(&s, "'{'", err);
    for (s.p++;;) {
        py_blank(&s);
        if (*s.p == '}')
            return TG_OK;
        at = s.line;
        if ((rc = py_string(&s, key, err)) != TG_OK)
            return rc;
        py_blank(&s);
        if (*s.p != ':')
            return py_bad(&s, "':'", err);
        s.p++;
        py_blank(&s);
        if ((rc = py_string(&s, user, err)) != TG_OK)
            return rc;
        if ((rc = emit(fn, arg, user, "imported", key, at, err)) != TG_OK)
            return rc;
        py_blank(&s);
        if (*s.p == ',')
            s.p++;
        else if (*s.p != '}')
            return py_bad(&s, "',' or '}'", err);
    }
}

/* ---- Ollaguard storage.json -------------------------------------------- */

/* One entry: a key string, or an object with "key" and maybe a name. */
static enum tg_code
ollaguard_item(json_t *it, const char *key_hint, tg_import_fn fn, void *arg,
               struct tg_err *err)
{
    static const char *const names[] = {"name", "user", "owner", "note"};
    const char *key = key_hint, *name = "";
    size_t i;

    if (json_is_string(it) && key == NULL)
        key = json_string_value(it);
    else if (json_is_string(it))
        name = json_string_value(it);
    if (json_is_object(it) && key == NULL)
        key = json_string_value(json_object_get(it, "key"));
    for (i = 0; i < 4 && json_is_object(it) && name[0] == '\0'; i++)
        if (json_is_string(json_object_get(it, names[i])))
            name = json_string_value(json_object_get(it, names[i]));
    if (key == NULL)
        return tg_err_set(err, TG_E_BAD_REQUEST,
                          "storage.json: an entry without a key string");
    return emit(fn, arg, name, "ollaguard", key, 0, err);
}

/* The list of keys: the document itself, or its "keys" / "api_keys". */
static json_t *
ollaguard_list(json_t *doc)
{
    json_t *l;

    if (json_is_array(doc))
        return doc;
    l = json_object_get(doc, "keys");
    return l != NULL ? l : json_object_get(doc, "api_keys");
}

static enum tg_code
parse_ollaguard(const char *text, tg_import_fn fn, void *arg,
                struct tg_err *err)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr); /* new */
    json_t *list = ollaguard_list(doc), *it; /* borrowed */
    enum tg_code rc = TG_OK;
    const char *k;
    size_t i;

    if (doc == NULL)
        return tg_err_set(err, TG_E_BAD_REQUEST, "line %d: %s", jerr.line,
                          jerr.text);
    if (json_is_array(list)) {
        for (i = 0; i < json_array_size(list) && rc == TG_OK; i++)
            rc = ollaguard_item(json_array_get(list, i), NULL, fn, arg, err);
    } else if (json_is_object(list)) {
        json_object_foreach(list, k, it)
        {
            if (rc == TG_OK)
                rc = ollaguard_item(it, k, fn, arg, err);
        }
    } else {
        rc = tg_err_set(err, TG_E_BAD_REQUEST,
                        "storage.json: no list of keys (want an array, or "
                        "\"keys\" holding an array or an object)");
    }
    json_decref(doc);
    return rc;
}

/* ---- CSV: name,key,<CLI field>,... -------------------------------------- */

#define CSV_NAME (-1)
#define CSV_KEY (-2)

/* A header cell as a field index, CSV_NAME or CSV_KEY; -3 if unknown.
 * tokens_day and tokens-day both name --tokens-day. */
static int
csv_column(const char *h)
{
    char flag[32];
    size_t i;

    if (strcmp(h, "name") == 0)
        return CSV_NAME;
    if (strcmp(h, "key") == 0)
        return CSV_KEY;
    snprintf(flag, sizeof(flag), "%s", h);
    for (i = 0; flag[i] != '\0'; i++)
        flag[i] = flag[i] == '_' ? '-' : flag[i];
    for (i = 0; i < TG_KEYOPS_NFIELDS; i++)
        if (strcmp(flag, tg_keyops_fields[i].flag) == 0)
            return (int)i;
    return -3;
}

static enum tg_code
csv_entry(const struct tg_csv_record *rec, const int *cols, int line,
          tg_import_fn fn, void *arg, struct tg_err *err)
{
    char label[32], clean[TG_IMPORT_NAME_MAX + 1];
    struct tg_import_entry e = {.line = line};
    const char *name = "";
    size_t i;

    snprintf(label, sizeof(label), "line %d: ", line);
    for (i = 0; i < rec->n; i++) {
        const char *v = rec->field[i];

        if (cols[i] == CSV_NAME)
            name = v;
        else if (cols[i] == CSV_KEY)
            e.key = v;
        else if (v[0] != '\0') {
            if (tg_keyops_check((size_t)cols[i], v, label, err) != TG_OK)
                return err->code;
            e.ch.set[cols[i]] = true;
            e.ch.val[cols[i]] = tg_keyops_fields[cols[i]].kind != TG_KF_SCOPE &&
                                        tg_keyops_is_none(v)
                                    ? NULL
                                    : v;
        }
    }
    if (e.key == NULL || e.key[0] == '\0')
        return tg_err_set(err, TG_E_BAD_REQUEST, "line %d: no key", line);
    e.ch.name = clean_name(name, "imported", clean);
    return fn(arg, &e, err);
}

static enum tg_code
parse_csv(const char *text, tg_import_fn fn, void *arg, struct tg_err *err)
{
    struct tg_csv_record rec;
    int cols[TG_CSV_FIELDS_MAX], line = 0, got, at;
    bool has_key = false;
    enum tg_code rc = TG_OK;
    size_t i, ncols;

    if (tg_csv_next(&text, &rec, &line) != 1)
        return tg_err_set(err, TG_E_BAD_REQUEST, "line 1: no CSV header");
    ncols = rec.n;
    for (i = 0; i < ncols; i++) {
        cols[i] = csv_column(rec.field[i]);
        has_key |= cols[i] == CSV_KEY;
        if (cols[i] == -3)
            return tg_err_set(err, TG_E_BAD_REQUEST,
                              "line 1: unknown column '%.32s' (want name, "
                              "key and the key fields of tollgate key create, "
                              "e.g. tokens_day)",
                              rec.field[i]);
    }
    if (!has_key)
        return tg_err_set(err, TG_E_BAD_REQUEST, "line 1: no 'key' column");
    while (rc == TG_OK) {
        at = line + 1;
        got = tg_csv_next(&text, &rec, &line);
        if (got == 0)
            break;
        if (got < 0)
            return tg_err_set(err, TG_E_BAD_REQUEST, "line %d: malformed CSV",
                              at);
        if (rec.n == 1 && rec.field[0][0] == '\0')
            continue;
        if (rec.n != ncols)
            return tg_err_set(err, TG_E_BAD_REQUEST,
                              "line %d: %zu fields, the header has %zu", at,
                              rec.n, ncols);
        rc = csv_entry(&rec, cols, at, fn, arg, err);
    }
    return rc;
}

enum tg_code
tg_import_parse(enum tg_import_format fmt, const char *text, tg_import_fn fn,
                void *arg, struct tg_err *err)
{
    if (fmt == TG_IMPORT_FASTAPI)
        return parse_fastapi(text, fn, arg, err);
    if (fmt == TG_IMPORT_OLLAGUARD)
        return parse_ollaguard(text, fn, arg, err);
    return parse_csv(text, fn, arg, err);
}
