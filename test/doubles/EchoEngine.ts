import type { Engine, EngineRequest, EngineResult } from '../../server/engine/Engine.js';

export interface EchoEngineOptions {
  /** Milliseconds between words, to leave time to act mid answer; a macrotask apart when 0. */
  tokenDelayMs?: number;
  /** Answer this many words, cycling through the user's (for tests that need token volume). */
  answerTokens?: number;
  /** Generations at once (the engine, not the config, sets the scheduler's slots). */
  sequences?: number;
}

/**
 * An engine double for fast tests of the server's logic (no model): it answers with the last
 * message back, one word a token, honouring maxTokens and the abort signal. Offered tools (and
 * not 'none') on a user message, it calls each of them once, with `{}`, instead.
 */
export class EchoEngine implements Engine {
  readonly info;
  disposed = false;
  private readonly tokenDelayMs: number;
  private readonly answerTokens: number | undefined;
  /** What the last generation was asked (its params and messages), for tests to look at. */
  lastRequest: EngineRequest | undefined;

  constructor({ tokenDelayMs = 0, answerTokens, sequences = 4 }: EchoEngineOptions = {}) {
    this.info = {
      modelName: 'echo-double',
      contextSize: 4096,
      sequences,
      reasoning: false,
      backend: 'cpu',
      threads: 1,
    };
    this.tokenDelayMs = tokenDelayMs;
    this.answerTokens = answerTokens;
  }

  async generate(request: EngineRequest): Promise<EngineResult> {
    this.lastRequest = request;
    const { tools = [], toolChoice } = request.params;
    if (tools.length > 0 && toolChoice !== 'none' && request.messages.at(-1)?.role === 'user') {
      for (const [index, tool] of tools.entries())
        request.onToolCallChunk?.({ index, id: `call_${index}`, name: tool.name, arguments: '{}', tokens: 1 });
      return { stop: 'tool_calls', promptTokens: request.messages.length, cachedPromptTokens: 0 };
    }
    const last = request.messages.at(-1)?.content ?? '';
    const words = last.split(/(?<= )/).filter((word) => word !== '');
    const promptTokens = request.messages.reduce((sum, message) => sum + message.content.split(' ').length, 0);
    const result = (stop: EngineResult['stop']): EngineResult => ({ stop, promptTokens, cachedPromptTokens: 0 });
    const length = words.length === 0 ? 0 : (this.answerTokens ?? words.length);
    for (let index = 0; index < length; index++) {
      if (index >= request.params.maxTokens) return result('length');
      await new Promise((resolve) =>
        this.tokenDelayMs === 0 ? setImmediate(resolve) : setTimeout(resolve, this.tokenDelayMs),
      );
      if (request.signal.aborted) return result('aborted');
      request.onChunk({ text: words[index % words.length] ?? '', channel: 'content', tokens: 1 });
    }
    return result('stop');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
