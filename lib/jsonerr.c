/* JSON error bodies, encoded by jansson so any message is escaped right. */
#include <config.h>

#include <string.h>

#include <jansson.h>

#include "jsonerr.h"

enum tg_family
tg_family_of(const char *path)
{
    return path != NULL && strncmp(path, "/v1/", 4) == 0 ? TG_FAMILY_OPENAI
                                                         : TG_FAMILY_NATIVE;
}

char *
tg_jsonerr_body(enum tg_family fam, int status, const char *type,
                const char *code, const char *message)
{
    json_t *body; /* new */
    char *s;

    if (type == NULL)
        type = status == 404  ? "not_found_error"
               : status < 500 ? "invalid_request_error"
                              : "api_error";
    if (fam == TG_FAMILY_NATIVE)
        body = json_pack("{s:s}", "error", message);
    else
        body = json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", message,
                         "type", type, "param", "code", code);
    if (body == NULL)
        return NULL;
    s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return s;
}
