// A Prometheus stand-in: it scrapes its targets every `scrapeMs` and answers instant queries of the HTTP API
// (`GET|POST /api/v1/query`) for a plain vector selector, `metric{label="v",label=~"re",label!="v",label!~"re"}`,
// as Prometheus does: the series of the last scrape whose labels match (a series gone from its target is stale at
// once, so it is not answered), each as `{ metric: { __name__, …labels }, value: [unix seconds, "value"] }` under
// `{ status: "success", data: { resultType: "vector", result } }`; anything else is `400` with
// `{ status: "error", errorType: "bad_data", error }`. Regex matchers are anchored at both ends (RE2 there, JS here:
// the same for the alternations and escapes a client sends). Followed: prometheus.io/docs/prometheus/latest/querying/api/
// and querying/basics/ ("Time series selectors", "Staleness").
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScrapedSeries {
  /** `__name__` and the labels. */
  labels: Record<string, string>;
  value: number;
}

export interface PrometheusStandIn {
  url: string;
  /** Queries answered so far (each the PromQL sent). */
  queries: string[];
  /** Scrapes the targets now (tests wait on this rather than on the scrape interval). */
  scrape(): void;
  /** Answers every request with 503 until `up` (Prometheus restarting). */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

type Matcher = { label: string; op: '=' | '!=' | '=~' | '!~'; value: string };

const SELECTOR = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$/s;
const MATCHER = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parse(query: string): { name: string; matchers: Matcher[] } {
  const m = SELECTOR.exec(query);
  if (!m) throw new Error(`parse error: only a vector selector is understood by this stand-in, not ${JSON.stringify(query)}`);
  const matchers: Matcher[] = [];
  const body = m[2] ?? '';
  MATCHER.lastIndex = 0;
  while (MATCHER.lastIndex < body.length) {
    const start = MATCHER.lastIndex;
    const x = MATCHER.exec(body);
    if (!x || x.index !== start) throw new Error(`parse error: unexpected ${JSON.stringify(body.slice(start))} in label matching`);
    matchers.push({ label: x[1]!, op: x[2] as Matcher['op'], value: x[3]!.replace(/\\(.)/g, '$1') });
  }
  return { name: m[1]!, matchers };
}

function matches(labels: Record<string, string>, m: Matcher): boolean {
  const v = labels[m.label] ?? '';
  if (m.op === '=') return v === m.value;
  if (m.op === '!=') return v !== m.value;
  const re = new RegExp(`^(?:${m.value})$`);
  return m.op === '=~' ? re.test(v) : !re.test(v);
}

export async function createPrometheusStandIn(options: {
  targets: () => ScrapedSeries[];
  scrapeMs?: number;
  bearerToken?: string;
}): Promise<PrometheusStandIn> {
  let latest: { at: number; series: ScrapedSeries[] } = { at: Date.now(), series: [] };
  let isDown = false;
  const queries: string[] = [];
  const scrape = () => {
    latest = { at: Date.now(), series: options.targets().map((s) => ({ labels: { ...s.labels }, value: s.value })) };
  };
  scrape();
  const timer = setInterval(scrape, options.scrapeMs ?? 15_000);

  const answer = (res: http.ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c));
    req.on('end', () => {
      if (isDown) return answer(res, 503, { status: 'error', errorType: 'unavailable', error: 'Service Unavailable' });
      if (options.bearerToken && req.headers.authorization !== `Bearer ${options.bearerToken}`) return res.writeHead(401).end('Unauthorized\n');
      const url = new URL(req.url ?? '/', 'http://prometheus');
      if (url.pathname !== '/api/v1/query') return answer(res, 404, { status: 'error', errorType: 'not_found', error: 'not found' });
      const params = req.method === 'POST' ? new URLSearchParams(raw) : url.searchParams;
      const query = params.get('query');
      if (!query) return answer(res, 400, { status: 'error', errorType: 'bad_data', error: 'invalid parameter "query": no query given' });
      queries.push(query);
      let selector: ReturnType<typeof parse>;
      try {
        selector = parse(query);
      } catch (err) {
        return answer(res, 400, { status: 'error', errorType: 'bad_data', error: (err as Error).message });
      }
      const at = latest.at / 1000;
      const result = latest.series
        .filter((s) => s.labels.__name__ === selector.name && selector.matchers.every((m) => matches(s.labels, m)))
        .map((s) => ({ metric: s.labels, value: [at, String(s.value)] }));
      answer(res, 200, { status: 'success', data: { resultType: 'vector', result } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queries,
    scrape,
    down: () => void (isDown = true),
    up: () => void (isDown = false),
    close: () => {
      clearInterval(timer);
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
