/* CSV writing and reading (see csv.h). */
#include <config.h>

#include <string.h>

#include "csv.h"

void
tg_csv_field(struct tg_buf *b, const char *v, bool last)
{
    bool formula = v[0] != '\0' && strchr("=+-@", v[0]) != NULL;
    bool quote = formula || strpbrk(v, ",\"\r\n") != NULL;
    const char *q;

    if (quote)
        tg_buf_puts(b, formula ? "\"'" : "\"");
    for (; (q = strchr(v, '"')) != NULL; v = q + 1) {
        tg_buf_append(b, v, (size_t)(q - v));
        tg_buf_puts(b, "\"\"");
    }
    tg_buf_puts(b, v);
    if (quote)
        tg_buf_puts(b, "\"");
    tg_buf_puts(b, last ? "\r\n" : ",");
}

/* Reads one field at s into out; returns the position after it, or NULL
 * when malformed. */
static const char *
field(const char *s, char *out, size_t cap, int *line)
{
    size_t n = 0;
    bool quoted = *s == '"';

    if (quoted)
        s++;
    for (;; s++) {
        if (*s == '\0') {
            if (quoted)
                return NULL;
            break;
        }
        if (quoted && *s == '"') {
            if (s[1] != '"') {
                s++;
                break;
            }
            s++;
        } else if (!quoted && (*s == ',' || *s == '\r' || *s == '\n')) {
            break;
        } else if (!quoted && *s == '"') {
            return NULL;
        }
        if (*s == '\n')
            (*line)++;
        if (n + 1 >= cap)
            return NULL;
        out[n++] = *s;
    }
    out[n] = '\0';
    return *s == '\0' || *s == ',' || *s == '\r' || *s == '\n' ? s : NULL;
}

int
tg_csv_next(const char **p, struct tg_csv_record *rec, int *line)
{
    const char *s = *p;
    char *out = rec->text;

    rec->n = 0;
    if (*s == '\0')
        return 0;
    (*line)++;
    for (;;) {
        if (rec->n == TG_CSV_FIELDS_MAX)
            return -1;
        rec->field[rec->n++] = out;
        s = field(s, out, TG_CSV_FIELD_MAX + 1, line);
        if (s == NULL)
            return -1;
        out += strlen(out) + 1;
        if (*s != ',')
            break;
        s++;
    }
    if (*s == '\r')
        s++;
    if (*s == '\n')
        s++;
    *p = s;
    return 1;
}
