/** What the server says at GET /v1/ws: the refusal an upgrade from this page would get (see server/http/upgradeProbe.ts). */
export type ProbeAnswer =
  | { reachable: false }
  | { reachable: true; status: number; code: string | undefined; message: string };

/**
 * A browser cannot read why a WebSocket upgrade was refused (the socket just closes), so after a
 * failed attempt the widget asks the same URL over plain HTTP, from the same page (so with the
 * same Origin), and reads the JSON error: the server answers it to any page.
 */
export async function probeUpgrade(wsUrl: string): Promise<ProbeAnswer> {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  try {
    const response = await fetch(url, { cache: 'no-store', credentials: 'omit' });
    const body = (await response.json().catch(() => undefined)) as
      | { error?: { code?: string; message?: string } }
      | undefined;
    return {
      reachable: true,
      status: response.status,
      code: body?.error?.code,
      message: body?.error?.message ?? response.statusText,
    };
  } catch {
    // Down, or a server too old to answer any page: both are "cannot reach" from here.
    return { reachable: false };
  }
}
