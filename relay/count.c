/* Streams an upstream body to the client and counts its tokens on the way.
 *
 * Design: one incremental JSON scanner (string/escape state, nesting depth,
 * the current key at depth 1 and inside "usage" at depth 2, integer and
 * literal accumulation) pulls the few fields we charge by out of any split of
 * the bytes with O(1) state, so a many-MB embeddings body or a long NDJSON
 * line is never buffered. JSON and NDJSON bytes are emitted as they arrive and
 * scanned once delivered: an object counts when its closing brace reached the
 * client. SSE is read line by line; only with strip_usage is an event held
 * until its blank line (at most RELAY_COUNT_EVENT_MAX, else it passes through
 * untouched), so a usage event can be dropped or re-encoded: the only use of
 * jansson, which cannot parse incrementally. */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "count.h"

enum lex { LEX_WS, LEX_STR, LEX_SCALAR };
enum sink { SINK_NONE, SINK_KEY, SINK_MODEL };

enum key {
    KEY_NONE,
    KEY_OTHER,
    KEY_MODEL,
    KEY_DONE,
    KEY_ERROR,
    KEY_PROMPT_EVAL,
    KEY_EVAL,
    KEY_USAGE,
    KEY_CHOICES,
    KEY_PROMPT_TOKENS,
    KEY_COMPLETION_TOKENS,
};

enum sse_field { SSE_NONE, SSE_PREFIX, SSE_SPACE, SSE_PAYLOAD, SSE_OTHER };

#define SSE_DONE_NO 0xff /* sse_done: this payload is not "[DONE]" */
#define HOLD_FIRST 1024  /* first hold buffer; doubles up to the cap */

struct key_name {
    const char *name;
    size_t len;
    enum key key;
};

#define KEY_NAME(s, k)                                                         \
    {                                                                          \
        s, sizeof(s) - 1, k                                                    \
    }

static const struct key_name top_keys[] = {
    KEY_NAME("model", KEY_MODEL),
    KEY_NAME("done", KEY_DONE),
    KEY_NAME("error", KEY_ERROR),
    KEY_NAME("prompt_eval_count", KEY_PROMPT_EVAL),
    KEY_NAME("eval_count", KEY_EVAL),
    KEY_NAME("usage", KEY_USAGE),
    KEY_NAME("choices", KEY_CHOICES),
};

static const struct key_name usage_keys[] = {
    KEY_NAME("prompt_tokens", KEY_PROMPT_TOKENS),
    KEY_NAME("completion_tokens", KEY_COMPLETION_TOKENS),
};

/* ---- the incremental JSON scanner ---- */

static void
facts_reset(struct relay_count_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->done = -1;
    f->choices = -1;
}

static void
scan_reset(struct relay_count_scan *s)
{
    memset(s, 0, sizeof(*s));
    facts_reset(&s->f);
}

static enum key
key_lookup(const struct key_name *t, size_t n, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (t[i].len == len && memcmp(t[i].name, name, len) == 0)
            return t[i].key;
    return KEY_OTHER;
}

static bool
at_key(const struct relay_count_scan *s)
{
    return (s->depth == 1 && s->top_obj && s->want_key1) ||
           (s->depth == 2 && s->in_usage && s->want_key2);
}

static bool
at_value1(const struct relay_count_scan *s)
{
    return s->depth == 1 && s->top_obj && !s->want_key1;
}

static bool
at_value2(const struct relay_count_scan *s)
{
    return s->depth == 2 && s->in_usage && !s->want_key2;
}

/* Keeps whole pieces only: an escaped character that does not fit is not
 * half-written. Raw UTF-8 arrives byte by byte; str_end() trims that. */
static void
str_append(struct relay_count_scan *s, const char *p, size_t n)
{
    if (s->str_trunc || n > sizeof(s->str) - 1 - s->str_len) {
        s->str_trunc = true;
        return;
    }
    memcpy(s->str + s->str_len, p, n);
    s->str_len += n;
}

static void
str_put_utf8(struct relay_count_scan *s, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    str_append(s, u, n);
}

