/* One path, one meaning: the path of a request as tollgate classifies it,
 * meters it and sends it upstream. The authorizer and the relay both read
 * it from the raw request target and normalise it here, so they agree with
 * each other and with what Ollama runs. */
#ifndef TG_PATH_H
#define TG_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define TG_PATH_MAX 512 /* the normalised path, NUL included */

/* Normalises `in` (len bytes: a request target's path, the query already
 * cut) into `out` (outsize bytes, NUL-terminated): percent-encoded
 * unreserved characters, sub-delims, ':' and '@' decoded; "." and ".."
 * segments resolved; empty segments (repeated or trailing slashes)
 * dropped; a doubled "/api/api" or "/v1/v1" prefix undoubled. The result
 * starts with '/', has no "." or ".." segment, no "//", no '%', and
 * normalising it again gives it back.
 *
 * false, with *why a static sentence for the client, for a path that does
 * not survive this cleanly: not starting with '/', climbing above the
 * root, a byte outside RFC 3986 pchar, an invalid percent-encoding, an
 * encoded '/', '%', '?', '#', '\', control, space or non-ASCII byte, or a
 * result that does not fit. `out` is then "". */
bool tg_path_normalise(const char *in, size_t len, char *out, size_t outsize,
                       const char **why);

#endif
