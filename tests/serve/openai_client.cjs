// Drives a running `qforge serve` with the official `openai` Node package (installed by
// scripts/setup.sh into build/node; found through NODE_PATH): completions, chat, streaming of
// both, model listing, and the errors the SDK maps (404 unknown model, 401 wrong key).
// Usage: NODE_PATH=build/node/node_modules node openai_client.cjs PORT MODEL API_KEY
'use strict';
const OpenAI = require('openai');

async function main() {
  const [port, model, apiKey] = process.argv.slice(2);
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0 });
  const out = {};
  const prompt = 'Once upon a time';
  const messages = [{ role: 'user', content: 'Tell me a story' }];

  const c = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
  out.completion = c.choices[0].text;
  out.completion_tokens = c.usage.completion_tokens;
  let text = '';
  for await (const chunk of await client.completions.create(
      { model, prompt, max_tokens: 24, temperature: 0, stream: true })) {
    text += chunk.choices[0]?.text ?? '';
  }
  out.completion_stream = text;

  const chat = await client.chat.completions.create(
      { model, messages, max_tokens: 24, temperature: 0 });
  out.chat = chat.choices[0].message.content;
  out.chat_role = chat.choices[0].message.role;
  text = '';
  let finish = null;
  for await (const chunk of await client.chat.completions.create(
      { model, messages, max_tokens: 24, temperature: 0, stream: true })) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  out.chat_stream = text;
  out.chat_stream_finish = finish;

  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  try {
    await client.completions.create({ model: 'no-such-model', prompt, max_tokens: 2 });
    out.unknown_model_status = 200;
  } catch (e) {
    out.unknown_model_status = e.status;
    out.unknown_model_class = e.constructor.name;
  }
  try {
    const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong',
                             maxRetries: 0 });
    await bad.models.list();
    out.bad_key_status = 200;
  } catch (e) {
    out.bad_key_status = e.status;
    out.bad_key_class = e.constructor.name;
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`openai_client.cjs: ${e.stack || e}`);
  process.exit(1);
});
