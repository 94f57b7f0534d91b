/* Form text and the Cookie: header, as the admin CGI receives them. */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "form.h"

/* In place: the result is never longer than the input. A '%' not followed
 * by two hex digits stands for itself, as browsers send it. */
static void
urldecode(char *s)
{
    char *w = s;

    for (; *s != '\0'; s++) {
        if (*s == '+') {
            *w++ = ' ';
        } else if (*s == '%' && tg_hex_digit(s[1]) >= 0 &&
                   tg_hex_digit(s[2]) >= 0) {
            *w++ = (char)(tg_hex_digit(s[1]) * 16 + tg_hex_digit(s[2]));
            s += 2;
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
}

bool
admin_params_parse(struct admin_params *ps, const char *text, size_t len)
{
    size_t i = 0;

    while (i < len && ps->n < ADMIN_PARAMS_MAX) {
        size_t j = i, eq;
        char *pair;

        while (j < len && text[j] != '&')
            j++;
        pair = strndup(text + i, j - i);
        if (pair == NULL)
            return false;
        eq = strcspn(pair, "=");
        ps->p[ps->n].value = strdup(pair[eq] == '=' ? pair + eq + 1 : "");
        if (ps->p[ps->n].value == NULL) {
            free(pair);
            return false;
        }
        pair[eq] = '\0';
        ps->p[ps->n].name = pair;
        urldecode(ps->p[ps->n].name);
        urldecode(ps->p[ps->n].value);
        ps->n++;
        i = j + 1;
    }
    return true;
}

void
admin_params_free(struct admin_params *ps)
{
    size_t i;

    for (i = 0; i < ps->n; i++) {
        free(ps->p[i].name);
        free(ps->p[i].value);
    }
    ps->n = 0;
}

const char *
admin_param(const struct admin_params *ps, const char *name)
{
    size_t i;

    for (i = 0; i < ps->n; i++)
        if (strcmp(ps->p[i].name, name) == 0)
            return ps->p[i].value;
    return NULL;
}

bool
admin_cookie_value(const char *hdr, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);

    while (*hdr != '\0') {
        size_t len;

        while (*hdr == ' ' || *hdr == ';')
            hdr++;
        len = strcspn(hdr, ";");
        if (len > nlen && strncmp(hdr, name, nlen) == 0 && hdr[nlen] == '=' &&
            len - nlen - 1 < outlen) {
            memcpy(out, hdr + nlen + 1, len - nlen - 1);
            out[len - nlen - 1] = '\0';
            return true;
        }
        hdr += len;
    }
    return false;
}
