/* Key generation, checksum, keyed hash and masking. CRC-32 rather than a
 * truncated hash because it provably catches every single-character change
 * (a burst shorter than 32 bits); libcrypto offers no public CRC-32. */
#include <config.h>

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "codec.h"
#include "keys.h"

static const char b62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool
is_b62(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= 'a' && ch <= 'z');
}

static uint32_t
crc32_of(const char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        crc ^= (unsigned char)p[i];
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Big-endian bytes to a fixed-width base62 string, most significant first:
 * repeated division of the byte array by 62. */
static void
to_b62(unsigned char *num, size_t nlen, char *out, size_t width)
{
    size_t pos = width;

    while (pos > 0) {
        unsigned rem = 0;
        size_t i;

        for (i = 0; i < nlen; i++) {
            unsigned cur = (rem << 8) | num[i];

            num[i] = (unsigned char)(cur / 62);
            rem = cur % 62;
        }
        out[--pos] = b62[rem];
    }
}

static void
checksum(const char *random, char out[TG_KEY_CHECK_LEN])
{
    uint32_t crc = crc32_of(random, TG_KEY_RANDOM_LEN);
    unsigned char be[4] = {(unsigned char)(crc >> 24),
                           (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};

    to_b62(be, sizeof(be), out, TG_KEY_CHECK_LEN);
}

bool
tg_keys_prefix_ok(const char *prefix)
{
    size_t i, n = strlen(prefix);

    if (n > TG_KEY_PREFIX_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (!is_b62(prefix[i]) && prefix[i] != '-' && prefix[i] != '_')
            return false;
    return true;
}

enum tg_code
tg_keys_generate(const char *prefix, char *out, size_t outlen,
                 struct tg_err *err)
{
    unsigned char rnd[32];
    size_t plen = strlen(prefix);

    if (!tg_keys_prefix_ok(prefix))
        return tg_err_set(err, TG_E_CONFIG,
                          "key_prefix '%.32s': use up to %d of [A-Za-z0-9_-]",
                          prefix, TG_KEY_PREFIX_MAX);
    if (outlen < plen + TG_KEY_BODY_LEN + 1)
        return tg_err_set(err, TG_E_INTERNAL, "key buffer too small");
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return tg_err_set(err, TG_E_INTERNAL, "RAND_bytes failed");
    memcpy(out, prefix, plen);
    to_b62(rnd, sizeof(rnd), out + plen, TG_KEY_RANDOM_LEN);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    checksum(out + plen, out + plen + TG_KEY_RANDOM_LEN);
    out[plen + TG_KEY_BODY_LEN] = '\0';
    return TG_OK;
}

bool
tg_keys_parse(const char *prefix, const char *key, size_t len)
{
    size_t i, plen = strlen(prefix);
    char want[TG_KEY_CHECK_LEN];

    if (len != plen + TG_KEY_BODY_LEN || memcmp(key, prefix, plen) != 0)
        return false;
    for (i = plen; i < len; i++)
        if (!is_b62(key[i]))
            return false;
    checksum(key + plen, want);
    return memcmp(want, key + plen + TG_KEY_RANDOM_LEN, TG_KEY_CHECK_LEN) == 0;
}

enum tg_code
tg_keys_hash(const struct tg_secret *secret, const char *key, size_t len,
             char out[TG_KEY_HASH_LEN + 1], struct tg_err *err)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (HMAC(EVP_sha256(), secret->bytes, (int)secret->len,
             (const unsigned char *)key, len, mac, &maclen) == NULL ||
        maclen * 2 != TG_KEY_HASH_LEN)
        return tg_err_set(err, TG_E_INTERNAL, "HMAC-SHA-256 failed");
    tg_hex_encode(mac, maclen, out);
    return TG_OK;
}

void
tg_keys_display(const char *prefix, const char *key,
                char out[TG_KEY_DISPLAY_LEN + 1])
{
    size_t plen = strlen(prefix), n = strlen(key);

    n = n > plen ? n - plen : 0;
    if (n > TG_KEY_DISPLAY_LEN)
        n = TG_KEY_DISPLAY_LEN;
    memcpy(out, key + plen, n);
    out[n] = '\0';
}

bool
tg_keys_legacy_ok(const char *prefix, const char *key, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                   "qrstuvwxyz0123456789._~+/=-";
    size_t plen = strlen(prefix), i;

    if (len < TG_KEY_LEGACY_MIN || len > TG_KEY_LEGACY_MAX)
        return false;
    /* Ours are judged by their checksum alone: with a prefix, anything that
     * starts with it; without one, anything of our length. */
    if (plen > 0 ? len >= plen && memcmp(key, prefix, plen) == 0
                 : len == TG_KEY_BODY_LEN)
        return false;
    for (i = 0; i < len; i++)
        if (key[i] == '\0' || strchr(alphabet, key[i]) == NULL)
            return false;
    return true;
}

void
tg_keys_mask(const char *prefix, const char *key, size_t len, char *dst,
             size_t dstlen)
{
    size_t plen = strlen(prefix), show = plen + TG_KEY_DISPLAY_LEN, i;

    if (dstlen < 4) {
        if (dstlen > 0)
            dst[0] = '\0';
        return;
    }
    if (len < plen || memcmp(key, prefix, plen) != 0)
        show = TG_KEY_DISPLAY_LEN / 2; /* not ours: give away less */
    if (show > len / 3)
        show = len / 3;
    if (show > dstlen - 4)
        show = dstlen - 4;
    for (i = 0; i < show; i++) /* logs stay printable, whatever was sent */
        dst[i] = (key[i] > ' ' && key[i] < 0x7f) ? key[i] : '?';
    memcpy(dst + show, "...", 4);
}
