/* CSV as RFC 4180 has it: written by the admin page's download and the
 * CLI's exports, read by `tollgate import --from csv`. One writer, so every
 * export quotes and defuses the same way. */
#ifndef TG_CSV_H
#define TG_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define TG_CSV_FIELDS_MAX 32
#define TG_CSV_FIELD_MAX 1024

/* Appends one field and then "," or, when last, CRLF. A field holding a
 * comma, quote, CR or LF is quoted with its quotes doubled; one starting
 * with = + - @ gets a leading ' so a spreadsheet never runs it as a
 * formula (which also quotes it). */
void tg_csv_field(struct tg_buf *b, const char *v, bool last);

/* One parsed record: up to TG_CSV_FIELDS_MAX fields, each NUL-terminated
 * in `text` (storage owned by the record). */
struct tg_csv_record {
    size_t n;
    const char *field[TG_CSV_FIELDS_MAX];
    char text[TG_CSV_FIELDS_MAX * (TG_CSV_FIELD_MAX + 1)];
};

/* Parses the record starting at *p (quoted fields may span lines) and moves
 * *p past its line end. Returns 1 for a record, 0 at the end of input, -1
 * for a malformed one (unterminated quote, text after a closing quote, too
 * many or too long fields), with *p left where parsing stopped. A blank
 * line is a record of one empty field. *line counts the lines consumed. */
int tg_csv_next(const char **p, struct tg_csv_record *rec, int *line);

#endif
