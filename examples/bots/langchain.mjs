// A bot on LangChain (@langchain/openai): an agent loop with a tool, then structured output.
//   node examples/bots/langchain.mjs [BASE_URL] [tools|schema]      (API_KEY for a keyed server)
import { HumanMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';

const [baseUrl = 'http://127.0.0.1:8080', only] = process.argv.slice(2);
const apiKey = process.env.API_KEY ?? 'unused-in-open-mode';
const { data } = await (await fetch(`${baseUrl}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })).json();
const chat = new ChatOpenAI({
  model: data[0].id,
  apiKey,
  configuration: { baseURL: `${baseUrl}/v1` },
  temperature: 0,
  maxTokens: 200,
});

if (only !== 'schema') {
  const getWeather = tool(async ({ city }) => `Sunny, 24 °C in ${city}`, {
    name: 'get_weather',
    description: 'Current weather in a city',
    schema: z.object({ city: z.string() }),
  });
  const withTools = chat.bindTools([getWeather]);
  const messages = [new HumanMessage('What is the weather in Paris?')];
  let reply = await withTools.invoke(messages);
  // The loop (at most 5 rounds): run every tool the model called, send the results back, ask again.
  for (let round = 1; reply.tool_calls?.length && round <= 5; round++) {
    messages.push(reply);
    for (const call of reply.tool_calls) {
      console.log(`tool call: ${call.name}(${JSON.stringify(call.args)})`);
      messages.push(await getWeather.invoke(call));
    }
    reply = await withTools.invoke(messages);
  }
  console.log(`answer: ${reply.content}`);
}

if (only !== 'tools') {
  const story = chat.withStructuredOutput(z.object({ title: z.string(), tags: z.array(z.string()).max(3) }));
  console.log(`object: ${JSON.stringify(await story.invoke('Name a story and tag it.'))}`);
}
