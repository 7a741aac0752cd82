import WebSocket from 'ws';
import { ChatClient, type WebSocketLike } from '../client/ChatClient.js';
import type { Welcome } from '../protocol/index.js';
import type { LoadOptions } from './options.js';

/** An HTTP answer as recorded: its status and its body (parsed when it is JSON). */
export type HttpRecord = { url: string; status: number; body: unknown };

/** What the server said about itself when the run started, for the report. */
export type ServerInfo = {
  /** The HTTP origin derived from the load's URL (ws → http, wss → https). */
  httpBase: string;
  /** The `welcome` frame of a probe connection (WebSocket target only). */
  welcome?: Welcome;
  /** GET /readyz on the HTTP base. */
  readyz?: HttpRecord;
  /** GET {url}/models (openai-sse target only): which model the endpoint serves. */
  models?: HttpRecord;
  /** What could not be fetched, and why, in words. */
  problems: string[];
};

const PROBE_TIMEOUT_MS = 5000;

/** The HTTP origin of a ws://, wss://, http:// or https:// URL. */
export function httpBaseOf(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : parsed.protocol === 'ws:' ? 'http:' : parsed.protocol;
  return parsed.origin;
}

/** Fetches the server's `welcome` (one probe connection) and `/readyz` before the load starts. */
export async function probeServer(options: Pick<LoadOptions, 'url' | 'target' | 'apiKey'>): Promise<ServerInfo> {
  const info: ServerInfo = { httpBase: httpBaseOf(options.url), problems: [] };
  const headers: Record<string, string> =
    options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` };
  const attempt = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await work();
    } catch (error) {
      info.problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  };
  info.readyz = await attempt('GET /readyz', () => getRecord(`${info.httpBase}/readyz`, headers));
  if (options.target === 'ws') info.welcome = await attempt('welcome', () => fetchWelcome(options.url, headers));
  else info.models = await attempt('GET /models', () => getRecord(`${options.url.replace(/\/$/, '')}/models`, headers));
  return info;
}

async function getRecord(url: string, headers: Record<string, string>): Promise<HttpRecord> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return { url, status: response.status, body };
}

async function fetchWelcome(url: string, headers: Record<string, string>): Promise<Welcome> {
  let socket: WebSocket | undefined;
  const createSocket = (target: string, protocols: string[]) => {
    socket = new WebSocket(target, protocols, { headers });
    return socket as unknown as WebSocketLike;
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no welcome within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    const client = await Promise.race([ChatClient.connect(url, { createSocket }), timeout]);
    await client.close();
    return client.welcome;
  } catch (error) {
    socket?.terminate();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
