/* POST /auth, answered by the relay itself (routed without the authorizer,
 * as /health is): opt-in IP trust for clients that cannot send a key
 * header. With ip_trust_ttl > 0, a good key posted here trusts the
 * client's address (REMOTE_ADDR, never X-Forwarded-For) for that many
 * seconds, and the authorizer charges keyless requests from it to that
 * key. With ip_trust_ttl 0 (the default), /auth is a 404. */
#ifndef RELAY_TRUST_H
#define RELAY_TRUST_H

#include <stdbool.h>

#include "relay.h"
#include "request.h"

/* Answers the request when its path is /auth; false otherwise. */
bool relay_trust_handle(struct relay *app, const struct tg_request *q);

#endif