/* A high surrogate not followed by a low one is a lone one: U+FFFD. */
static void
str_flush_hi(struct relay_count_scan *s)
{
    if (s->hi == 0)
        return;
    s->hi = 0;
    str_put_utf8(s, 0xfffd);
}

static void
str_put_unit(struct relay_count_scan *s, uint32_t u)
{
    if (u >= 0xd800 && u <= 0xdbff) {
        str_flush_hi(s);
        s->hi = u;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
        if (s->hi == 0) {
            str_put_utf8(s, 0xfffd);
            return;
        }
        u = 0x10000 + ((s->hi - 0xd800) << 10) + (u - 0xdc00);
        s->hi = 0;
        str_put_utf8(s, u);
    } else {
        str_flush_hi(s);
        str_put_utf8(s, u);
    }
}

/* Drops a UTF-8 sequence that the cut left incomplete. */
static void
utf8_trim(const char *p, size_t *len)
{
    size_t i = *len, need;
    unsigned char lead;

    while (i > 0 && ((unsigned char)p[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0)
        return;
    lead = (unsigned char)p[i - 1];
    need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (i - 1 + need > *len)
        *len = i - 1;
}

static void value_start(struct relay_count_scan *s, unsigned char b);

static void
str_end(struct relay_count_scan *s)
{
    str_flush_hi(s);
    if (s->sink == SINK_KEY) {
        enum key k = KEY_OTHER;

        if (!s->str_trunc && s->depth == 1)
            k = key_lookup(top_keys, sizeof(top_keys) / sizeof(top_keys[0]),
                           s->str, s->str_len);
        else if (!s->str_trunc)
            k = key_lookup(usage_keys,
                           sizeof(usage_keys) / sizeof(usage_keys[0]), s->str,
                           s->str_len);
        if (s->depth == 1)
            s->key1 = (uint8_t)k;
        else
            s->key2 = (uint8_t)k;
    } else if (s->sink == SINK_MODEL) {
        if (s->str_trunc)
            utf8_trim(s->str, &s->str_len);
        memcpy(s->f.model, s->str, s->str_len);
        s->f.model[s->str_len] = '\0';
        s->f.has_model = true;
    }
    s->lex = LEX_WS;
}

static int
hex_val(unsigned char b)
{
    if (b >= '0' && b <= '9')
        return b - '0';
    if (b >= 'a' && b <= 'f')
        return b - 'a' + 10;
    if (b >= 'A' && b <= 'F')
        return b - 'A' + 10;
    return -1;
}

static void
str_escape(struct relay_count_scan *s, unsigned char b)
{
    char ch;

    switch (b) {
    case 'b':
        ch = '\b';
        break;
    case 'f':
        ch = '\f';
        break;
    case 'n':
        ch = '\n';
        break;
    case 'r':
        ch = '\r';
        break;
    case 't':
        ch = '\t';
        break;
    case 'u':
        s->uleft = 4;
        s->ucode = 0;
        return;
    default: /* \" \\ \/, and whatever a broken escape holds */
        ch = (char)b;
        break;
    }
    str_flush_hi(s);
    str_append(s, &ch, 1);
}

static void
str_byte(struct relay_count_scan *s, unsigned char b)
{
    int v;

    if (s->sink == SINK_NONE) {
        /* Text we do not keep (most of every body): only its end matters,
         * and \u digits can be neither '"' nor '\\'. */
        if (s->esc)
            s->esc = false;
        else if (b == '\\')
            s->esc = true;
        else if (b == '"')
            s->lex = LEX_WS;
        return;
    }
    if (s->uleft > 0) {
        v = hex_val(b);
        if (v < 0) { /* broken \u: keep a mark, then read b afresh */
            s->uleft = 0;
            str_put_unit(s, 0xfffd);
            str_byte(s, b);
            return;
        }
        s->ucode = s->ucode << 4 | (uint32_t)v;
        if (--s->uleft == 0)
            str_put_unit(s, s->ucode);
        return;
    }
    if (s->esc) {
        s->esc = false;
        str_escape(s, b);
    } else if (b == '\\') {
        s->esc = true;
    } else if (b == '"') {
        str_end(s);
    } else {
        str_flush_hi(s);
        str_append(s, (const char *)&b, 1);
    }
}

static void
str_start(struct relay_count_scan *s)
{
    if (at_key(s)) {
        s->sink = SINK_KEY;
    } else {
        value_start(s, '"');
        s->sink = at_value1(s) && s->key1 == KEY_MODEL ? SINK_MODEL : SINK_NONE;
    }
    s->lex = LEX_STR;
    s->esc = false;
    s->uleft = 0;
    s->hi = 0;
    s->str_len = 0;
    s->str_trunc = false;
}

/* A value begins at depth 1: forget what an earlier duplicate key said (the
 * last one wins, as in jansson) and note what its first byte tells. */
static void
value_start(struct relay_count_scan *s, unsigned char b)
{
    struct relay_count_facts *f = &s->f;
    bool scalar = b != '{' && b != '[' && b != '"';

    if (!at_value1(s))
        return;
    switch (s->key1) {
    case KEY_ERROR:
        f->error = !scalar; /* a literal is judged at its end */
        break;
    case KEY_USAGE:
        f->usage_key = true;
        f->usage_obj = b == '{';
        f->has_ptok = f->has_ctok = false;
        f->ptok = f->ctok = 0;
        break;
    case KEY_CHOICES:
        f->choices = -1;
        s->choices_open = b == '[';
        break;
    case KEY_DONE:
        f->done = -1;
        break;
    case KEY_PROMPT_EVAL:
        f->has_prompt_eval = false;
        f->prompt_eval = 0;
        break;
    case KEY_EVAL:
        f->has_eval = false;
        f->eval = 0;
        break;
    default:
        break;
    }
}

static void
open_container(struct relay_count_scan *s, unsigned char b)
{
    bool usage = at_value1(s) && s->key1 == KEY_USAGE && b == '{';

    if (s->depth == 0) {
        s->top_obj = b == '{';
        if (s->top_obj) {
            facts_reset(&s->f);
            s->want_key1 = true;
            s->key1 = KEY_NONE;
        }
    }
    s->depth++;
    if (usage) {
        s->in_usage = true;
        s->want_key2 = true;
        s->key2 = KEY_NONE;
    }
}

/* True when this closed the top-level object. */
static bool
close_container(struct relay_count_scan *s)
{
    if (s->depth == 0)
        return false; /* stray: not JSON we can read */
    if (s->depth == 2)
        s->in_usage = false;
    s->depth--;
    if (s->depth > 0 || !s->top_obj)
        return false;
    s->top_obj = false;
    s->f.closed = true;
    return true;
}

static void
set_want_key(struct relay_count_scan *s, bool want)
{
    if (s->depth == 1 && s->top_obj) {
        s->want_key1 = want;
        if (want)
            s->key1 = KEY_NONE;
    } else if (s->depth == 2 && s->in_usage) {
        s->want_key2 = want;
        if (want)
            s->key2 = KEY_NONE;
    }
}

static bool
ends_scalar(unsigned char b)
{
    return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == ',' ||
           b == ':' || b == '{' || b == '}' || b == '[' || b == ']' || b == '"';
}

static void
scalar_byte(struct relay_count_scan *s, unsigned char b)
{
    int d;

    if (s->lit_len < sizeof(s->lit))
        s->lit[s->lit_len] = (char)b;
    s->lit_len++;
    if (!s->num_ok)
        return;
    if (b >= '0' && b <= '9') {
        d = b - '0';
        /* Saturate: a count past INT64_MAX is garbage, not a wrap. */
        s->num = s->num > (INT64_MAX - d) / 10 ? INT64_MAX : s->num * 10 + d;
        s->num_digits = true;
    } else if (b == '-' && s->lit_len == 1) {
        s->num_neg = true;
    } else {
        s->num_ok = false; /* 1.5, 1e3: Ollama sends counts as integers */
    }
}

static bool
lit_is(const struct relay_count_scan *s, const char *word)
{
    size_t n = strlen(word);

    return s->lit_len == n && memcmp(s->lit, word, n) == 0;
}

static void
scalar_end(struct relay_count_scan *s)
{
    struct relay_count_facts *f = &s->f;
    bool num = s->num_ok && s->num_digits;
    int64_t v = num && !s->num_neg ? s->num : 0; /* negative: nonsense, 0 */

    s->lex = LEX_WS;
    if (at_value1(s)) {
        switch (s->key1) {
        case KEY_PROMPT_EVAL:
            f->has_prompt_eval = num;
            f->prompt_eval = v;
            break;
        case KEY_EVAL:
            f->has_eval = num;
            f->eval = v;
            break;
        case KEY_DONE:
            f->done = lit_is(s, "true") ? 1 : lit_is(s, "false") ? 0 : -1;
            break;
        case KEY_ERROR:
            f->error = !lit_is(s, "null") && !lit_is(s, "false");
            break;
        default:
            break;
        }
    } else if (at_value2(s)) {
        if (s->key2 == KEY_PROMPT_TOKENS) {
            f->has_ptok = num;
            f->ptok = v;
        } else if (s->key2 == KEY_COMPLETION_TOKENS) {
            f->has_ctok = num;
            f->ctok = v;
        }
    }
}

static void
scalar_start(struct relay_count_scan *s, unsigned char b)
{
    value_start(s, b);
    s->lex = LEX_SCALAR;
    s->lit_len = 0;
    s->num = 0;
    s->num_ok = true;
    s->num_neg = false;
    s->num_digits = false;
    scalar_byte(s, b);
}

/* Feeds one byte. True when it closed a top-level object: s->f then holds
 * that object's facts until the next one begins. */
static bool
scan_byte(struct relay_count_scan *s, unsigned char b)
{
    if (s->lex == LEX_STR) {
        str_byte(s, b);
        return false;
    }
    if (s->lex == LEX_SCALAR) {
        if (!ends_scalar(b)) {
            scalar_byte(s, b);
            return false;
        }
        scalar_end(s);
    }
    if (b == ' ' || b == '\t' || b == '\n' || b == '\r')
        return false;
    if (s->choices_open) {
        s->choices_open = false;
        s->f.choices = b == ']' ? 0 : 1;
    }
    switch (b) {
    case '{':
    case '[':
        value_start(s, b);
        open_container(s, b);
        return false;
    case '}':
    case ']':
        return close_container(s);
    case ':':
        set_want_key(s, false);
        return false;
    case ',':
        set_want_key(s, true);
        return false;
    case '"':
        str_start(s);
        return false;
    default:
        scalar_start(s, b);
        return false;
    }
}

/* ---- committing what the client got ---- */

static void
take_model(struct relay_count *c, const struct relay_count_facts *f)
{
    /* An empty model is no news: the chunk Ollama makes of a mid-stream
     * error (§4.3) says "model":"" and must not erase the real one. */
    if (f->has_model && f->model[0] != '\0')
        memcpy(c->u.model, f->model, sizeof(c->u.model));
}

static void
take_native_counts(struct relay_count *c, const struct relay_count_facts *f)
{
    /* Absent means 0: Ollama omits zero metrics (omitempty). */
    if (!f->has_prompt_eval && !f->has_eval)
        return;
    c->u.prompt_tokens = f->prompt_eval;
    c->u.completion_tokens = f->eval;
    c->u.counts_seen = true;
}

/* One NDJSON line's object reached the client. */
static void
commit_line(struct relay_count *c, const struct relay_count_facts *f)
{
    take_model(c, f);
    if (f->error)
        c->u.error_seen = true;
    if (f->done == 0) {
        c->u.content_chunks++;
    } else if (f->done == 1) {
        c->u.done_seen = true;
        take_native_counts(c, f);
    }
}

/* The one object of a non-streamed body reached the client. */
static void
commit_body(struct relay_count *c, const struct relay_count_facts *f)
{
    take_model(c, f);
    if (f->error)
        c->u.error_seen = true;
    c->u.done_seen = true;
    take_native_counts(c, f);
    if (!c->u.counts_seen && f->usage_obj && (f->has_ptok || f->has_ctok)) {
        c->u.prompt_tokens = f->ptok;
        c->u.completion_tokens = f->ctok;
        c->u.counts_seen = true;
    }
}

/* One SSE event reached the client, or was dropped on purpose. */
static void
commit_event(struct relay_count *c)
{
    const struct relay_count_facts *f = &c->js.f;

    if (c->sse_data_lines == 1 && c->sse_done == 6)
        c->u.done_seen = true;
    if (!f->closed)
        return; /* cut short: whatever it began to say is unknown */
    take_model(c, f);
    if (f->error)
        c->u.error_seen = true;
    if (f->choices == 1)
        c->u.content_chunks++;
    if (!f->usage_obj)
        return;
    if (f->ptok > 0 || f->ctok > 0) {
        /* The last non-zero usage: /v1/completions puts zeros on every
         * chunk and the real numbers on the last (§3.6). */
        c->u.prompt_tokens = f->ptok;
        c->u.completion_tokens = f->ctok;
        c->u.counts_seen = true;
    } else if (f->choices == 0) {
        /* The usage chunk itself says zero (a load): that is a count. The
         * zeros on ordinary chunks are not, or a cut stream bills 0. */
        c->u.counts_seen = true;
    }
}

/* ---- emitting ---- */

static int
emit_bytes(struct relay_count *c, const char *p, size_t n, relay_emit_fn emit,
           void *arg)
{
    if (n == 0 || emit == NULL)
        return 0;
    if (emit(arg, p, n) != 0) {
        c->gone = true;
        return -1;
    }
    return 0;
}

/* JSON and NDJSON: nothing is held, so the client sees each byte as soon as
 * we do; scanning after the emit counts only what was delivered. */
static int
stream_feed(struct relay_count *c, const char *p, size_t n, relay_emit_fn emit,
            void *arg)
{
    bool lines = c->wire == RELAY_WIRE_NDJSON;
    size_t i;

    if (emit_bytes(c, p, n, emit, arg) != 0)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char b = (unsigned char)p[i];

        if (lines && b == '\n') {
            /* A line is one object: a cut one is not completed by the next. */
            scan_reset(&c->js);
        } else if (scan_byte(&c->js, b)) {
            if (lines)
                commit_line(c, &c->js.f);
            else
                commit_body(c, &c->js.f);
        }
    }
    return 0;
}

/* ---- SSE ---- */

static void
sse_event_reset(struct relay_count *c)
{
    scan_reset(&c->js);
    c->sse_field = SSE_NONE;
    c->sse_prefix = 0;
    c->sse_data_lines = 0;
    c->sse_done = 0;
    c->sse_line_any = false;
    c->sse_event_any = false;
    c->passthrough = false;
    c->held_len = 0;
}

static void
sse_payload_byte(struct relay_count *c, unsigned char b)
{
    (void)scan_byte(&c->js, b); /* facts stay in c->js.f until the event ends */
    if (c->sse_done == SSE_DONE_NO || (c->sse_done == 6 && b == '\r'))
        return;
    if (c->sse_done < 6 && b == (unsigned char)"[DONE]"[c->sse_done])
        c->sse_done++;
    else
        c->sse_done = SSE_DONE_NO;
}

/* Reads one byte of the event stream. True when it ended an event: it was
 * the \n of a blank line. A \r before a \n is tolerated everywhere. */
static bool
sse_step(struct relay_count *c, unsigned char b)
{
    c->sse_event_any = true;
    if (b == '\n') {
        bool blank = !c->sse_line_any;

        c->sse_line_any = false;
        c->sse_field = SSE_NONE;
        return blank;
    }
    if (b == '\r') {
        if (c->sse_field == SSE_PAYLOAD)
            sse_payload_byte(c, b);
        return false;
    }
    if (!c->sse_line_any) {
        c->sse_line_any = true;
        c->sse_field = SSE_PREFIX;
        c->sse_prefix = 0;
    }
    switch (c->sse_field) {
    case SSE_PREFIX:
        if (b != (unsigned char)"data:"[c->sse_prefix]) {
            c->sse_field = SSE_OTHER;
        } else if (++c->sse_prefix == 5) {
            c->sse_field = SSE_SPACE;
            if (c->sse_data_lines > 0) {
                /* Data lines join with \n (the SSE rule); two of them are
                 * never the "[DONE]" marker. */
                (void)scan_byte(&c->js, '\n');
                c->sse_done = SSE_DONE_NO;
            }
            if (c->sse_data_lines < 2)
                c->sse_data_lines++;
        }
        break;
    case SSE_SPACE:
        c->sse_field = SSE_PAYLOAD;
        if (b != ' ')
            sse_payload_byte(c, b);
        break;
    case SSE_PAYLOAD:
        sse_payload_byte(c, b);
        break;
    default:
        break;
    }
    return false;
}

/* Length of the line at p (up to end), its terminator included; *content
 * gets its length without "\n" or "\r\n". */
static size_t
line_next(const char *p, const char *end, size_t *content)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    if (nl == NULL) {
        *content = (size_t)(end - p);
        return *content;
    }
    *content = (size_t)(nl - p);
    if (*content > 0 && p[*content - 1] == '\r')
        (*content)--;
    return (size_t)(nl - p) + 1;
}

