import { request as httpRequest, type IncomingMessage } from 'node:http';
import { SseParser } from '../server/engine/upstream/SseParser.js';
import { measureOf, type RunMeasure, StreamClock } from '../tooling/latency.js';

export type SseRunOptions = { streams: number; prompt: string; maxTokens: number; seed: number };

type StreamChunk = {
  choices?: Array<{ delta?: { content?: string | null } }>;
  usage?: { completion_tokens?: number } | null;
};

/**
 * `streams` streaming chat completions at once against an OpenAI-compatible `baseUrl` (this
 * server's HTTP API or llama-server), temperature 0; one measure per repeat after a short
 * warm-up. Each content delta counts as one token for latency; throughput counts the tokens the
 * final usage reports, as either server may put more than one token in a delta.
 */
export async function runSseClients(
  baseUrl: string,
  options: SseRunOptions,
  repeats: number,
  onWarm?: () => void,
): Promise<RunMeasure[]> {
  await runOnce(baseUrl, { ...options, maxTokens: Math.min(8, options.maxTokens) });
  onWarm?.();
  const runs: RunMeasure[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) runs.push(await runOnce(baseUrl, options));
  return runs;
}

export async function runOnce(baseUrl: string, options: SseRunOptions): Promise<RunMeasure> {
  const startedAt = performance.now();
  const clocks = await Promise.all(Array.from({ length: options.streams }, () => stream(baseUrl, options, startedAt)));
  return measureOf(clocks, performance.now() - startedAt);
}

async function stream(baseUrl: string, options: SseRunOptions, startedAt: number): Promise<StreamClock> {
  const clock = new StreamClock(startedAt);
  const body = JSON.stringify({
    messages: [{ role: 'user', content: options.prompt }],
    max_tokens: options.maxTokens,
    temperature: 0,
    seed: options.seed,
    stream: true,
    stream_options: { include_usage: true },
  });
  // A connection per request (agent: false), for every side alike: llama-server closes the
  // connection after each streamed answer although its headers offer keep-alive.
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = httpRequest(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    request.on('response', resolve).on('error', reject).end(body);
  });
  if (response.statusCode !== 200) throw new Error(`${baseUrl}: HTTP ${response.statusCode}`);
  response.setEncoding('utf8');
  const events = new SseParser();
  let reported: number | undefined;
  for await (const text of response as AsyncIterable<string>) {
    for (const data of events.push(text)) {
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as StreamChunk;
      if ((chunk.choices?.[0]?.delta?.content ?? '') !== '') clock.chunk(1);
      reported = chunk.usage?.completion_tokens ?? reported;
    }
  }
  if (reported !== undefined) clock.tokens = reported;
  return clock;
}
