// A bot on the official `openai` package: an agent loop with a tool, then structured output.
//   node examples/bots/openai.mjs [BASE_URL] [tools|schema]      (API_KEY for a keyed server)
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const [baseUrl = 'http://127.0.0.1:8080', only] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: process.env.API_KEY ?? 'unused-in-open-mode' });
const [model] = (await client.models.list()).data;

if (only !== 'schema') {
  // runTools asks the model, runs each tool it calls, sends the results back, until it answers.
  const runner = client.chat.completions.runTools({
    model: model.id,
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    tools: [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Current weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          parse: JSON.parse,
          function: async ({ city }) => `Sunny, 24 °C in ${city}`,
        },
      },
    ],
    max_tokens: 200,
    temperature: 0,
  });
  runner.on('functionToolCall', (call) => console.log(`tool call: ${call.name}(${call.arguments})`));
  console.log(`answer: ${await runner.finalContent()}`);
}

if (only !== 'tools') {
  // The answer is JSON of the schema's shape: a grammar holds the model to it.
  const Story = z.object({ title: z.string(), tags: z.array(z.string()).max(3) });
  const completion = await client.chat.completions.parse({
    model: model.id,
    messages: [{ role: 'user', content: 'Name a story and tag it.' }],
    response_format: zodResponseFormat(Story, 'story'),
    max_tokens: 200,
  });
  console.log(`object: ${JSON.stringify(completion.choices[0].message.parsed)}`);
}
