/* Token counting on the relay's response path: the upstream (Ollama) body is
 * fed in as it arrives, passed on to the client through an emit callback, and
 * the counts Ollama reported are picked out on the way (reference §6).
 * A struct relay_count lives in the caller's transfer state; its members are
 * private. Memory is bounded whatever the body: O(1) scanner state, plus one
 * SSE event of at most RELAY_COUNT_EVENT_MAX bytes on the heap while
 * strip_usage holds events back. */
#ifndef RELAY_COUNT_H
#define RELAY_COUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_COUNT_MODEL_MAX 128         /* relay_usage.model, NUL included */
#define RELAY_COUNT_EVENT_MAX (64 * 1024) /* longest SSE event held back */

enum relay_wire {
    /* one JSON object (non-streamed answer, embeddings, errors) */
    RELAY_WIRE_JSON,
    /* application/x-ndjson: one object per \n-terminated line */
    RELAY_WIRE_NDJSON,
    /* text/event-stream: "data: <json>\n\n" events, "data: [DONE]" */
    RELAY_WIRE_SSE,
};

/* Hands n > 0 bytes to the client: 0 on success, -1 when the client is gone.
 * After a -1 the feed functions emit nothing more and return -1; what was
 * counted stays what the client got. */
typedef int (*relay_emit_fn)(void *arg, const char *p, size_t n);

struct relay_usage {
    /* From the counts the upstream reported, 0 if none. */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    /* A final object or usage object with counts was seen. */
    bool counts_seen;
    /* Native done:true, SSE [DONE], or a complete JSON object. */
    bool done_seen;
    /* A top-level "error" (not null or false) was seen. */
    bool error_seen;
    /* NDJSON done:false lines and SSE events with non-empty choices that
     * reached the client: the estimate's basis when counts_seen is false. */
    int64_t content_chunks;
    /* The last non-empty top-level "model", cut at a UTF-8 boundary; "" if
     * none. */
    char model[RELAY_COUNT_MODEL_MAX];
};

/* Private: what one top-level JSON object said, filled as it streams by. */
struct relay_count_facts {
    bool closed;    /* its closing brace was seen */
    int8_t done;    /* "done": -1 absent or not a bool, 0 false, 1 true */
    int8_t choices; /* "choices": -1 absent or no array, 0 [], 1 non-empty */
    bool error;     /* "error" with a value other than null or false */
    bool has_prompt_eval, has_eval; /* integer "prompt_eval_count" etc. */
    bool usage_key;                 /* "usage" present, whatever its value */
    bool usage_obj;                 /* ... and an object */
    bool has_ptok, has_ctok;        /* integer usage.prompt/completion_tokens */
    bool has_model;                 /* "model" was a string */
    int64_t prompt_eval, eval, ptok, ctok;
    char model[RELAY_COUNT_MODEL_MAX];
};

/* Private: the incremental JSON scanner, O(1) state whatever the input. */
struct relay_count_scan {
    uint64_t depth;     /* nesting of {} and [] */
    uint8_t lex;        /* between tokens, in a string, in a number/literal */
    uint8_t sink;       /* where the current string's bytes go */
    uint8_t key1, key2; /* current key at depth 1, and in "usage" at depth 2 */
    bool top_obj;       /* depth 1 is an object (not an array) */
    bool in_usage;      /* depth 2 is the "usage" object */
    bool want_key1, want_key2; /* the next string there is a key */
    bool choices_open;         /* just after "choices":[, is it empty? */
    bool esc;                  /* after a backslash in a string */
    uint8_t uleft;             /* hex digits still due in a \u escape */
    uint32_t ucode, hi; /* the \u value read so far; a pending surrogate */
    bool str_trunc;     /* the kept string did not fit in str */
    bool num_ok, num_neg, num_digits; /* the scalar is an integer so far */
    size_t str_len, lit_len;
    int64_t num; /* the scalar's value, saturating */
    char lit[8]; /* the scalar's first bytes: true/false/null */
    char str[RELAY_COUNT_MODEL_MAX]; /* the key or model string being read */
    struct relay_count_facts f;      /* of the current top-level object */
};

struct relay_count { /* members private: use the functions */
    enum relay_wire wire;
    bool strip_usage;     /* SSE only */
    bool gone;            /* emit failed: nothing more goes out */
    struct relay_usage u; /* committed: what the client got */
    struct relay_count_scan js;
    uint8_t sse_field;      /* what the current SSE line is */
    uint8_t sse_prefix;     /* bytes of "data:" matched */
    uint8_t sse_data_lines; /* data lines in this event, saturating */
    uint8_t sse_done;       /* bytes of "[DONE]" matched, or "no match" */
    bool sse_line_any;      /* the line has a byte other than \r */
    bool sse_event_any;     /* the event has a byte */
    bool passthrough;       /* this event outgrew the hold buffer */
    char *held;             /* the event held back: heap, owned */
    size_t held_len, held_cap;
};

/* Prepares c for one response body; strip_usage is honoured for SSE only.
 * c must be fresh or freed: init does not release a previous buffer. */
void relay_count_init(struct relay_count *c, enum relay_wire wire,
                      bool strip_usage);

/* Feeds the next n bytes (n may be 0; p may then be NULL) and emits what the
 * client may see now: JSON and NDJSON bytes at once, SSE events at once or,
 * with strip_usage, at their blank line (an event longer than
 * RELAY_COUNT_EVENT_MAX passes through unchanged, usage key and all). Bytes
 * the client did not get are not counted. emit NULL counts without emitting.
 * Returns 0, or -1 once emit has failed (now or before). */
int relay_count_feed(struct relay_count *c, const char *p, size_t n,
                     relay_emit_fn emit, void *arg);

/* End of the body: emits an SSE event still held back and counts a last line
 * or event that had no terminator. 0, or -1 if emit failed. Idempotent. */
int relay_count_finish(struct relay_count *c, relay_emit_fn emit, void *arg);

/* Copies what was counted so far; valid before and after relay_count_free. */
void relay_count_result(const struct relay_count *c, struct relay_usage *out);

/* Releases the heap c holds; safe twice, and on a zeroed struct. */
void relay_count_free(struct relay_count *c);

/* "application/x-ndjson..." is NDJSON, "text/event-stream..." SSE, anything
 * else (NULL too) JSON. Case-insensitive; parameters are ignored. */
enum relay_wire relay_count_wire_for(const char *content_type);

#endif
