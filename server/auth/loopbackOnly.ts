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

function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}
