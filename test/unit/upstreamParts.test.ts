import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.js';
import type { EngineRequest } from '../../server/engine/Engine.js';
import { chooseUpstream } from '../../server/engine/upstream/chooseUpstream.js';
import { parseUpstreamSettings, rootOf } from '../../server/engine/upstream/parseUpstreamSettings.js';
import { sumSamples } from '../../server/engine/upstream/probeUpstream.js';
import { readStreamEvent } from '../../server/engine/upstream/readStreamEvent.js';
import { SseParser } from '../../server/engine/upstream/SseParser.js';
import { upstreamRequestOf } from '../../server/engine/upstream/upstreamRequestOf.js';

describe('the --upstream setting', () => {
  it('reads comma-separated base URLs with slots and an API key variable in the fragment', () => {
    const parsed = parseUpstreamSettings(
      'http://gpu-1:8000/v1#slots=16&apiKeyEnv=GPU_KEY, https://gpu-2/v1/ ,http://127.0.0.1:8081',
    );
    expect(parsed).toEqual({
      settings: [
        { url: 'http://gpu-1:8000/v1', slots: 16, apiKeyEnv: 'GPU_KEY' },
        { url: 'https://gpu-2/v1' },
        { url: 'http://127.0.0.1:8081/v1' },
      ],
    });
    expect(rootOf('http://gpu-1:8000/v1')).toBe('http://gpu-1:8000');
  });

  it('names each bad entry: not a URL, another scheme, credentials, a query, bad slots, an unknown setting, a repeat', () => {
    const errorsOf = (value: string) => ('errors' in parseUpstreamSettings(value) ? parseUpstreamSettings(value) : {});
    expect(errorsOf('gpu-1:8000')).toEqual({ errors: [expect.stringMatching(/not http: or https:|not a URL/)] });
    expect(errorsOf('ftp://gpu-1/v1')).toEqual({ errors: ['ftp: is not http: or https:'] });
    const withKey = JSON.stringify(errorsOf('http://me:sk-secret@gpu-1/v1'));
    expect(withKey).toContain('apiKeyEnv');
    expect(withKey).not.toContain('sk-secret');
    expect(errorsOf('http://gpu-1/v1?x=1')).toEqual({ errors: ['http://gpu-1/v1 must have no query'] });
    expect(errorsOf('http://gpu-1/v1#slots=0')).toEqual({ errors: [expect.stringContaining('slots must be')] });
    expect(errorsOf('http://gpu-1/v1#slot=4')).toEqual({ errors: [expect.stringContaining('unknown setting "slot"')] });
    expect(errorsOf('http://gpu-1/v1,http://gpu-1/v1/')).toEqual({ errors: ['http://gpu-1/v1 is named twice'] });
    expect(errorsOf(' , ')).toEqual({ errors: ['holds no URL'] });
  });

  it('comes from UPSTREAM or --upstream, reads the key from the named variable, and refuses a missing one', () => {
    const config = loadConfig(['--upstream', 'http://a:1/v1#apiKeyEnv=A_KEY,http://b:2/v1#slots=2'], { A_KEY: 'sk-a' });
    expect(config.upstream).toEqual([
      { url: 'http://a:1/v1', apiKeyEnv: 'A_KEY', apiKey: 'sk-a' },
      { url: 'http://b:2/v1', slots: 2 },
    ]);
    expect(loadConfig([], { UPSTREAM: 'http://c:3/v1' }).upstream).toEqual([{ url: 'http://c:3/v1' }]);
    expect(loadConfig([], {}).upstream).toEqual([]);
    expect(() => loadConfig(['--upstream', 'http://a:1/v1#apiKeyEnv=A_KEY'], {})).toThrow(
      /--upstream \(UPSTREAM\): http:\/\/a:1\/v1: the variable A_KEY named by apiKeyEnv is not set/,
    );
    expect(() => loadConfig(['--upstream', 'nope'], {})).toThrow(ConfigError);
  });
});

describe('server-sent events', () => {
  it('frames events across arbitrary splits, LF, CRLF and CR line ends, comments and multi-line data', () => {
    const stream = ': keep-alive\n\ndata: {"a":1}\n\r\ndata:one\r\ndata: two\r\n\r\nevent: x\rdata: [DONE]\r\r\n';
    for (const size of [1, 2, 3, 7, stream.length]) {
      const parser = new SseParser();
      const events: string[] = [];
      for (let at = 0; at < stream.length; at += size) events.push(...parser.push(stream.slice(at, at + size)));
      expect(events).toEqual(['{"a":1}', 'one\ntwo', '[DONE]']);
    }
  });

  it('maps content, reasoning_content, reasoning and completion text to channels, and reads finish and usage', () => {
    const chunk = (delta: unknown, finish: string | null = null) =>
      readStreamEvent(JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] }));
    expect(chunk({ content: 'Hi' })).toEqual({
      kind: 'chunk',
      pieces: [{ text: 'Hi', channel: 'content' }],
      toolCalls: [],
      finish: undefined,
      usage: undefined,
    });
    const call = { index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a"' } };
    expect(chunk({ tool_calls: [call] })).toMatchObject({
      toolCalls: [{ index: 0, id: 'call_1', name: 'f', arguments: '{"a"' }],
    });
    expect(chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] })).toMatchObject({
      toolCalls: [{ index: 0, arguments: ':1}' }],
    });
    expect(chunk({ reasoning_content: 'Hm' })).toMatchObject({ pieces: [{ text: 'Hm', channel: 'reasoning' }] });
    expect(chunk({ reasoning: 'Hm', content: '!' })).toMatchObject({
      pieces: [
        { text: 'Hm', channel: 'reasoning' },
        { text: '!', channel: 'content' },
      ],
    });
    expect(chunk({ role: 'assistant', content: '' })).toMatchObject({ pieces: [] });
    expect(chunk({}, 'length')).toMatchObject({ finish: 'length' });
    expect(chunk({}, 'stop')).toMatchObject({ finish: 'stop' });
    expect(chunk({}, 'tool_calls')).toMatchObject({ finish: 'tool_calls' });
    const text = readStreamEvent('{"choices":[{"index":0,"text":"Once","finish_reason":null}]}');
    expect(text).toMatchObject({ pieces: [{ text: 'Once', channel: 'content' }] });
    const usage = readStreamEvent(
      '{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":9}}}',
    );
    expect(usage).toMatchObject({ usage: { promptTokens: 12, cachedPromptTokens: 9 } });
    const llama = readStreamEvent('{"choices":[],"usage":{"prompt_tokens":12},"timings":{"cache_n":7}}');
    expect(llama).toMatchObject({ usage: { promptTokens: 12, cachedPromptTokens: 7 } });
    expect(readStreamEvent('[DONE]')).toEqual({ kind: 'done' });
    expect(readStreamEvent('{"error":{"message":"Broke","type":"server_error"}}')).toEqual({
      kind: 'error',
      message: 'Broke',
      code: 'server_error',
    });
    expect(() => readStreamEvent('{not json')).toThrow();
  });
});

