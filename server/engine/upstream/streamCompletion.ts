import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { readStreamEvent, type StreamEvent } from './readStreamEvent.js';
import { SseParser } from './SseParser.js';
import { UpstreamFailure } from './UpstreamFailure.js';
import type { UpstreamRequest } from './upstreamRequestOf.js';

export type StreamTarget = { url: string; apiKey: string | undefined; agent: http.Agent };

export type StreamOptions = {
  signal: AbortSignal;
  /** Fails the request when no byte arrives for this long. */
  idleTimeoutMs: number;
  onEvent: (event: Extract<StreamEvent, { kind: 'chunk' }>) => void;
};

const MAX_ERROR_BODY = 16 * 1024;

/**
 * POSTs one streaming request and hands its events over as they come. Resolves 'ended' after
 * `[DONE]` (or the end of an answer that gave its finish reason), 'aborted' when the signal
 * fired (the connection is destroyed, which cancels the generation upstream); rejects with an
 * UpstreamFailure otherwise.
 */
export function streamCompletion(
  target: StreamTarget,
  request: UpstreamRequest,
  options: StreamOptions,
): Promise<'ended' | 'aborted'> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return resolve('aborted');
    const payload = JSON.stringify(request.body);
    const url = new URL(target.url + request.path);
    let outgoing: http.ClientRequest;
    let settled = false;
    let answered = false;
    const settle = (outcome: 'ended' | 'aborted' | UpstreamFailure) => {
      if (settled) return;
      settled = true;
      options.signal.removeEventListener('abort', onAbort);
      if (outcome instanceof UpstreamFailure) {
        outgoing.destroy();
        reject(outcome);
      } else resolve(outcome);
    };
    const onAbort = () => {
      outgoing.destroy();
      settle('aborted');
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    /** `agent` false: a connection of its own, for the second try after a kept-alive one was found closed. */
    const send = (agent: http.Agent | false) => {
      outgoing = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          accept: 'text/event-stream',
          ...(target.apiKey === undefined ? {} : { authorization: `Bearer ${target.apiKey}` }),
        },
      });
      const sent = outgoing;
      sent.setTimeout(options.idleTimeoutMs, () => {
        const where = answered ? 'the answer stalled' : 'no answer';
        settle(new UpstreamFailure('timeout', `${where}: nothing for ${options.idleTimeoutMs} ms`));
      });
      sent.on('error', (error) => {
        // The upstream closed a kept-alive connection as this request went out on it (llama-server
        // closes one after every streamed answer): it never saw the request, so send it again on
        // a new one.
        if (!answered && sent.reusedSocket && agent !== false && !settled) return send(false);
        settle(new UpstreamFailure(answered ? 'cut' : 'unreachable', error.message));
      });
      sent.on('response', (response) => {
        answered = true;
        if (response.statusCode !== 200) return void failedStatus(response).then(settle);
        if (!String(response.headers['content-type']).includes('text/event-stream')) {
          return settle(new UpstreamFailure('protocol', 'the answer is not an event stream'));
        }
        readEvents(response, options, settle);
      });
      sent.end(payload);
    };
    send(target.agent);
  });
}

/** Feeds the events of a 200 answer to onEvent until `[DONE]`, an error event, or its end. */
function readEvents(
  response: IncomingMessage,
  options: StreamOptions,
  settle: (outcome: 'ended' | UpstreamFailure) => void,
): void {
  const parser = new SseParser();
  let finished = false;
  response.setEncoding('utf8');
  response.on('data', (text: string) => {
    for (const data of parser.push(text)) {
      let event: StreamEvent;
      try {
        event = readStreamEvent(data);
      } catch {
        return settle(new UpstreamFailure('protocol', `an event that is not JSON: ${data.slice(0, 80)}`));
      }
      if (event.kind === 'done') return settle('ended');
      if (event.kind === 'error') return settle(new UpstreamFailure('protocol', event.message, undefined, event.code));
      finished ||= event.finish !== undefined;
      options.onEvent(event);
    }
  });
  response.on('end', () =>
    settle(finished ? 'ended' : new UpstreamFailure('cut', 'the stream ended before the answer')),
  );
  response.on('error', (error) => settle(new UpstreamFailure('cut', error.message)));
  response.on('close', () => {
    if (!response.complete) settle(new UpstreamFailure('cut', 'the connection closed mid answer'));
  });
}

/** An error answer: its status, and its message and code when it gave them in OpenAI's shape. */
async function failedStatus(response: IncomingMessage): Promise<UpstreamFailure> {
  const status = response.statusCode ?? 0;
  let body = '';
  try {
    for await (const piece of response) {
      body += String(piece);
      if (body.length > MAX_ERROR_BODY) break;
    }
  } catch {
    // What came is enough to describe it.
  }
  const error = parseError(body);
  const message = error?.message ?? (body.slice(0, 200) || response.statusMessage || 'no message');
  return new UpstreamFailure('status', `HTTP ${status}: ${message}`, status, error?.code);
}

function parseError(body: string): { message: string | undefined; code: string | undefined } | undefined {
  try {
    const error = (JSON.parse(body) as { error?: { message?: unknown; code?: unknown; type?: unknown } }).error;
    if (error === undefined) return undefined;
    const code = typeof error.code === 'string' ? error.code : typeof error.type === 'string' ? error.type : undefined;
    return { message: typeof error.message === 'string' ? error.message : undefined, code };
  } catch {
    return undefined;
  }
}
