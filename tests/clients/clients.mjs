// The clients people use, unchanged, against tollgate: prints one JSON
// object of results for tests/integration/test_clients.py to check.
// Usage: BASE=http://127.0.0.1:PORT KEY=sk-tg-... BADKEY=... node clients.mjs
import OpenAI from 'openai';
import { Ollama } from 'ollama';

const { BASE, KEY, SPENT } = process.env;
const out = {};
const record = async (name, fn) => {
  try {
    out[name] = await fn();
  } catch (e) {
    out[name] = { error: e.constructor.name, status: e.status ?? e.status_code ?? null, message: String(e.message) };
  }
};
const msgs = [{ role: 'user', content: 'hi' }];

const openai = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY, maxRetries: 0 });
await record('openai_chat', async () => {
  const r = await openai.chat.completions.create({ model: 'llama3', messages: msgs });
  return { content: r.choices[0].message.content, usage: r.usage, finish: r.choices[0].finish_reason };
});
await record('openai_chat_stream', async () => {
  const s = await openai.chat.completions.create({ model: 'llama3', messages: msgs, stream: true });
  let content = '', usage = null, chunks = 0, finish = null;
  for await (const c of s) {
    chunks++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      content += ch.delta?.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
  }
  return { content, usage, chunks, finish };
});
await record('openai_chat_stream_usage', async () => {
  const s = await openai.chat.completions.create({
    model: 'llama3', messages: msgs, stream: true, stream_options: { include_usage: true } });
  let usage = null;
  for await (const c of s) if (c.usage) usage = c.usage;
  return { usage };
});
await record('openai_completion', async () => {
  const r = await openai.completions.create({ model: 'llama3', prompt: 'hi', max_tokens: 3 });
  return { text: r.choices[0].text, usage: r.usage, finish: r.choices[0].finish_reason };
});
await record('openai_embeddings', async () => {
  const r = await openai.embeddings.create({ model: 'all-minilm', input: ['a', 'b'] });
  return { n: r.data.length, dims: r.data[0].embedding.length, usage: r.usage };
});
await record('openai_models', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  return { ids };
});
await record('openai_bad_key', async () => {
  const bad = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'sk-tg-nonsense', maxRetries: 0 });
  await bad.chat.completions.create({ model: 'llama3', messages: msgs });
  return { unexpected: 'no error' };
});
await record('openai_limit', async () => {
  const spent = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: SPENT, maxRetries: 0 });
  await spent.chat.completions.create({ model: 'llama3', messages: msgs });
  return { unexpected: 'no error' };
});

const ollama = new Ollama({ host: BASE, headers: { Authorization: `Bearer ${KEY}` } });
await record('ollama_chat', async () => {
  const r = await ollama.chat({ model: 'llama3', messages: msgs });
  return { content: r.message.content, prompt: r.prompt_eval_count, eval: r.eval_count };
});
await record('ollama_chat_stream', async () => {
  let content = '', last = null, parts = 0;
  for await (const p of await ollama.chat({ model: 'llama3', messages: msgs, stream: true })) {
    parts++;
    content += p.message.content;
    last = p;
  }
  return { content, parts, done: last.done, eval: last.eval_count };
});
await record('ollama_generate', async () => {
  const r = await ollama.generate({ model: 'llama3', prompt: 'hi' });
  return { response: r.response, eval: r.eval_count };
});
await record('ollama_embed', async () => {
  const r = await ollama.embed({ model: 'all-minilm', input: ['a', 'b'] });
  return { n: r.embeddings.length, prompt: r.prompt_eval_count };
});
await record('ollama_list', async () => {
  const r = await ollama.list();
  return { names: r.models.map((m) => m.name) };
});
await record('ollama_bad_key', async () => {
  const bad = new Ollama({ host: BASE, headers: { Authorization: 'Bearer sk-tg-nonsense' } });
  await bad.list();
  return { unexpected: 'no error' };
});
console.log(JSON.stringify(out));
