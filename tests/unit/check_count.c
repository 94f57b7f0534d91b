/* count: tokens are counted from the upstream body whatever its split, and
 * the client gets the bytes unchanged (or without the usage we asked for). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/count.h"
#include "unit.h"

/* ---- fixtures, from the examples of the protocol reference ---- */

/* §2: native /api/generate */
#define GEN_L1                                                                 \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.10Z\","      \
    "\"response\":\"Hel\",\"done\":false}\n"
#define GEN_L2                                                                 \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.12Z\","      \
    "\"response\":\"lo\",\"done\":false}\n"
#define GEN_L3                                                                 \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.14Z\","      \
    "\"response\":\"\",\"done\":true,\"done_reason\":\"stop\","                \
    "\"context\":[128006,882],\"total_duration\":512000000,"                   \
    "\"load_duration\":21000000,\"prompt_eval_count\":26,"                     \
    "\"prompt_eval_duration\":130000000,\"eval_count\":2,"                     \
    "\"eval_duration\":40000000}"
#define GEN GEN_L1 GEN_L2 GEN_L3 "\n"

/* §1.2: native /api/chat; the final line puts "done" after done_reason. */
#define CHAT_NDJSON                                                            \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.10Z\","      \
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},"                \
    "\"done\":false}\n"                                                        \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.12Z\","      \
    "\"message\":{\"role\":\"assistant\",\"content\":\"lo\"},"                 \
    "\"done\":false}\n"                                                        \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.14Z\","      \
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},"                   \
    "\"done_reason\":\"stop\",\"done\":true,\"total_duration\":498000000,"     \
    "\"load_duration\":20000000,\"prompt_eval_count\":31,"                     \
    "\"prompt_eval_duration\":120000000,\"eval_count\":2,"                     \
    "\"eval_duration\":39000000}\n"

/* §1.2: a tool call line; its arguments hold decoy "model"/"eval_count". */
#define TOOL_NDJSON                                                            \
    "{\"model\":\"m\",\"created_at\":\"2026-08-01T10:00:00Z\","                \
    "\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{"   \
    "\"id\":\"call_k3x9a0qz\",\"function\":{\"index\":0,"                      \
    "\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\","               \
    "\"model\":\"decoy\",\"eval_count\":99}}}]},\"done\":false}\n"             \
    "{\"model\":\"m\",\"created_at\":\"2026-08-01T10:00:01Z\","                \
    "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"     \
    "\"done_reason\":\"stop\",\"total_duration\":900000000,"                   \
    "\"prompt_eval_count\":112,\"eval_count\":21}\n"

/* Key order, whitespace, escapes and nested decoys must not matter. */
#define ODD_NDJSON                                                             \
    "{ \"message\" : { \"role\" : \"assistant\", \"content\" : "               \
    "\"say \\\"}{\\\" and \\\\\", \"done\": true, \"eval_count\": 7 } ,"       \
    " \"model\" : \"llama3.2\\u003alatest\", \"done\" : false }\n"             \
    "{\"eval_count\" : 3, \"prompt_eval_count\":11,"                           \
    "\"context\":[1,2,{\"eval_count\":9,\"done\":false}],"                     \
    "\"response\":\"\\\"eval_count\\\":99 }\",\"done\"\t:\ttrue ,"             \
    "\"model\":\"llama3.2\\u003alatest\"}\n"

/* §4.3: the native error line, then nothing. */
#define ERR_NDJSON                                                             \
    GEN_L1 GEN_L2                                                              \
        "{\"error\":\"an error was encountered while running the model: "      \
        "unexpected EOF\"}\n"

/* Cut inside the final line, after its counts went by. */
#define CUT_NDJSON                                                             \
    GEN_L1 GEN_L2                                                              \
        "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:00.14Z\","  \
        "\"response\":\"\",\"done\":true,\"prompt_eval_count\":26,"            \
        "\"eval_count\":2,\"eval_dur"

/* §2: stream:false on /api/generate. */
#define GEN_JSON                                                               \
    "{\"model\":\"llama3.2\",\"created_at\":\"2026-08-01T10:00:02Z\","         \
    "\"response\":\"Hello! How can I help?\",\"done\":true,"                   \
    "\"done_reason\":\"stop\",\"context\":[128006,882,128007],"                \
    "\"total_duration\":912000000,\"load_duration\":21000000,"                 \
    "\"prompt_eval_count\":26,\"prompt_eval_duration\":130000000,"             \
    "\"eval_count\":8,\"eval_duration\":240000000}"

/* §3.2, laid out over lines as the reference shows it. */
#define OAI_JSON                                                               \
    "{\"id\":\"chatcmpl-417\",\"object\":\"chat.completion\","                 \
    "\"created\":1785578400,\"model\":\"llama3.2\",\n"                         \
    " \"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,"         \
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hi!\"},\n"              \
    " \"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":26,"           \
    "\"completion_tokens\":3,\"total_tokens\":29}}\n"

