/** POSTs `body` as JSON to `baseUrl + path`; the status and the parsed answer (an error in OpenAI's shape, when one). */
export async function postJson(
  baseUrl: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: { error?: Record<string, unknown> } }> {
  const answer = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: answer.status, body: (await answer.json()) as { error?: Record<string, unknown> } };
}
