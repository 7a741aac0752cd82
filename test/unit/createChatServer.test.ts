import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError, createChatServer } from '../../server/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, openSession } from '../helpers/conversation.js';
import { TestClient } from '../helpers/TestClient.js';

const quiet = pino({ level: 'silent' });

describe('createChatServer, the server as a library (on the echo engine double)', () => {
  it('listens on a free port, serves the engine it is given, and closes without disposing it', async () => {
    const engine = new EchoEngine();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const server = createChatServer({ config: { port: 0, store: 'memory' }, engine, logger });
    expect(server.address).toBeUndefined();
    const address = await server.listen();
    await server.ready;
    expect(server.address).toEqual(address);
    expect(server.state()).toBe('ready');
    // Where a person starts, said once it is ready.
    expect(lines.join('\n')).toContain(`open http://127.0.0.1:${address.port}/ in a browser`);

    const client = await TestClient.connect(`ws://127.0.0.1:${address.port}/v1/ws`);
    expect(client.welcome.model.name).toBe('echo-double');
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'hello there you');
    expect(answer.text).toBe('hello there you');
    expect(answer.done).toMatchObject({ finish: 'stop', usage: { completionTokens: 3 } });
    await client.close();

    await server.close();
    expect(server.state()).toBe('shutting_down');
    expect(engine.disposed).toBe(false);
    await expect(fetch(`http://127.0.0.1:${address.port}/healthz`)).rejects.toThrow();
  });

  it('refuses bad settings when created, before anything listens', () => {
    expect(() => createChatServer({ config: { port: -1 }, logger: quiet })).toThrow(/--port \(PORT\)/);
    expect(() => createChatServer({ config: { apiKeys: ',' }, logger: quiet })).toThrow(ConfigError);
    expect(() => createChatServer({ config: { host: '0.0.0.0' }, logger: quiet })).toThrow(/without API keys/);
  });
});
