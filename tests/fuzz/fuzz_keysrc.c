/* Key extraction from Authorization, X-API-Key and the query string. Input:
 * byte 0 says which of the three are present, then the three values
 * separated by NUL bytes. The first source that holds a key wins, a header
 * key is one token of its value, and the copy is always terminated and
 * bounded; what is found goes on to the key parser as the authorizer's does. */
#include <config.h>

#include <string.h>

#include "fuzz.h"
#include "keys.h"
#include "keysrc.h"

static void
check_found(const struct tg_key_found *k)
{
    CHECK(k->len <= TG_KEY_MAX_LEN + 1);
    CHECK(k->key[k->len] == '\0');
    CHECK((k->src == TG_KEY_FROM_NONE) == (k->len == 0));
    CHECK(tg_keysrc_name(k->src) != NULL);
    if (k->src != TG_KEY_FROM_QUERY && k->src != TG_KEY_FROM_NONE)
        CHECK(strcspn(k->key, " \t") == k->len); /* one token */
    (void)tg_keys_parse("sk-tg-", k->key, k->len);
}

/* A header key is a substring of the header it came from. */
static void
check_from(const struct tg_key_found *k, const char *hdr)
{
    size_t n = k->len > TG_KEY_MAX_LEN ? TG_KEY_MAX_LEN : k->len;

    CHECK(hdr != NULL && strstr(hdr, k->key) != NULL);
    CHECK(n <= strlen(hdr));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *part[3] = {NULL, NULL, NULL}, *p;
    const char *auth, *xkey, *query;
    struct tg_key_found all, one;
    size_t i;

    if (size < 1)
        return 0;
    text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    text[size] = '\0';
    p = text;
    for (i = 0; i < 3; i++) {
        part[i] = p;
        p += strlen(p);
        if (p < text + size - 1)
            p++; /* past the NUL that ended this part */
    }
    auth = data[0] & 1 ? part[0] : NULL;
    xkey = data[0] & 2 ? part[1] : NULL;
    query = data[0] & 4 ? part[2] : NULL;

    tg_keysrc_find(auth, xkey, query, &all);
    check_found(&all);
    /* The sources in order: the winner is what its source alone gives. */
    tg_keysrc_find(auth, NULL, NULL, &one);
    check_found(&one);
    if (one.src != TG_KEY_FROM_NONE) {
        CHECK(memcmp(&one, &all, sizeof(one)) == 0);
        if (one.len <= TG_KEY_MAX_LEN)
            check_from(&one, auth);
        goto out;
    }
    tg_keysrc_find(NULL, xkey, NULL, &one);
    check_found(&one);
    if (one.src != TG_KEY_FROM_NONE) {
        CHECK(one.src == TG_KEY_FROM_HEADER);
        CHECK(memcmp(&one, &all, sizeof(one)) == 0);
        if (one.len <= TG_KEY_MAX_LEN)
            check_from(&one, xkey);
        goto out;
    }
    tg_keysrc_find(NULL, NULL, query, &one);
    check_found(&one);
    CHECK(memcmp(&one, &all, sizeof(one)) == 0);
    CHECK(one.src == TG_KEY_FROM_NONE || one.src == TG_KEY_FROM_QUERY);
    CHECK(one.src == TG_KEY_FROM_NONE || strstr(query, "api_key=") != NULL);
out:
    free(text);
    return 0;
}
