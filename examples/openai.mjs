// Streams an answer through the official `openai` package (npm install openai).
//   node examples/openai.mjs [BASE_URL]      (API_KEY for a keyed server)
import OpenAI from 'openai';

const baseURL = `${process.argv[2] ?? 'http://127.0.0.1:8080'}/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.API_KEY ?? 'unused-in-open-mode' });
const [model] = (await client.models.list()).data;
const stream = await client.chat.completions.create({
  model: model.id,
  messages: [{ role: 'user', content: 'Once upon a time' }],
  max_tokens: 32,
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
process.stdout.write('\n');
