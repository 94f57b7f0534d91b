/* Path normalisation: the input (after its first byte, which picks the
 * output buffer's size) as a request path. What comes out is one spelling
 * of one path: it starts with '/', has no "." or ".." segment, no "//" and
 * no '%', fits the buffer (an exact-size allocation, so ASan sees a byte
 * too far), and normalises to itself. */
#include <config.h>

#include <string.h>

#include "fuzz.h"
#include "path.h"

static int
pchar_or_slash(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("/-._~!$&'()*+,;=:@", c) != NULL);
}

static void
check_clean(const char *p)
{
    size_t n = strlen(p), i;

    CHECK(p[0] == '/');
    CHECK(strstr(p, "//") == NULL);
    CHECK(strchr(p, '%') == NULL);
    CHECK(n == 1 || p[n - 1] != '/');
    CHECK(strstr(p, "/./") == NULL && strstr(p, "/../") == NULL);
    CHECK(strcmp(p, "/.") != 0 && strcmp(p, "/..") != 0);
    CHECK(n < 2 || strcmp(p + n - 2, "/.") != 0);
    CHECK(n < 3 || strcmp(p + n - 3, "/..") != 0);
    for (i = 0; i < n; i++)
        CHECK(pchar_or_slash((unsigned char)p[i]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char big[TG_PATH_MAX], again[TG_PATH_MAX], *out;
    const char *in, *why = NULL;
    size_t outsize;
    bool ok;

    if (size < 1)
        return 0;
    outsize = 1 + (size_t)data[0] * (TG_PATH_MAX - 1) / 255;
    in = (const char *)data + 1;
    size--;
    out = malloc(outsize);
    CHECK(out != NULL);
    ok = tg_path_normalise(in, size, out, outsize, &why);
    if (ok) {
        CHECK(strlen(out) < outsize);
        check_clean(out);
        CHECK(tg_path_normalise(out, strlen(out), again, sizeof(again), &why));
        CHECK(strcmp(again, out) == 0);
        /* A roomier buffer gives the same path. */
        CHECK(tg_path_normalise(in, size, big, sizeof(big), &why));
        CHECK(strcmp(big, out) == 0);
    } else {
        const char *first = why;

        CHECK(why != NULL && why[0] != '\0' && strchr(why, '\n') == NULL);
        CHECK(out[0] == '\0');
        /* Refused with the full buffer too, unless only room was short. */
        if (tg_path_normalise(in, size, big, sizeof(big), &why))
            CHECK(outsize < TG_PATH_MAX && strstr(first, "too long") != NULL);
    }
    free(out);
    return 0;
}
