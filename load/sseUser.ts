import { StreamClock } from '../tooling/latency.js';
import type { RunContext } from './scenarios.js';

const PROMPTS = ['Once upon a time', 'Tell me about a cat', 'The little dog', 'What happened next?'];

/**
 * One virtual user on any OpenAI-compatible streaming endpoint (this server, llama-server, vLLM,
 * Ollama): POST {url}/chat/completions with `stream: true`. `cancel` aborts after k chunks;
 * other scenarios send plain streamed chats.
 */
export async function runSseUser(ctx: RunContext, index: number): Promise<void> {
  const { options, recorder } = ctx;
  while (!ctx.stopped()) {
    await ctx.pace();
    if (ctx.stopped()) return;
    const cancelAfter = options.scenario === 'cancel' ? options.cancelAfter : undefined;
    await streamOnce(ctx, PROMPTS[(index + recorder.requests) % PROMPTS.length] ?? 'Hello', cancelAfter);
    if (options.thinkMs > 0) await new Promise((resolve) => setTimeout(resolve, options.thinkMs));
  }
}

async function streamOnce(ctx: RunContext, content: string, cancelAfter: number | undefined): Promise<void> {
  const { options, recorder } = ctx;
  const controller = new AbortController();
  const sentAt = performance.now();
  recorder.requests += 1;
  let response: Response;
  try {
    response = await fetch(`${options.url.replace(/\/$/, '')}/chat/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      },
      body: JSON.stringify({
        model: options.model,
        messages: [{ role: 'user', content }],
        max_tokens: options.maxTokens,
        seed: options.seed,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
  } catch {
    recorder.connectionFailures += 1;
    return;
  }
  if (!response.ok || response.body === null) {
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string } };
    recorder.error(String(body.error?.code ?? `http_${response.status}`));
    if (response.status === 429) await new Promise((resolve) => setTimeout(resolve, 500));
    return;
  }
  let chunks = 0;
  let firstAt: number | undefined;
  const clock = new StreamClock(sentAt);
  let finish = 'stop';
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const data = event.startsWith('data: ') ? event.slice(6) : '';
        if (data === '' || data === '[DONE]') continue;
        const chunk = JSON.parse(data) as {
          choices?: Array<{ delta?: { content?: string }; finish_reason?: string | null }>;
        };
        const choice = chunk.choices?.[0];
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (!choice?.delta?.content) continue;
        // An SSE chunk is one token here (the server sends a chunk per token it decodes).
        firstAt ??= performance.now();
        chunks += 1;
        recorder.clock(clock, 1);
        if (cancelAfter !== undefined && chunks >= cancelAfter) {
          finish = 'cancelled';
          controller.abort();
        }
      }
    }
  } catch {
    if (finish !== 'cancelled') {
      recorder.error('stream_broken');
      return;
    }
  }
  recorder.record('e2e', performance.now() - sentAt);
  recorder.finish(finish, chunks, firstAt === undefined ? 0 : performance.now() - firstAt);
}