/* §1.3 and §3.2 embeddings; §1.4 legacy; §5.3 load; §4.2 errors. */
#define EMBED_JSON                                                             \
    "{\"model\":\"all-minilm\",\"embeddings\":[[0.01,-0.02]],"                 \
    "\"total_duration\":14143917,\"load_duration\":1019500,"                   \
    "\"prompt_eval_count\":8}"
#define V1_EMBED_JSON                                                          \
    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","                \
    "\"embedding\":[0.01,-0.02],\"index\":0}],\"model\":\"all-minilm\","       \
    "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}"
#define LEGACY_EMBED_JSON "{\"embedding\":[0.56,0.01,-0.33]}"
#define LOAD_JSON                                                              \
    "{\"model\":\"m\",\"created_at\":\"2026-08-01T10:00:00Z\","                \
    "\"response\":\"\",\"done\":true,\"done_reason\":\"load\"}"
#define ERR_JSON "{\"error\":\"model 'x' not found\"}"
#define OAI_ERR_JSON                                                           \
    "{\"error\":{\"message\":\"model \\\"x\\\" not found, try pulling it "     \
    "first\",\"type\":\"not_found_error\",\"param\":null,\"code\":null}}"

/* §3.4: /v1/chat/completions, v0.32.6 and later. */
#define CC_HEAD                                                                \
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\","       \
    "\"created\":1785578400,\"model\":\"llama3.2\","                           \
    "\"system_fingerprint\":\"fp_ollama\","
#define CC_1                                                                   \
    CC_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","     \
            "\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
#define CC_2                                                                   \
    CC_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},"        \
            "\"finish_reason\":null}]}\n\n"
#define CC_3                                                                   \
    CC_HEAD "\"choices\":[{\"index\":0,\"delta\":{},"                          \
            "\"finish_reason\":\"stop\"}]}\n\n"
#define CC_U                                                                   \
    CC_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":26,"                  \
            "\"completion_tokens\":2,\"total_tokens\":28}}\n\n"
#define SSE_DONE "data: [DONE]\n\n"

/* §4.3: the chunk Ollama makes of a native error line, then EOF. */
#define CC_ERR                                                                 \
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\","       \
    "\"created\":1785578400,\"model\":\"\","                                   \
    "\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,"          \
    "\"delta\":{\"content\":\"\"},\"finish_reason\":null}]}\n\n"

/* §3.4: before v0.32.6. */
#define OLD_HEAD                                                               \
    "data: {\"id\":\"chatcmpl-3\",\"object\":\"chat.completion.chunk\","       \
    "\"created\":1785578400,\"model\":\"llama3.2\","                           \
    "\"system_fingerprint\":\"fp_ollama\","
#define OLD_1                                                                  \
    OLD_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","    \
             "\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
#define OLD_2                                                                  \
    OLD_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","    \
             "\"content\":\"lo\"},\"finish_reason\":null}]}\n\n"
#define OLD_3                                                                  \
    OLD_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","    \
             "\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n"
#define OLD_U                                                                  \
    OLD_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":26,"                 \
             "\"completion_tokens\":2,\"total_tokens\":28}}\n\n"

/* §3.6: /v1/completions, zero usage on every chunk (once in the middle of
 * the keys), then the real numbers. CP_nS is what strip_usage sends. */
#define CP_HEAD                                                                \
    "{\"id\":\"cmpl-5\",\"object\":\"text_completion\",\"created\":"           \
    "1785578400,"
#define CP_TAIL "\"model\":\"llama3.2\",\"system_fingerprint\":\"fp_ollama\""
#define CP_ZERO                                                                \
    "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,"                  \
    "\"total_tokens\":0}"
#define CP_1                                                                   \
    "data: " CP_HEAD "\"choices\":[{\"text\":\"Hel\",\"index\":0,"             \
    "\"finish_reason\":null}]," CP_TAIL "," CP_ZERO "}\n\n"
#define CP_1S                                                                  \
    "data: {\"id\":\"cmpl-5\",\"object\":\"text_completion\","                 \
    "\"created\":1785578400,\"choices\":[{\"text\":\"Hel\",\"index\":0,"       \
    "\"finish_reason\":null}],\"model\":\"llama3.2\","                         \
    "\"system_fingerprint\":\"fp_ollama\"}\n\n"
#define CP_2                                                                   \
    "data: " CP_HEAD CP_ZERO ",\"choices\":[{\"text\":\"lo\",\"index\":0,"     \
    "\"finish_reason\":null}]," CP_TAIL "}\n\n"