static bool
is_data_line(const char *p, size_t content)
{
    return content >= 5 && memcmp(p, "data:", 5) == 0;
}

/* Rebuilds a held event without the "usage" key: the data lines' payloads
 * are joined and re-encoded compactly onto the first data line; other lines
 * and every line ending stay as they were. On success *out is heap memory
 * for the caller to free(); -1 means leave the event alone. */
static int
event_strip(const char *ev, size_t len, char **out, size_t *out_len)
{
    int rc = -1;
    const char *p, *end = ev + len;
    char *payload = malloc(len + 1); /* payloads joined are never longer */
    char *js = NULL;                 /* from json_dumps: free() */
    char *buf = NULL;
    json_t *root = NULL; /* new */
    json_error_t jerr;
    size_t plen = 0, jlen, o = 0, n, content, skip;
    bool first = true;

    if (payload == NULL)
        goto out;
    for (p = ev; p < end; p += n) {
        n = line_next(p, end, &content);
        if (!is_data_line(p, content))
            continue;
        skip = content > 5 && p[5] == ' ' ? 6 : 5;
        if (!first)
            payload[plen++] = '\n';
        memcpy(payload + plen, p + skip, content - skip);
        plen += content - skip;
        first = false;
    }
    root = json_loadb(payload, plen, 0, &jerr);
    if (!json_is_object(root) || json_object_del(root, "usage") != 0)
        goto out;
    js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (js == NULL)
        goto out;
    jlen = strlen(js);
    buf = malloc(len + jlen + 6);
    if (buf == NULL)
        goto out;
    first = true;
    for (p = ev; p < end; p += n) {
        n = line_next(p, end, &content);
        if (!is_data_line(p, content)) {
            memcpy(buf + o, p, n);
            o += n;
        } else if (first) {
            memcpy(buf + o, "data: ", 6);
            memcpy(buf + o + 6, js, jlen);
            memcpy(buf + o + 6 + jlen, p + content, n - content);
            o += 6 + jlen + n - content;
            first = false;
        }
    }
    *out = buf;
    *out_len = o;
    buf = NULL; /* the caller owns it now */
    rc = 0;
out:
    free(buf);
    free(js);
    json_decref(root);
    free(payload);
    return rc;
}

