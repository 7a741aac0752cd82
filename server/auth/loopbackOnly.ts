/**
 * In open mode (no keys) only loopback is trusted. A browser page elsewhere could still reach a
 * server on 127.0.0.1 through DNS rebinding, but its requests then carry a foreign Host (and
 * Origin): those are refused.
 */
export function isLoopbackRequest(headers: Readonly<Record<string, string>>): boolean {
  if (!isLoopbackHost(headers.host)) return false;
  const origin = headers.origin;
  if (origin === undefined) return true;
  try {
    return isLoopbackHost(new URL(origin).host);
  } catch {
    return false;
  }
}

/** `localhost`, `127.x.y.z` or `[::1]`, with an optional port, and nothing after it. */
const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i;

function isLoopbackHost(host: string | undefined): boolean {
  return host !== undefined && LOOPBACK_HOST.test(host);
}