#define CP_2S                                                                  \
    "data: {\"id\":\"cmpl-5\",\"object\":\"text_completion\","                 \
    "\"created\":1785578400,\"choices\":[{\"text\":\"lo\",\"index\":0,"        \
    "\"finish_reason\":null}],\"model\":\"llama3.2\","                         \
    "\"system_fingerprint\":\"fp_ollama\"}\n\n"
#define CP_3                                                                   \
    "data: " CP_HEAD "\"choices\":[{\"text\":\"\",\"index\":0,"                \
    "\"finish_reason\":\"stop\"}]," CP_TAIL "," CP_ZERO "}\n\n"
#define CP_3S                                                                  \
    "data: {\"id\":\"cmpl-5\",\"object\":\"text_completion\","                 \
    "\"created\":1785578400,\"choices\":[{\"text\":\"\",\"index\":0,"          \
    "\"finish_reason\":\"stop\"}],\"model\":\"llama3.2\","                     \
    "\"system_fingerprint\":\"fp_ollama\"}\n\n"
#define CP_U                                                                   \
    "data: " CP_HEAD "\"choices\":[]," CP_TAIL ",\"usage\":{"                  \
    "\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}\n\n"

/* The same with \r\n line endings, and "data:" without its space. */
#define CR_1                                                                   \
    "data: " CP_HEAD "\"choices\":[{\"text\":\"Hel\",\"index\":0,"             \
    "\"finish_reason\":null}]," CP_TAIL "," CP_ZERO "}\r\n\r\n"
#define CR_1S                                                                  \
    "data: {\"id\":\"cmpl-5\",\"object\":\"text_completion\","                 \
    "\"created\":1785578400,\"choices\":[{\"text\":\"Hel\",\"index\":0,"       \
    "\"finish_reason\":null}],\"model\":\"llama3.2\","                         \
    "\"system_fingerprint\":\"fp_ollama\"}\r\n\r\n"
#define CR_U                                                                   \
    "data:" CP_HEAD "\"choices\":[]," CP_TAIL ",\"usage\":{"                   \
    "\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13}}"       \
    "\r\n\r\n"
#define CR_DONE "data: [DONE]\r\n\r\n"

struct fixture {
    const char *name;
    enum relay_wire wire;
    bool strip;
    const char *in;
    const char *out; /* what the client gets; NULL: the input, byte for byte */
    int64_t prompt, completion, chunks;
    bool counts, done, error;
    const char *model;
};

static const struct fixture native_ok[] = {
    {"generate", RELAY_WIRE_NDJSON, false, GEN, NULL, 26, 2, 2, true, true,
     false, "llama3.2"},
    {"chat", RELAY_WIRE_NDJSON, false, CHAT_NDJSON, NULL, 31, 2, 2, true, true,
     false, "llama3.2"},
    {"chat with a tool call", RELAY_WIRE_NDJSON, false, TOOL_NDJSON, NULL, 112,
     21, 1, true, true, false, "m"},
    {"no newline at the end", RELAY_WIRE_NDJSON, false, GEN_L1 GEN_L2 GEN_L3,
     NULL, 26, 2, 2, true, true, false, "llama3.2"},
    {"any key order", RELAY_WIRE_NDJSON, false, ODD_NDJSON, NULL, 11, 3, 1,
     true, true, false, "llama3.2:latest"},
    {"strip_usage ignored", RELAY_WIRE_NDJSON, true, GEN, NULL, 26, 2, 2, true,
     true, false, "llama3.2"},
};

static const struct fixture native_cut[] = {
    {"a cut line does not swallow the next", RELAY_WIRE_NDJSON, false,
     GEN_L1 "{\"model\":\"llama3.2\",\"response\":\"x\n" GEN_L2 GEN_L3 "\n",
     NULL, 26, 2, 2, true, true, false, "llama3.2"},
    {"error line", RELAY_WIRE_NDJSON, false, ERR_NDJSON, NULL, 0, 0, 2, false,
     false, true, "llama3.2"},
    {"cut mid-line", RELAY_WIRE_NDJSON, false, CUT_NDJSON, NULL, 0, 0, 2, false,
     false, false, "llama3.2"},
};