/* A held event is complete (or the body ended): send it on as it came,
 * without its zero "usage", or not at all if it is the usage event. */
static int
event_out(struct relay_count *c, relay_emit_fn emit, void *arg)
{
    const struct relay_count_facts *f = &c->js.f;
    char *re = NULL;
    size_t re_len = 0;
    int rc;

    if (f->closed && f->usage_obj && f->choices == 0) {
        /* It exists only because we asked Ollama for usage. */
        commit_event(c);
        return 0;
    }
    if (f->closed && f->usage_key &&
        event_strip(c->held, c->held_len, &re, &re_len) == 0)
        rc = emit_bytes(c, re, re_len, emit, arg);
    else
        rc = emit_bytes(c, c->held, c->held_len, emit, arg);
    free(re);
    if (rc == 0)
        commit_event(c);
    return rc;
}

static bool
hold_byte(struct relay_count *c, char b)
{
    char *p;
    size_t cap;

    if (c->held_len == c->held_cap) {
        if (c->held_cap >= RELAY_COUNT_EVENT_MAX)
            return false;
        cap = c->held_cap == 0 ? HOLD_FIRST : c->held_cap * 2;
        if (cap > RELAY_COUNT_EVENT_MAX)
            cap = RELAY_COUNT_EVENT_MAX;
        p = realloc(c->held, cap);
        if (p == NULL)
            return false; /* no room to hold it: let it through */
        c->held = p;
        c->held_cap = cap;
    }
    c->held[c->held_len++] = b;
    return true;
}

