import type { Engine, EngineRequest, EngineResult } from '../../server/engine/Engine.js';

/**
 * An engine double for fast tests of the server's logic (no model): it answers with the user's
 * last message back, one word a token, honouring maxTokens and the abort signal.
 */
export class EchoEngine implements Engine {
  readonly info = {
    modelName: 'echo-double',
    contextSize: 4096,
    sequences: 4,
    reasoning: false,
    backend: 'cpu',
    threads: 1,
  };
  disposed = false;

  /** `tokenDelayMs` between words, to leave time to act mid answer; a macrotask apart when 0. */
  constructor(private readonly tokenDelayMs = 0) {}

  async generate(request: EngineRequest): Promise<EngineResult> {
    const last = request.messages.at(-1)?.content ?? '';
    const words = last.split(/(?<= )/).filter((word) => word !== '');
    const promptTokens = request.messages.reduce((sum, message) => sum + message.content.split(' ').length, 0);
    const result = (stop: EngineResult['stop']): EngineResult => ({ stop, promptTokens, cachedPromptTokens: 0 });
    for (const [index, word] of words.entries()) {
      if (index >= request.params.maxTokens) return result('length');
      await new Promise((resolve) =>
        this.tokenDelayMs === 0 ? setImmediate(resolve) : setTimeout(resolve, this.tokenDelayMs),
      );
      if (request.signal.aborted) return result('aborted');
      request.onChunk({ text: word, channel: 'content', tokens: 1 });
    }
    return result('stop');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}
