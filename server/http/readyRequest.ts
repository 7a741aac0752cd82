import type { Refusal } from '../../protocol/index.js';
import type { ServerContext } from '../ServerContext.js';
import type { HttpResponse } from '../transport/Transport.js';
import type { ServerState } from './HttpRoutes.js';
import { readJsonBody } from './readJsonBody.js';
import { sendRefusal } from './sendJson.js';

/** What an API handler is given: the server's context once the model is loaded, and its state. */
export type ApiDeps = { context: ServerContext | undefined; state: ServerState };

export type ReadyRequest = { ctx: ServerContext; body: unknown; fail: (refusal: Refusal) => void };

/**
 * The common start of an API request: refuses it while the model loads or the server stops,
 * counts it against the key's requests per minute before its body is read (cheap limits first),
 * then reads the body as JSON. Undefined once it has answered with a refusal; later refusals go
 * through `fail`, in the path's error shape and counted in the metrics.
 */
export async function readyRequest(
  deps: ApiDeps,
  clientKey: string,
  response: HttpResponse,
  shape: 'openai' | 'plain',
  /** A check between the state and the body (a capability the engine lacks). */
  precondition?: (ctx: ServerContext) => Refusal | undefined,
): Promise<ReadyRequest | undefined> {
  const ctx = deps.context;
  const fail = (refusal: Refusal) => {
    ctx?.metrics.countError(refusal.code);
    sendRefusal(response, refusal, { shape });
  };
  if (ctx === undefined || deps.state !== 'ready') {
    if (deps.state === 'shutting_down') fail({ code: 'shutting_down', message: 'The server is shutting down' });
    else fail({ code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 });
    return undefined;
  }
  const refusal = precondition?.(ctx) ?? (await ctx.limiter.admitRequest(clientKey));
  if (refusal !== undefined) {
    fail(refusal);
    return undefined;
  }
  const body = await readJsonBody(response, ctx.config.maxBodyBytes);
  if ('code' in body) {
    fail(body);
    return undefined;
  }
  return { ctx, body: body.value, fail };
}

/** A schema's first issues, each with where it is, for a `bad_frame` message. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`)
    .join('; ');
}
