/* Key parser and masking: whatever a client presents is parsed against
 * several prefixes and masked for the log. A key that parses is rebuilt
 * with each character changed: CRC-32 must catch every one of them. */
#include <config.h>

#include <string.h>

#include "fuzz.h"
#include "keys.h"

static const char *const prefixes[] = {"", "sk-tg-", "sk-", "tg_",
                                       "ABCDEFGHIJKLMNOP"};

static bool
printable(char ch)
{
    return ch > ' ' && ch < 0x7f;
}

/* A mask shows at most a third of the input, printable, then "...". */
static void
check_mask(const char *prefix, const char *key, size_t len, size_t dstlen)
{
    char *dst = malloc(dstlen + 1); /* exact size: ASan sees an overrun */
    size_t i, n;

    CHECK(dst != NULL);
    tg_keys_mask(prefix, key, len, dst, dstlen);
    if (dstlen == 0) {
        free(dst);
        return;
    }
    n = strnlen(dst, dstlen);
    CHECK(n < dstlen); /* NUL-terminated within dstlen */
    if (dstlen >= 4) {
        CHECK(n >= 3 && memcmp(dst + n - 3, "...", 3) == 0);
        n -= 3;
        CHECK(n <= len / 3);
        CHECK(n <= strlen(prefix) + TG_KEY_DISPLAY_LEN);
        for (i = 0; i < n; i++)
            CHECK(dst[i] == (printable(key[i]) ? key[i] : '?'));
    } else {
        CHECK(n == 0);
    }
    free(dst);
}

/* Every single-character change of a valid key, to any base62 character or
 * to a byte outside the alphabet, fails parsing. */
static void
check_one_change(const char *prefix, const char *key, size_t len, uint8_t sel)
{
    static const char alpha[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_.";
    char copy[TG_KEY_MAX_LEN];
    size_t i;

    CHECK(len <= sizeof(copy));
    for (i = 0; i < len; i++) {
        char repl = alpha[(sel + i) % (sizeof(alpha) - 1)];

        if (repl == key[i])
            repl = key[i] == 'a' ? 'b' : 'a';
        memcpy(copy, key, len);
        copy[i] = repl;
        CHECK(!tg_keys_parse(prefix, copy, len));
    }
}

/* A legacy key (imported, looked up by hash) is never one of ours, never
 * starts with the prefix, and is bounded in length and alphabet. */
static void
check_legacy(const char *prefix, const char *key, size_t size)
{
    size_t plen = strlen(prefix), j;

    if (!tg_keys_legacy_ok(prefix, key, size))
        return;
    CHECK(!tg_keys_parse(prefix, key, size));
    CHECK(size >= TG_KEY_LEGACY_MIN && size <= TG_KEY_LEGACY_MAX);
    CHECK(plen == 0 || size < plen || memcmp(key, prefix, plen) != 0);
    for (j = 0; j < size; j++)
        CHECK((key[j] != '\0' && strchr("._~+/=-", key[j]) != NULL) ||
              (key[j] >= '0' && key[j] <= '9') ||
              (key[j] >= 'A' && key[j] <= 'Z') ||
              (key[j] >= 'a' && key[j] <= 'z'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key = (const char *)data;
    char *str = malloc(size + 1);
    char disp[TG_KEY_DISPLAY_LEN + 1];
    size_t i, j, plen;

    CHECK(str != NULL);
    memcpy(str, data, size);
    str[size] = '\0';
    (void)tg_keys_prefix_ok(str);
    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        plen = strlen(prefixes[i]);
        CHECK(tg_keys_prefix_ok(prefixes[i]));
        if (tg_keys_parse(prefixes[i], key, size)) {
            CHECK(size == plen + TG_KEY_BODY_LEN);
            CHECK(memcmp(key, prefixes[i], plen) == 0);
            for (j = plen; j < size; j++)
                CHECK((key[j] >= '0' && key[j] <= '9') ||
                      (key[j] >= 'A' && key[j] <= 'Z') ||
                      (key[j] >= 'a' && key[j] <= 'z'));
            check_one_change(prefixes[i], key, size, data[size - 1]);
        }
        for (j = 0; j <= TG_KEY_MASK_MAX + 1; j++)
            check_mask(prefixes[i], key, size, j);
        tg_keys_display(prefixes[i], str, disp);
        CHECK(strlen(disp) <= TG_KEY_DISPLAY_LEN);
        check_legacy(prefixes[i], key, size);
    }
    free(str);
    return 0;
}
