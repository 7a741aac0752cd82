import { createInterface } from 'node:readline';
import { ChatClient } from 'llm-chat-server/client';
import { nodeSockets } from 'llm-chat-server/client/node';

const url = process.argv[2] ?? 'ws://127.0.0.1:8080/v1/ws';
const client = await ChatClient.connect(url, { createSocket: nodeSockets({ apiKey: process.env.API_KEY }) });
const { sessionId } = await client.openSession();

for await (const line of createInterface({ input: process.stdin })) {
  const answer = client.chat(sessionId, line);
  try {
    for await (const chunk of answer) process.stdout.write(chunk.text);
    const { finish, usage } = await answer.done;
    console.log(`\n[${finish}, ${usage.completionTokens} tokens]`);
  } catch (error) {
    console.error(`[${error.code}] ${error.message}`);
  }
  process.stdout.write('> ');
}
await client.close();
