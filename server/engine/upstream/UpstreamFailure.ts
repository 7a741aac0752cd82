import { ContextOverflowError, EngineError } from '../Engine.js';

/**
 * Why an upstream request failed. `unreachable`: no connection, or it broke before an answer;
 * `timeout`: nothing came for the idle timeout; `cut`: the answer stopped before its end;
 * `status`: an HTTP error status; `protocol`: not an event stream, an event that is not JSON, or
 * an error event in the stream.
 */
export type FailureKind = 'unreachable' | 'timeout' | 'cut' | 'status' | 'protocol';

/** The upstream's codes for a prompt longer than its context (this server, llama-server, OpenAI). */
const CONTEXT_CODES = new Set(['context_overflow', 'exceed_context_size_error', 'context_length_exceeded']);

export class UpstreamFailure extends Error {
  override name = 'UpstreamFailure';
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** The HTTP status, for `status`. */
    readonly status?: number,
    /** The upstream's own error code or type, when it gave one. */
    readonly upstreamCode?: string,
  ) {
    super(message);
  }

  /** Whether another upstream may succeed (before a first token): not when the request itself was refused. */
  get retryable(): boolean {
    if (this.kind !== 'status') return true;
    const status = this.status ?? 0;
    return status >= 500 || status === 408 || status === 429;
  }

  /** Whether the upstream itself looks gone or stuck, so that it leaves the pool until a health check passes. */
  get ejects(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || this.kind === 'cut';
  }

  /** What the generation ends with: the upstream's own words where it gave some, never its address. */
  toEngineError(): Error {
    if (this.kind === 'status' && this.status === 400) {
      if (CONTEXT_CODES.has(this.upstreamCode ?? '') || /context/i.test(this.message)) {
        return new ContextOverflowError(`The upstream refused the prompt: ${this.message}`);
      }
    }
    const what: Record<FailureKind, string> = {
      unreachable: 'could not be reached',
      timeout: 'sent nothing for too long',
      cut: 'broke off its answer',
      status: `answered ${this.message}`,
      protocol: `sent an unusable answer (${this.message})`,
    };
    return new EngineError('upstream_error', `The upstream server ${what[this.kind]}`);
  }
}
