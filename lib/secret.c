/* Loading the server secret with the checks that keep it secret. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "secret.h"

enum tg_code
tg_secret_load(const char *path, struct tg_secret *s, struct tg_err *err)
{
    enum tg_code rc = TG_E_CONFIG;
    struct stat st;
    ssize_t n;
    int fd;

    memset(s, 0, sizeof(*s));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return tg_err_set(err, TG_E_CONFIG,
                          "secret_file %s: %s (create it with: head -c 32 "
                          "/dev/urandom | base64 > FILE; chmod 600 FILE)",
                          path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tg_err_set(err, TG_E_CONFIG, "secret_file %s: not a regular file",
                        path);
        goto out;
    }
    if (st.st_mode & (S_IRWXO)) {
        rc = tg_err_set(err, TG_E_CONFIG,
                        "secret_file %s: other users may read it (mode %04o); "
                        "run chmod 600 %s",
                        path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    n = read(fd, s->bytes, sizeof(s->bytes));
    if (n < 0) {
        rc = tg_err_set(err, TG_E_IO, "secret_file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    while (n > 0 && (s->bytes[n - 1] == '\n' || s->bytes[n - 1] == '\r' ||
                     s->bytes[n - 1] == ' ' || s->bytes[n - 1] == '\t'))
        n--;
    s->len = (size_t)n;
    if (s->len < TG_SECRET_MIN) {
        rc = tg_err_set(err, TG_E_CONFIG,
                        "secret_file %s: %s; it needs at least %d bytes of "
                        "random data",
                        path, s->len == 0 ? "empty" : "too short",
                        TG_SECRET_MIN);
        goto out;
    }
    rc = TG_OK;
out:
    if (rc != TG_OK)
        tg_secret_wipe(s);
    close(fd);
    return rc;
}

void
tg_secret_wipe(struct tg_secret *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}
