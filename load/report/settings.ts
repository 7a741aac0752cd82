import { flatten, formatCount, formatMs } from './format.js';
import type { LoadReport } from './LoadReport.js';

/** A run's settings as [setting, value] rows: the options it ran with and where the harness ran. */
export function settingsOf(report: LoadReport): Array<[string, string]> {
  const o = report.options;
  const rows: Array<[string, string | undefined]> = [
    ['target', o.target === 'ws' ? 'ws (protocol v1 over WebSocket)' : 'openai-sse (POST /chat/completions, stream)'],
    ['URL', o.url],
    ['scenario', o.scenario],
    [
      'mix',
      o.scenario === 'mixed'
        ? Object.entries(o.mix)
            .map(([name, weight]) => `${name} ${weight}`)
            .join(', ')
        : undefined,
    ],
    ['connections', formatCount(o.connections)],
    ['ramp-up', `${formatCount(o.connectRate)} connections/s`],
    ['duration asked', formatMs(o.duration)],
    ['duration run', `${report.durationS} s (with up to 2 s of drain after the stop)`],
    [
      'pacing',
      o.rate === undefined ? `closed loop, ${formatMs(o.thinkMs)} think time` : `open loop, ${o.rate} requests/s`,
    ],
    ['turns per conversation', ['chat', 'bot', 'mixed'].includes(o.scenario) ? String(o.turns) : undefined],
    ['sessions per bot connection', o.scenario === 'bot' ? String(o.botSessions) : undefined],
    ['max tokens per answer', formatCount(o.maxTokens)],
    [
      'cancel or drop after',
      ['cancel', 'reconnect', 'mixed'].includes(o.scenario) ? `${o.cancelAfter} tokens` : undefined,
    ],
    ['model asked', o.model],
    ['seed', String(o.seed)],
    ['started', report.startedAt],
    ['harness', harnessOf(report)],
  ];
  return rows.filter((row): row is [string, string] => row[1] !== undefined);
}

/** What the server said about itself at the start: its `welcome`, `/readyz` and, for openai-sse, its models. */
export function serverRowsOf(report: LoadReport): Array<[string, string]> {
  const server = report.server;
  if (server === undefined) return [['recorded', 'no (a report from before the harness recorded the server)']];
  const rows: Array<[string, string]> = [['HTTP base', server.httpBase]];
  if (server.welcome !== undefined) {
    const { type: _type, connectionId: _connection, ...welcome } = server.welcome;
    rows.push(...flatten(welcome).map(([key, value]): [string, string] => [`welcome ${key}`, value]));
  }
  for (const [name, record] of [
    ['/readyz', server.readyz],
    ['/models', server.models],
  ] as const) {
    if (record === undefined) continue;
    rows.push([`${name} HTTP status`, String(record.status)]);
    const body = name === '/models' ? modelIds(record.body) : record.body;
    rows.push(...flatten(body).map(([key, value]): [string, string] => [`${name} ${key}`, value]));
  }
  rows.push(...server.problems.map((problem, index): [string, string] => [`not recorded (${index + 1})`, problem]));
  return rows;
}

function harnessOf(report: LoadReport): string | undefined {
  const h = report.harness;
  return h === undefined ? undefined : `Node ${h.node} on ${h.os}, ${h.cpus} CPUs (${h.cpuModel})`;
}

/** An OpenAI model list as its ids; anything else as it came. */
function modelIds(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('data' in body) || !Array.isArray(body.data)) return body;
  return { 'model ids': body.data.map((model: unknown) => (model as { id?: unknown }).id) };
}
