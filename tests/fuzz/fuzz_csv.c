/* The CSV reader behind `tollgate import --from csv`, and the writer of
 * every export. Whatever is read stays within the record's bounds, and a
 * record read, written back and read again gives the same fields (a field
 * starting with = + - @ comes back with the writer's leading '). */
#include <config.h>

#include <string.h>

#include "csv.h"
#include "fuzz.h"

static void
round_trip(const struct tg_csv_record *rec)
{
    static struct tg_csv_record back;
    struct tg_buf b;
    const char *p;
    size_t i;
    int line = 0;

    tg_buf_init(&b, (size_t)1 << 26);
    for (i = 0; i < rec->n; i++)
        tg_csv_field(&b, rec->field[i], i == rec->n - 1);
    CHECK(!tg_buf_failed(&b));
    p = tg_buf_cstr(&b);
    if (tg_csv_next(&p, &back, &line) == 1 && back.n == rec->n) {
        for (i = 0; i < rec->n; i++) {
            const char *f = rec->field[i];
            bool defused = f[0] != '\0' && strchr("=+-@", f[0]) != NULL;

            CHECK(strcmp(back.field[i] + defused, f) == 0);
            CHECK(!defused || back.field[i][0] == '\'');
        }
        CHECK(*p == '\0');
    } else {
        /* only a field one ' too long for the reader may fail to come back */
        for (i = 0; i < rec->n; i++)
            if (strlen(rec->field[i]) == TG_CSV_FIELD_MAX)
                break;
        CHECK(i < rec->n);
    }
    tg_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tg_csv_record rec;
    char *text = malloc(size + 1);
    const char *p, *before;
    int line = 0, got, records = 0;
    size_t i;

    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    p = text;
    for (;;) {
        before = p;
        got = tg_csv_next(&p, &rec, &line);
        if (got <= 0) {
            CHECK(p == before);
            CHECK(got == 0 ? *p == '\0' : 1);
            break;
        }
        CHECK(p > before && p <= text + strlen(text));
        CHECK(rec.n >= 1 && rec.n <= TG_CSV_FIELDS_MAX);
        for (i = 0; i < rec.n; i++) {
            CHECK(rec.field[i] >= rec.text &&
                  rec.field[i] < rec.text + sizeof(rec.text));
            CHECK(strlen(rec.field[i]) <= TG_CSV_FIELD_MAX);
        }
        round_trip(&rec);
        records++;
    }
    CHECK(line >= records);
    free(text);
    return 0;
}