/* Holds events only to strip usage; otherwise bytes go out as they come,
 * in runs, and an event counts once its last byte was emitted. */
static int
sse_feed(struct relay_count *c, const char *p, size_t n, relay_emit_fn emit,
         void *arg)
{
    size_t i, run = 0; /* start of the bytes due to pass through */
    bool holding;

    for (i = 0; i < n; i++) {
        holding = c->strip_usage && !c->passthrough;
        if (holding && !hold_byte(c, p[i])) {
            /* Too long to be a usage event (those are ~200 bytes). */
            if (emit_bytes(c, c->held, c->held_len, emit, arg) != 0)
                return -1;
            c->held_len = 0;
            c->passthrough = true;
            holding = false;
            run = i;
        }
        if (!sse_step(c, (unsigned char)p[i]))
            continue;
        if (holding) {
            if (event_out(c, emit, arg) != 0)
                return -1;
        } else {
            if (emit_bytes(c, p + run, i + 1 - run, emit, arg) != 0)
                return -1;
            commit_event(c);
        }
        run = i + 1;
        sse_event_reset(c);
    }
    if (!c->strip_usage || c->passthrough)
        return emit_bytes(c, p + run, n - run, emit, arg);
    return 0;
}

/* ---- the API ---- */

void
relay_count_init(struct relay_count *c, enum relay_wire wire, bool strip_usage)
{
    memset(c, 0, sizeof(*c));
    c->wire = wire;
    c->strip_usage = strip_usage && wire == RELAY_WIRE_SSE;
    scan_reset(&c->js);
    sse_event_reset(c);
}

