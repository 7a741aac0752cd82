// A terminal chat with the server: node examples/chat.mjs [ws://127.0.0.1:8080/v1/ws]
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const ws = new WebSocket(process.argv[2] ?? 'ws://127.0.0.1:8080/v1/ws', 'llm-chat.v1');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const send = (frame) => ws.send(JSON.stringify(frame));
let sessionId;

async function ask() {
  process.stdout.write('\n> ');
  const { value, done } = await lines.next();
  if (done) ws.close();
  else send({ type: 'chat.send', id: String(Date.now()), sessionId, content: value });
}

ws.on('message', (data) => {
  const frame = JSON.parse(data);
  if (frame.type === 'welcome') send({ type: 'session.open', id: 'open' });
  if (frame.type === 'session.opened') sessionId = frame.sessionId;
  if (frame.type === 'token') process.stdout.write(frame.text);
  if (frame.type === 'error') console.error(`[${frame.code}] ${frame.message}`);
  if (frame.type === 'generation.done') console.log(`\n[${frame.finish}, ${frame.usage.completionTokens} tokens]`);
  if (['session.opened', 'error', 'generation.done'].includes(frame.type)) ask();
});
ws.on('close', () => process.exit(0));