static const struct fixture bodies[] = {
    {"native generate", RELAY_WIRE_JSON, false, GEN_JSON, NULL, 26, 8, 0, true,
     true, false, "llama3.2"},
    {"openai chat", RELAY_WIRE_JSON, false, OAI_JSON, NULL, 26, 3, 0, true,
     true, false, "llama3.2"},
    {"api embed", RELAY_WIRE_JSON, false, EMBED_JSON, NULL, 8, 0, 0, true, true,
     false, "all-minilm"},
    {"v1 embeddings", RELAY_WIRE_JSON, false, V1_EMBED_JSON, NULL, 8, 0, 0,
     true, true, false, "all-minilm"},
    {"legacy embeddings", RELAY_WIRE_JSON, false, LEGACY_EMBED_JSON, NULL, 0, 0,
     0, false, true, false, ""},
    {"load only", RELAY_WIRE_JSON, false, LOAD_JSON, NULL, 0, 0, 0, false, true,
     false, "m"},
    {"native error", RELAY_WIRE_JSON, false, ERR_JSON, NULL, 0, 0, 0, false,
     true, true, ""},
    {"openai error", RELAY_WIRE_JSON, false, OAI_ERR_JSON, NULL, 0, 0, 0, false,
     true, true, ""},
    {"plain text 404", RELAY_WIRE_JSON, false, "404 page not found", NULL, 0, 0,
     0, false, false, false, ""},
};

static const struct fixture sse_usage[] = {
    {"chat with usage", RELAY_WIRE_SSE, false, CC_1 CC_2 CC_3 CC_U SSE_DONE,
     NULL, 26, 2, 3, true, true, false, "llama3.2"},
    {"completions", RELAY_WIRE_SSE, false, CP_1 CP_2 CP_3 CP_U SSE_DONE, NULL,
     12, 2, 3, true, true, false, "llama3.2"},
    {"crlf", RELAY_WIRE_SSE, false, CR_1 CR_U CR_DONE, NULL, 12, 1, 1, true,
     true, false, "llama3.2"},
    {"before v0.32.6", RELAY_WIRE_SSE, false, OLD_1 OLD_2 OLD_3 OLD_U SSE_DONE,
     NULL, 26, 2, 3, true, true, false, "llama3.2"},
    {"usage but no [DONE]", RELAY_WIRE_SSE, false, CC_1 CC_2 CC_3 CC_U, NULL,
     26, 2, 3, true, false, false, "llama3.2"},
};

static const struct fixture sse_nocount[] = {
    {"chat without usage", RELAY_WIRE_SSE, false, CC_1 CC_2 CC_3 SSE_DONE, NULL,
     0, 0, 3, false, true, false, "llama3.2"},
    {"cut before [DONE]", RELAY_WIRE_SSE, false,
     CC_1 CC_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}",
     NULL, 0, 0, 1, false, false, false, "llama3.2"},
    {"completions cut before usage", RELAY_WIRE_SSE, false, CP_1 CP_2 CP_3,
     NULL, 0, 0, 3, false, false, false, "llama3.2"},
    {"error chunk then EOF", RELAY_WIRE_SSE, false, CC_1 CC_2 CC_ERR, NULL, 0,
     0, 3, false, false, false, "llama3.2"},
    {"[DONE] cut short", RELAY_WIRE_SSE, false, CC_1 "data: [DON", NULL, 0, 0,
     1, false, false, false, "llama3.2"},
};

static const struct fixture sse_strip[] = {
    {"chat", RELAY_WIRE_SSE, true, CC_1 CC_2 CC_3 CC_U SSE_DONE,
     CC_1 CC_2 CC_3 SSE_DONE, 26, 2, 3, true, true, false, "llama3.2"},
    {"completions", RELAY_WIRE_SSE, true, CP_1 CP_2 CP_3 CP_U SSE_DONE,
     CP_1S CP_2S CP_3S SSE_DONE, 12, 2, 3, true, true, false, "llama3.2"},
    {"crlf", RELAY_WIRE_SSE, true, CR_1 CR_U CR_DONE, CR_1S CR_DONE, 12, 1, 1,
     true, true, false, "llama3.2"},
    {"before v0.32.6", RELAY_WIRE_SSE, true, OLD_1 OLD_2 OLD_3 OLD_U SSE_DONE,
     OLD_1 OLD_2 OLD_3 SSE_DONE, 26, 2, 3, true, true, false, "llama3.2"},
    {"chat without usage", RELAY_WIRE_SSE, true, CC_1 CC_2 CC_3 SSE_DONE, NULL,
     0, 0, 3, false, true, false, "llama3.2"},
    {"no blank line at EOF", RELAY_WIRE_SSE, true,
     CC_1 CC_2 CC_3 CC_U "data: [DONE]", CC_1 CC_2 CC_3 "data: [DONE]", 26, 2,
     3, true, true, false, "llama3.2"},
    {"other lines and two data lines", RELAY_WIRE_SSE, true,
     ": keep-alive\nevent: chunk\ndata: {\"choices\":[{\"index\":0}],\n"
     "data: \"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0}}\n\n",
     ": keep-alive\nevent: chunk\ndata: {\"choices\":[{\"index\":0}]}\n\n", 0,
     0, 1, false, false, false, ""},
    {"cut before [DONE]", RELAY_WIRE_SSE, true, CP_1 CP_2 "data: " CP_HEAD,
     CP_1S CP_2S "data: " CP_HEAD, 0, 0, 2, false, false, false, "llama3.2"},
};