int
relay_count_feed(struct relay_count *c, const char *p, size_t n,
                 relay_emit_fn emit, void *arg)
{
    if (c->gone)
        return -1;
    if (n == 0)
        return 0;
    if (c->wire == RELAY_WIRE_SSE)
        return sse_feed(c, p, n, emit, arg);
    return stream_feed(c, p, n, emit, arg);
}

int
relay_count_finish(struct relay_count *c, relay_emit_fn emit, void *arg)
{
    int rc = 0;

    if (c->gone)
        return -1;
    /* An NDJSON line without its \n was counted at its closing brace. */
    if (c->wire != RELAY_WIRE_SSE || !c->sse_event_any)
        return 0;
    /* EOF ends the last event: what upstream said still counts. */
    if (c->strip_usage && !c->passthrough)
        rc = event_out(c, emit, arg);
    else
        commit_event(c); /* its bytes went out as they came */
    sse_event_reset(c);
    return rc;
}

void
relay_count_result(const struct relay_count *c, struct relay_usage *out)
{
    *out = c->u;
}

void
relay_count_free(struct relay_count *c)
{
    free(c->held);
    c->held = NULL;
    c->held_len = 0;
    c->held_cap = 0;
}

static bool
media_is(const char *ct, const char *type)
{
    size_t n = strlen(type);

    return strncasecmp(ct, type, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

enum relay_wire
relay_count_wire_for(const char *content_type)
{
    const char *ct = content_type;

    if (ct == NULL)
        return RELAY_WIRE_JSON;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (media_is(ct, "application/x-ndjson"))
        return RELAY_WIRE_NDJSON;
    if (media_is(ct, "text/event-stream"))
        return RELAY_WIRE_SSE;
    return RELAY_WIRE_JSON;
}
