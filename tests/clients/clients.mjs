// The clients people use, unchanged, against tollgate: prints one JSON
// object of results for tests/integration/test_clients.py to check.
// Usage: BASE=http://127.0.0.1:PORT KEY=sk-tg-... SPENT=sk-tg-... node clients.mjs
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { ChatOllama } from '@langchain/ollama';

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
await record('openai_tool_stream', async () => {
  const tools = [{ type: 'function', function: {
    name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const s = await openai.chat.completions.create({
    model: 'llama3', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools, stream: true });
  const calls = [];
  let finish = null, content = '';
  for await (const c of s) {
    for (const ch of c.choices) {
      content += ch.delta?.content ?? '';
      for (const tc of ch.delta?.tool_calls ?? []) {
        calls[tc.index] ??= { id: tc.id, name: '', arguments: '' };
        calls[tc.index].name += tc.function?.name ?? '';
        calls[tc.index].arguments += tc.function?.arguments ?? '';
      }
      finish = ch.finish_reason ?? finish;
    }
  }
  return { content, finish, calls: calls.map((c) => ({ name: c.name, args: JSON.parse(c.arguments), id: c.id.startsWith('call_') })) };
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
await record('ollama_show', async () => {
  const r = await ollama.show({ model: 'llama3' });
  return { family: r.details.family, capabilities: r.capabilities };
});
await record('ollama_bad_key', async () => {
  const bad = new Ollama({ host: BASE, headers: { Authorization: 'Bearer sk-tg-nonsense' } });
  await bad.list();
  return { unexpected: 'no error' };
});
// LangChain's ChatOllama, the key in the headers it passes to ollama-js.
await record('langchain_stream', async () => {
  const llm = new ChatOllama({ baseUrl: BASE, model: 'llama3', headers: { Authorization: `Bearer ${KEY}` } });
  let content = '', chunks = 0, usage = null;
  for await (const c of await llm.stream('hi')) {
    chunks++;
    content += c.content;
    usage = c.usage_metadata ?? usage;
  }
  return { content, chunks, usage };
});

// What Open WebUI does with an Ollama connection that has a key: version,
// the model list, then a streamed chat read line by line, always with
// Authorization: Bearer.
await record('openwebui', async () => {
  const headers = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
  const version = await (await fetch(`${BASE}/api/version`, { headers })).json();
  const tags = await (await fetch(`${BASE}/api/tags`, { headers })).json();
  const r = await fetch(`${BASE}/api/chat`, { method: 'POST', headers, body: JSON.stringify({
    model: tags.models[0].name, messages: [{ role: 'user', content: 'hi' }], stream: true }) });
  const decoder = new TextDecoder();
  let buf = '', content = '', last = null, lines = 0;
  for await (const piece of r.body) {
    buf += decoder.decode(piece, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      last = JSON.parse(line);
      lines++;
      content += last.message?.content ?? '';
    }
  }
  return { version: version.version, model: tags.models[0].name, status: r.status,
    type: r.headers.get('content-type'), lines, content, done: last.done, eval: last.eval_count };
});
console.log(JSON.stringify(out));