/* ---- running a fixture ---- */

struct sink {
    char *buf;
    size_t len, cap;
    size_t limit; /* emit fails once len would pass it */
    size_t calls;
    bool empty; /* an empty write was asked for: a flush for nothing */
};

static int
sink_emit(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;

    /* No ck_assert per call: in fork mode each one writes to a pipe. */
    s->calls++;
    s->empty = s->empty || n == 0;
    if (n > s->limit - s->len)
        return -1;
    if (n > s->cap - s->len) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (s->buf == NULL)
            ck_abort_msg("out of memory");
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Feeds in[0, n) as a piece of `first` bytes (0 is a valid, empty feed),
 * then pieces of `step` bytes, and checks what came out. */
static void
run_fixture(const struct fixture *fx, const char *in, size_t n,
            const char *want, size_t want_len, size_t first, size_t step)
{
    struct relay_count c;
    struct relay_usage u;
    struct sink s = {.limit = SIZE_MAX};
    size_t off = 0, piece = first, len;

    relay_count_init(&c, fx->wire, fx->strip);
    do {
        len = piece < n - off ? piece : n - off;
        if (relay_count_feed(&c, in + off, len, sink_emit, &s) != 0)
            ck_abort_msg("%s (%zu/%zu): feed failed", fx->name, first, step);
        off += len;
        if (!fx->strip && s.len != off) /* nothing held: no added latency */
            ck_abort_msg("%s (%zu/%zu): %zu of %zu bytes out", fx->name, first,
                         step, s.len, off);
        piece = step;
    } while (off < n);
    ck_assert_int_eq(relay_count_finish(&c, sink_emit, &s), 0);
    ck_assert_int_eq(relay_count_finish(&c, sink_emit, &s), 0);
    relay_count_result(&c, &u);
    ck_assert_msg(c.held_cap <= RELAY_COUNT_EVENT_MAX, "%s: held %zu", fx->name,
                  c.held_cap);
    relay_count_free(&c);
    relay_count_free(&c); /* safe twice */

    ck_assert(!s.empty);
    ck_assert_msg(s.len == want_len && memcmp(s.buf, want, want_len) == 0,
                  "%s (%zu/%zu): output differs:\n%.*s", fx->name, first, step,
                  (int)s.len, s.buf);
    ck_assert_msg(u.prompt_tokens == fx->prompt &&
                      u.completion_tokens == fx->completion,
                  "%s (%zu/%zu): tokens %lld/%lld", fx->name, first, step,
                  (long long)u.prompt_tokens, (long long)u.completion_tokens);
    ck_assert_msg(u.content_chunks == fx->chunks,
                  "%s (%zu/%zu): content_chunks %lld", fx->name, first, step,
                  (long long)u.content_chunks);
    ck_assert_msg(u.counts_seen == fx->counts && u.done_seen == fx->done &&
                      u.error_seen == fx->error,
                  "%s (%zu/%zu): counts %d done %d error %d", fx->name, first,
                  step, u.counts_seen, u.done_seen, u.error_seen);
    ck_assert_msg(strcmp(u.model, fx->model) == 0, "%s: model \"%s\"", fx->name,
                  u.model);
    free(s.buf);
}

/* Whole, split in two at every byte boundary, and one byte at a time. */
static void
check_fixture(const struct fixture *fx)
{
    size_t n = strlen(fx->in), k;
    const char *want = fx->out != NULL ? fx->out : fx->in;

    for (k = 0; k <= n; k++)
        run_fixture(fx, fx->in, n, want, strlen(want), k, n);
    run_fixture(fx, fx->in, n, want, strlen(want), 0, 1);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(native_ndjson_counts)
{
    check_fixture(&native_ok[_i]);
}
END_TEST

START_TEST(native_cut_short)
{
    check_fixture(&native_cut[_i]);
}
END_TEST

START_TEST(json_bodies)
{
    check_fixture(&bodies[_i]);
}
END_TEST

START_TEST(sse_usage_counts)
{
    check_fixture(&sse_usage[_i]);
}
END_TEST

START_TEST(sse_without_counts)
{
    check_fixture(&sse_nocount[_i]);
}
END_TEST

START_TEST(sse_strip_usage)
{
    check_fixture(&sse_strip[_i]);
}
END_TEST

/* ---- bodies too big to hold ---- */

#define BIG_VEC "[0.0123456,-0.0234567,0.0345678,-0.0456789,0.0567891]"
#define BIG_TAIL                                                               \
    "],\"total_duration\":14143917,\"load_duration\":1019500,"                 \
    "\"prompt_eval_count\":4096}"

static char *
make_big_embed(size_t *len)
{
    const char *head = "{\"model\":\"all-minilm\",\"embeddings\":[";
    size_t cap = (5u << 20) + 4096, n;
    char *b = malloc(cap);

    ck_assert_ptr_nonnull(b);
    n = strlen(head);
    memcpy(b, head, n);
    while (n < (5u << 20)) {
        memcpy(b + n, BIG_VEC ",", sizeof(BIG_VEC));
        n += sizeof(BIG_VEC);
    }
    n--; /* the last comma */
    memcpy(b + n, BIG_TAIL, sizeof(BIG_TAIL));
    *len = n + sizeof(BIG_TAIL) - 1;
    return b;
}

static void
check_big(const struct fixture *fx, const char *in, size_t n, const char *want,
          size_t want_len)
{
    size_t i;

    run_fixture(fx, in, n, want, want_len, n, n);
    run_fixture(fx, in, n, want, want_len, 0, 16384);
    run_fixture(fx, in, n, want, want_len, 7, 4093);
    run_fixture(fx, in, n, want, want_len, 0, 1);
    for (i = 1; i < 8; i++)
        run_fixture(fx, in, n, want, want_len, n * i / 8 + i, n);
}

START_TEST(huge_json_body)
{
    const struct fixture fx = {"5 MB embeddings",
                               RELAY_WIRE_JSON,
                               false,
                               NULL,
                               NULL,
                               4096,
                               0,
                               0,
                               true,
                               true,
                               false,
                               "all-minilm"};
    size_t n;
    char *in = make_big_embed(&n);

    ck_assert_uint_gt(n, 5u << 20);
    check_big(&fx, in, n, in, n);
    free(in);
}
END_TEST

START_TEST(huge_ndjson_line)
{
    const struct fixture fx = {
        "2 MB line", RELAY_WIRE_NDJSON, false, NULL, NULL, 26, 2, 2, true, true,
        false,       "llama3.2"};
    const char *head = "{\"model\":\"llama3.2\",\"response\":\"";
    const char *tail = "\",\"done\":false}\n" GEN_L2 GEN_L3 "\n";
    size_t body = 2u << 20, hl = strlen(head), tl = strlen(tail);
    size_t n = hl + body + tl;
    char *in = malloc(n);

    ck_assert_ptr_nonnull(in);
    memcpy(in, head, hl);
    memset(in + hl, 'x', body);
    memcpy(in + hl + body, tail, tl);
    check_big(&fx, in, n, in, n);
    free(in);
}
END_TEST

/* A completions chunk far longer than the hold buffer: it cannot be the
 * usage event, so it passes through as it came, zero usage and all. */
START_TEST(oversized_event_passes_through)
{
    const struct fixture fx = {
        "100 KB event", RELAY_WIRE_SSE, true,  NULL,      NULL, 12, 2, 1,
        true,           true,           false, "llama3.2"};
    const char *head = "data: " CP_HEAD "\"choices\":[{\"text\":\"";
    const char *tail =
        "\",\"index\":0,\"finish_reason\":null}]," CP_TAIL "," CP_ZERO "}\n\n";
    const char *rest = CP_U SSE_DONE;
    size_t text = 100 * 1024, hl = strlen(head), tl = strlen(tail);
    size_t ev = hl + text + tl, n = ev + strlen(rest);
    char *in = malloc(n), *want = malloc(n);

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(want);
    memcpy(in, head, hl);
    memset(in + hl, 'y', text);
    memcpy(in + hl + text, tail, tl);
    memcpy(in + ev, rest, n - ev);
    memcpy(want, in, ev);
    memcpy(want + ev, SSE_DONE, strlen(SSE_DONE));
    check_big(&fx, in, n, want, ev + strlen(SSE_DONE));
    free(in);
    free(want);
}
END_TEST

/* ---- the client goes away ---- */

/* Index of the byte that completes each content object or event. */
static size_t
count_upto(const size_t *ends, size_t nends, size_t emitted)
{
    size_t i, k = 0;

    for (i = 0; i < nends; i++)
        if (ends[i] < emitted)
            k++;
    return k;
}

/* One byte at a time into a client that takes `limit` bytes, then vanishes.
 * Returns the counter's result; *out_len gets what the client got. */
static void
feed_into_limit(enum relay_wire wire, bool strip, const char *in, size_t limit,
                struct relay_usage *u, struct sink *s)
{
    struct relay_count c;
    size_t n = strlen(in), i, calls;
    int rc = 0;

    s->limit = limit;
    relay_count_init(&c, wire, strip);
    for (i = 0; i < n && rc == 0; i++)
        rc = relay_count_feed(&c, in + i, 1, sink_emit, s);
    if (rc == 0)
        rc = relay_count_finish(&c, sink_emit, s);
    if (rc != 0) {
        calls = s->calls;
        ck_assert_int_eq(relay_count_feed(&c, in, n, sink_emit, s), -1);
        ck_assert_int_eq(relay_count_feed(&c, NULL, 0, sink_emit, s), -1);
        ck_assert_int_eq(relay_count_finish(&c, sink_emit, s), -1);
        ck_assert_uint_eq(s->calls, calls); /* nothing more was tried */
    }
    relay_count_result(&c, u);
    relay_count_free(&c);
}

START_TEST(gone_client_ndjson)
{
    const char *in = GEN;
    size_t n = strlen(in), limit;
    size_t ends[2] = {sizeof(GEN_L1) - 3, sizeof(GEN_L1 GEN_L2) - 3};

    for (limit = 0; limit <= n; limit++) {
        struct sink s = {.limit = SIZE_MAX};
        struct relay_usage u;

        feed_into_limit(RELAY_WIRE_NDJSON, false, in, limit, &u, &s);
        ck_assert_uint_eq(s.len, limit);
        ck_assert(limit == 0 || memcmp(s.buf, in, limit) == 0);
        ck_assert_int_eq(u.content_chunks, count_upto(ends, 2, limit));
        ck_assert(u.done_seen == (limit > n - 2)); /* the last '}' */
        ck_assert(u.counts_seen == u.done_seen);
        free(s.buf);
    }
}
END_TEST

START_TEST(gone_client_sse)
{
    const char *in = CC_1 CC_2 CC_3 CC_U SSE_DONE;
    size_t n = strlen(in), limit;
    size_t ends[3] = {sizeof(CC_1) - 2, sizeof(CC_1 CC_2) - 2,
                      sizeof(CC_1 CC_2 CC_3) - 2};

    for (limit = 0; limit <= n; limit++) {
        struct sink s = {.limit = SIZE_MAX};
        struct relay_usage u;

        feed_into_limit(RELAY_WIRE_SSE, false, in, limit, &u, &s);
        ck_assert_uint_eq(s.len, limit);
        ck_assert_int_eq(u.content_chunks, count_upto(ends, 3, limit));
        ck_assert(u.counts_seen == (limit >= sizeof(CC_1 CC_2 CC_3 CC_U) - 1));
        ck_assert(u.done_seen == (limit == n));
        free(s.buf);
    }
}
END_TEST

/* Held events go out whole: the client gets whole events only. */
START_TEST(gone_client_sse_strip)
{
    const char *in = CC_1 CC_2 CC_3 CC_U SSE_DONE;
    const char *out = CC_1 CC_2 CC_3 SSE_DONE;
    size_t n = strlen(out), limit, got;
    size_t ends[4] = {sizeof(CC_1) - 1, sizeof(CC_1 CC_2) - 1,
                      sizeof(CC_1 CC_2 CC_3) - 1, n};

    for (limit = 0; limit <= n; limit++) {
        struct sink s = {.limit = SIZE_MAX};
        struct relay_usage u;

        feed_into_limit(RELAY_WIRE_SSE, true, in, limit, &u, &s);
        got = count_upto(ends, 4, limit + 1); /* events that fit */
        ck_assert_uint_eq(s.len, got == 0 ? 0 : ends[got - 1]);
        ck_assert(s.len == 0 || memcmp(s.buf, out, s.len) == 0);
        ck_assert_int_eq(u.content_chunks, got < 3 ? got : 3);
        /* The usage event is dropped, not sent: it counts once C3 went. */
        ck_assert(u.counts_seen == (got >= 3));
        ck_assert(u.done_seen == (got == 4));
        free(s.buf);
    }
}
END_TEST

START_TEST(gone_client_whole_feed)
{
    struct relay_count c;
    struct relay_usage u;
    struct sink s = {.limit = SIZE_MAX};

    s.limit = 10;
    relay_count_init(&c, RELAY_WIRE_NDJSON, false);
    ck_assert_int_eq(relay_count_feed(&c, GEN, strlen(GEN), sink_emit, &s), -1);
    relay_count_result(&c, &u);
    relay_count_free(&c);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(u.content_chunks, 0); /* it never reached the client */
    ck_assert(!u.done_seen && !u.counts_seen);
    ck_assert_str_eq(u.model, "");
}
END_TEST

/* ---- odds and ends ---- */

START_TEST(model_cut_at_char_boundary)
{
    struct relay_count c;
    struct relay_usage u;
    char in[512], want[RELAY_COUNT_MODEL_MAX];
    const char *tails[] = {"\\u00e9", "\xc3\xa9", "\\ud83d\\ude00"};
    size_t i;
    int n;

    memset(want, 'a', 126);
    want[126] = '\0';
    for (i = 0; i < NELEM(tails); i++) {
        n = snprintf(in, sizeof(in), "{\"done\":true,\"model\":\"%s%sz\"}",
                     want, tails[i]);
        ck_assert(n > 0 && (size_t)n < sizeof(in));
        relay_count_init(&c, RELAY_WIRE_JSON, false);
        ck_assert_int_eq(relay_count_feed(&c, in, (size_t)n, NULL, NULL), 0);
        ck_assert_int_eq(relay_count_finish(&c, NULL, NULL), 0);
        relay_count_result(&c, &u);
        relay_count_free(&c);
        ck_assert_str_eq(u.model, want);
        ck_assert(u.done_seen);
    }
    /* Short enough: the escape is decoded. */
    relay_count_init(&c, RELAY_WIRE_JSON, false);
    n = snprintf(in, sizeof(in), "{\"model\":\"caf\\u00e9\\ud83d\\ude00\"}");
    ck_assert_int_eq(relay_count_feed(&c, in, (size_t)n, NULL, NULL), 0);
    relay_count_result(&c, &u);
    ck_assert_str_eq(u.model, "caf\xc3\xa9\xf0\x9f\x98\x80");
}
END_TEST

static const struct {
    const char *ct;
    enum relay_wire wire;
} wires[] = {
    {"application/x-ndjson", RELAY_WIRE_NDJSON},
    {"application/x-ndjson; charset=utf-8", RELAY_WIRE_NDJSON},
    {"Application/X-NDJSON", RELAY_WIRE_NDJSON},
    {"text/event-stream", RELAY_WIRE_SSE},
    {" text/event-stream;charset=utf-8", RELAY_WIRE_SSE},
    {"application/json; charset=utf-8", RELAY_WIRE_JSON},
    {"text/plain; charset=utf-8", RELAY_WIRE_JSON},
    {"application/x-ndjsonx", RELAY_WIRE_JSON},
    {"text/event", RELAY_WIRE_JSON},
    {"", RELAY_WIRE_JSON},
    {NULL, RELAY_WIRE_JSON},
};

START_TEST(wire_for_content_type)
{
    ck_assert_int_eq(relay_count_wire_for(wires[_i].ct), wires[_i].wire);
}
END_TEST

START_TEST(free_is_safe)
{
    struct relay_count c;

    memset(&c, 0, sizeof(c));
    relay_count_free(&c);
    relay_count_init(&c, RELAY_WIRE_SSE, true);
    ck_assert_int_eq(relay_count_feed(&c, "data: {", 7, NULL, NULL), 0);
    ck_assert_ptr_nonnull(c.held);
    relay_count_free(&c);
    ck_assert_ptr_null(c.held);
    relay_count_free(&c);
}
END_TEST

static void
add_loop(Suite *s, const char *name, const TTest *fn, int n)
{
    TCase *tc = tcase_create(name);

    tcase_add_loop_test(tc, fn, 0, n);
    suite_add_tcase(s, tc);
}

static Suite *
count_suite(void)
{
    Suite *s = suite_create("count");
    TCase *tc;

    add_loop(s, "native NDJSON is counted from its done line",
             native_ndjson_counts, (int)NELEM(native_ok));
    add_loop(s, "a native stream cut short has no counts", native_cut_short,
             (int)NELEM(native_cut));
    add_loop(s, "a non-streamed body is counted from its one object",
             json_bodies, (int)NELEM(bodies));
    add_loop(s, "SSE usage comes from the last non-zero usage object",
             sse_usage_counts, (int)NELEM(sse_usage));
    add_loop(s, "an SSE stream without a usage object has no counts",
             sse_without_counts, (int)NELEM(sse_nocount));
    add_loop(s, "strip_usage drops the usage event and zero usage keys",
             sse_strip_usage, (int)NELEM(sse_strip));

    tc = tcase_create("huge bodies and lines are counted without being held");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, huge_json_body);
    tcase_add_test(tc, huge_ndjson_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("an event too long to hold passes through unchanged");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oversized_event_passes_through);
    suite_add_tcase(s, tc);

    tc = tcase_create("a vanished client is sent nothing more and counts stop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, gone_client_ndjson);
    tcase_add_test(tc, gone_client_sse);
    tcase_add_test(tc, gone_client_sse_strip);
    tcase_add_test(tc, gone_client_whole_feed);
    suite_add_tcase(s, tc);

    TG_TCASE(s, "a long model name is cut at a character boundary",
             model_cut_at_char_boundary);
    add_loop(s, "the content type picks the wire format", wire_for_content_type,
             (int)NELEM(wires));
    TG_TCASE(s, "free releases the held event and is safe twice", free_is_safe);
    return s;
}

TG_CHECK_MAIN(count_suite)
