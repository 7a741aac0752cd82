// A bot on the Vercel AI SDK (its default OpenAI provider, which speaks the Responses API): an
// agent loop with a tool, then structured output.
//   node examples/bots/ai-sdk.mjs [BASE_URL] [tools|schema]      (API_KEY for a keyed server)
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, stepCountIs, tool } from 'ai';
import { z } from 'zod';

const [baseUrl = 'http://127.0.0.1:8080', only] = process.argv.slice(2);
const apiKey = process.env.API_KEY ?? 'unused-in-open-mode';
const openai = createOpenAI({ baseURL: `${baseUrl}/v1`, apiKey });
const { data } = await (await fetch(`${baseUrl}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })).json();
const model = openai(data[0].id);

if (only !== 'schema') {
  const { text, steps } = await generateText({
    model,
    prompt: 'What is the weather in Paris?',
    tools: {
      get_weather: tool({
        description: 'Current weather in a city',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => `Sunny, 24 °C in ${city}`,
      }),
    },
    // Up to 5 steps: the model calls, the SDK runs the tool and sends the result, the model answers.
    stopWhen: stepCountIs(5),
    temperature: 0,
  });
  for (const call of steps.flatMap((step) => step.toolCalls))
    console.log(`tool call: ${call.toolName}(${JSON.stringify(call.input)})`);
  console.log(`answer: ${text}`);
}

if (only !== 'tools') {
  const { object } = await generateObject({
    model,
    schema: z.object({ title: z.string(), tags: z.array(z.string()).max(3) }),
    prompt: 'Name a story and tag it.',
    maxOutputTokens: 200,
  });
  console.log(`object: ${JSON.stringify(object)}`);
}
