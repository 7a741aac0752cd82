import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ChatClient } from '../../client/ChatClient.js';
import { ClientError } from '../../client/ClientError.js';
import { nodeSockets } from '../../client/node.js';
import { startTestServer } from '../helpers/startTestServer.js';

/** Bounded, so that even the tiny model's nonsense ends well within max_tokens. */
const Character = z.object({
  name: z.string().max(24),
  age: z.int(),
  mood: z.enum(['happy', 'sad', 'sleepy']),
  friends: z.array(z.string().max(12)).max(3),
  pet: z.string().max(12).nullable(),
  brave: z.boolean(),
});
const characterSchema = z.toJSONSchema(Character) as Record<string, unknown>;

describe('structured output: answers constrained to JSON and to a JSON Schema', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 2 });
    client = new OpenAI({ apiKey: 'unused', baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(() => harness.stop());

  it('answers json_schema on chat completions with JSON that validates, for several seeds', async () => {
    for (const seed of [1, 2, 3]) {
      const completion = await client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Describe a character.' }],
        max_tokens: 300,
        seed,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'character', schema: characterSchema, strict: true },
        },
      });
      expect(completion.choices[0]?.finish_reason).toBe('stop');
      const parsed = Character.safeParse(JSON.parse(completion.choices[0]?.message.content ?? ''));
      expect(parsed.error).toBeUndefined();
    }
  });

  it('parses into a zod type with the openai client’s chat.completions.parse', async () => {
    const completion = await client.chat.completions.parse({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Describe a character.' }],
      max_tokens: 300,
      seed: 7,
      response_format: zodResponseFormat(Character, 'character'),
    });
    const parsed = completion.choices[0]?.message.parsed;
    expect(Character.parse(parsed)).toEqual(parsed);
  });

  it('streams a json_schema answer whose chunks join into valid JSON', async () => {
    const stream = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Describe a character.' }],
      max_tokens: 300,
      seed: 5,
      stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'character', schema: characterSchema } },
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(Character.safeParse(JSON.parse(text)).error).toBeUndefined();
  });

  it('answers json_object with a JSON object, or its beginning when cut at max_tokens', async () => {
    // Nothing bounds a free object's strings: the tiny model rambles inside one until max_tokens.
    for (const seed of [1, 2, 3]) {
      const completion = await client.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Answer in JSON.' }],
        max_tokens: 60,
        seed,
        response_format: { type: 'json_object' },
      });
      const choice = completion.choices[0];
      const content = choice?.message.content ?? '';
      expect(content.trimStart().startsWith('{'), content).toBe(true);
      if (choice?.finish_reason === 'stop') expect(JSON.parse(content)).toBeTypeOf('object');
      else expect(choice?.finish_reason).toBe('length');
    }
  });

  it('constrains /v1/completions too', async () => {
    const schema = {
      type: 'object',
      properties: { word: { type: 'string', maxLength: 8 }, count: { type: 'integer' } },
    };
    const answer = await fetch(`${harness.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'Once upon a time',
        max_tokens: 100,
        seed: 2,
        response_format: { type: 'json_schema', json_schema: { name: 'w', schema } },
      }),
    });
    const body = (await answer.json()) as { choices: { text: string }[] };
    const value = z
      .strictObject({ word: z.string().max(8), count: z.int() })
      .parse(JSON.parse(body.choices[0]?.text ?? ''));
    expect(Object.keys(value)).toEqual(['word', 'count']);
  });

  it('refuses a schema the grammar cannot enforce with 400 naming the construct and where it is', async () => {
    const refused = client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Hi' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'x',
          schema: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' } } },
        },
      },
    });
    await expect(refused).rejects.toMatchObject({
      status: 400,
      code: 'bad_frame',
      param: 'response_format.json_schema.schema',
      message: expect.stringContaining('/properties/code: "pattern" is not supported'),
    });
  });

  it('answers params.responseFormat over protocol v1 with JSON of the schema, and refuses an unsupported schema', async () => {
    const chat = await ChatClient.connect(harness.wsUrl, { createSocket: nodeSockets() });
    try {
      const { sessionId } = await chat.openSession();
      const answer = chat.chat(sessionId, 'Describe a character.', {
        maxTokens: 300,
        seed: 11,
        responseFormat: { type: 'json_schema', name: 'character', schema: characterSchema },
      });
      let text = '';
      for await (const chunk of answer) text += chunk.text;
      expect((await answer.done).finish).toBe('stop');
      expect(Character.safeParse(JSON.parse(text)).error).toBeUndefined();

      const refused = chat.chat(sessionId, 'Again', {
        responseFormat: { type: 'json_schema', schema: { type: 'number', minimum: 3 } },
      });
      const error = await refused.done.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: 'bad_frame',
        message: expect.stringContaining('"minimum" is not supported'),
      });
    } finally {
      await chat.close();
    }
  });
});
