import { ChatClient } from '/work/main/client/ChatClient.js';
import { nodeSockets } from '/work/main/client/node.js';
import { spawnServer, processUsage } from '/work/main/tooling/serverProcess.js';
const server = spawnServer(['--max-concurrent', '4', '--threads', '1', '--resume-grace-ms', '0']);
const port = await server.port(); await server.ready();
const client = await ChatClient.connect(`ws://127.0.0.1:${port}/v1/ws`, { createSocket: nodeSockets() });
const { sessionId } = await client.openSession();
const pid = server.child.pid as number;
for (let i = 0; i < 40; i++) {
  const c0 = processUsage(pid).cpuMs; const t0 = performance.now();
  const done = await client.chat(sessionId, 'Once upon a time', { maxTokens: 64, temperature: 0, seed: 42 }).done;
  console.log(i, done.finish, JSON.stringify(done.usage), done.timings.ttftMs, (performance.now()-t0).toFixed(1), processUsage(pid).cpuMs - c0);
}
await client.close(); server.child.kill('SIGTERM'); await server.exited;