describe('choosing an upstream', () => {
  const upstream = (id: number, inFlight: number, capacity = 4) => ({ id, inFlight, capacity });

  it('sends a conversation back to the upstream that served it while that one has room', () => {
    expect(chooseUpstream([upstream(0, 0), upstream(1, 3)], 1, 0)).toBe(1);
    expect(chooseUpstream([upstream(0, 0), upstream(1, 4)], 1, 0)).toBe(0);
  });

  it('else takes the least loaded by share of capacity, ties in turn, and none when all are full', () => {
    expect(chooseUpstream([upstream(0, 2), upstream(1, 1)], undefined, 0)).toBe(1);
    expect(chooseUpstream([upstream(0, 2, 4), upstream(1, 3, 16)], undefined, 0)).toBe(1);
    expect([0, 1, 2, 3].map((turn) => chooseUpstream([upstream(0, 1), upstream(1, 1)], undefined, turn))).toEqual([
      0, 1, 0, 1,
    ]);
    expect(chooseUpstream([upstream(0, 4), upstream(1, 4)], 0, 0)).toBeUndefined();
    expect(chooseUpstream([], undefined, 0)).toBeUndefined();
  });
});

describe('the upstream request', () => {
  const request = (format: 'chat' | 'text', affinityKey?: string): EngineRequest => ({
    slot: 0,
    format,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ],
    params: { maxTokens: 16, temperature: 0, topK: 40, minP: 0.05, seed: 7, stop: ['\n'], reasoning: 'low' },
    signal: new AbortController().signal,
    onChunk: () => undefined,
    ...(affinityKey === undefined ? {} : { affinityKey }),
  });

  it('streams with usage and forwards every sampling parameter, with llama-server its cache_prompt', () => {
    const { path, body } = upstreamRequestOf(request('chat'), 'm', 'llama-server');
    expect(path).toBe('/chat/completions');
    expect(body).toEqual({
      model: 'm',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 16,
      temperature: 0,
      top_k: 40,
      min_p: 0.05,
      seed: 7,
      stop: ['\n'],
      cache_prompt: true,
      reasoning_effort: 'low',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    });
    const text = upstreamRequestOf(request('text'), 'm', 'openai');
    expect(text.path).toBe('/completions');
    expect(text.body).toMatchObject({ prompt: 'Be brief.Hi' });
    expect(text.body).not.toHaveProperty('cache_prompt');
  });

  it('forwards structured output as response_format, for the upstream to constrain', () => {
    const withFormat = (responseFormat: EngineRequest['params']['responseFormat']) => {
      const base = request('chat');
      return upstreamRequestOf({ ...base, params: { ...base.params, responseFormat } }, 'm', 'openai').body;
    };
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    expect(withFormat({ type: 'json_object' }).response_format).toEqual({ type: 'json_object' });
    expect(withFormat({ type: 'json_schema', schema, name: 'thing' }).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'thing', schema, strict: true },
    });
    expect(withFormat({ type: 'text' })).not.toHaveProperty('response_format');
  });

  it('gives this server a cache key derived from the session, never the session id itself', () => {
    const { body } = upstreamRequestOf(request('chat', 's_secret-session'), 'm', 'llm-chat-server');
    expect(body.prompt_cache_key).toMatch(/^[\w-]{22}$/);
    expect(JSON.stringify(body)).not.toContain('s_secret-session');
    expect(upstreamRequestOf(request('chat', 's_x'), 'm', 'openai').body).not.toHaveProperty('prompt_cache_key');
  });
});

describe('reading running gauges', () => {
  it('sums a metric over its label sets and ignores metrics that merely share its prefix', () => {
    const text = [
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
      'vllm:num_requests_running{engine="1",model_name="m"} 2.0 1700000000',
      'vllm:num_requests_running_total 99',
    ].join('\n');
    expect(sumSamples(text, 'vllm:num_requests_running')).toBe(5);
    expect(sumSamples('llmchat_num_requests_running 0\n', 'llmchat_num_requests_running')).toBe(0);
    expect(sumSamples('', 'llmchat_num_requests_running')).toBeUndefined();
  });
});
