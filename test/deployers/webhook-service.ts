// "Another team's serving service" for the webhook deployer's tests: a real HTTP server that verifies every request's
// signature (plugins/webhook-signature.ts, as README "Webhooks" tells receivers), keeps deployments, revisions and
// splits in memory, answers its view of a deployment, and serves predictions itself, tagging each answer with the
// revision that served it (REVISION_HEADER), so the deployer contract counts splits over real requests. It can be
// told to fail: answer a status, hang, answer malformed, or go down altogether.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkSplit, DeployerError, PIN_REVISION_HEADER, REVISION_HEADER, type RevisionStatus } from '../../plugins/deployer-sdk';
import { webhookSignatureProblem } from '../../plugins/webhook-signature';

interface HeldRevision {
  number: number;
  ref: string;
  digest: string;
  health: RevisionStatus['health'];
  /** Status requests left before a STARTING revision turns READY. */
  startingFor: number;
}

interface HeldDeployment {
  /** The installation id its first apply carried (`deployment.installation`): the list call filters by it. */
  installation?: string;
  name?: string;
  revisions: Map<number, HeldRevision>;
  traffic: Record<number, number>;
}

export type Fault = { answer: number; body?: string } | { hang: true } | { malformed: unknown };

export interface ReceivedRequest {
  method: string;
  path: string;
  /** `Atelier-Webhook-Id`: the call's idempotency key. */
  id: string;
  body: Record<string, unknown> | null;
  /** Whether the signature verified. */
  verified: boolean;
}

export interface FakeServingService {
  url: string;
  /** The secrets it verifies with (change to rotate). */
  secrets: string[];
  received: ReceivedRequest[];
  /** Status requests a new revision stays STARTING for. */
  startingFor: number;
  /** Whether it answers the list call (`GET /deployments?installation=…`); a service without it answers 404. */
  listing: boolean;
  /** The next `count` requests (of `method`, to `path`, if given) meet `fault` instead of being handled. */
  inject(fault: Fault, count?: number, method?: 'GET' | 'POST', path?: string): void;
  /** Drops the faults not yet met: requests are handled again. */
  heal(): void;
  /** Revisions held over all deployments (the contract's `running`). */
  held(): number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

export async function startFakeServingService(secrets: string[]): Promise<FakeServingService> {
  const deployments = new Map<string, HeldDeployment>();
  /** Answers by request id: a retried call is answered as it was the first time, and applied once. */
  const answered = new Map<string, { status: number; body: unknown }>();
  const faults: { fault: Fault; method?: string; path?: string }[] = [];
  let server: Server;
  let port = 0;

  const view = (id: string, d: HeldDeployment) => ({
    ready: [...d.revisions.values()].every((r) => r.health === 'READY' || !d.traffic[r.number]) && Object.keys(d.traffic).length > 0,
    url: `${service.url}/serve/${encodeURIComponent(id)}/`,
    traffic: d.traffic,
    message: `serving ${Object.entries(d.traffic)
      .map(([n, pct]) => `revision ${n} at ${pct}%`)
      .join(', ')}`,
    revisions: [...d.revisions.values()]
      .sort((a, b) => a.number - b.number)
      .map((r) => ({ number: r.number, modelVersion: r.ref, health: r.health, restarts: 0, message: null })),
  });
  const statuses = (d: HeldDeployment): RevisionStatus[] =>
    [...d.revisions.values()].map((r) => ({ number: r.number, modelVersion: r.ref, health: r.health, restarts: 0, message: null }));

  function handleCall(id: string, action: string, body: Record<string, unknown>): { status: number; body: unknown } {
    const d = deployments.get(id);
    if (action === 'delete') {
      deployments.delete(id);
      return { status: 200, body: {} };
    }
    if (action === 'apply') {
      const rev = body.revision as { number: number; modelVersion: { ref: string; digest: string } };
      const sent = body.deployment as { installation?: string; name?: string };
      const held: HeldDeployment = d ?? { installation: sent.installation, name: sent.name, revisions: new Map(), traffic: {} };
      const had = held.revisions.get(rev.number);
      if (had && had.digest !== rev.modelVersion.digest)
        return { status: 409, body: { code: 'REVISION_CONFLICT', message: `revision ${rev.number} serves ${had.digest}, not ${rev.modelVersion.digest}` } };
      if (!had)
        held.revisions.set(rev.number, {
          number: rev.number,
          ref: rev.modelVersion.ref,
          digest: rev.modelVersion.digest,
          health: service.startingFor > 0 ? 'STARTING' : 'READY',
          startingFor: service.startingFor,
        });
      if (held.revisions.size === 1) held.traffic = { [rev.number]: 100 };
      deployments.set(id, held);
      return { status: 200, body: view(id, held) };
    }
    if (!d) return { status: 404, body: { code: 'UNKNOWN_DEPLOYMENT', message: `no deployment ${id} here` } };
    const split = action === 'rollback' ? { [body.toRevision as number]: 100 } : (body.split as Record<number, number>);
    if (action === 'rollback' && !d.revisions.has(body.toRevision as number))
      return { status: 400, body: { code: 'UNKNOWN_REVISION', message: `revision ${body.toRevision} was never applied` } };
    try {
      checkSplit(split, statuses(d));
    } catch (err) {
      if (err instanceof DeployerError) return { status: 400, body: { code: err.code, message: err.message } };
      throw err;
    }
    d.traffic = Object.fromEntries(Object.entries(split).filter(([, pct]) => pct > 0));
    return { status: 200, body: view(id, d) };
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const serving = /^\/serve\/([^/]+)\/predict$/.exec(path);
    if (serving) {
      const d = deployments.get(decodeURIComponent(serving[1]!));
      if (!d) return json(res, 404, { message: 'no such deployment' });
      const pinned = req.headers[PIN_REVISION_HEADER];
      let pick = typeof pinned === 'string' ? Number(pinned) : 0;
      if (!pick) {
        let roll = Math.random() * 100;
        for (const [n, pct] of Object.entries(d.traffic)) {
          pick = Number(n);
          roll -= pct;
          if (roll < 0) break;
        }
      }
      return json(res, 200, { class: 'setosa', revision: pick }, { [REVISION_HEADER]: String(pick) });
    }
    const problem = webhookSignatureProblem(service.secrets, req.headers, raw);
    let body: Record<string, unknown> | null = null;
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
    } catch {
      body = null;
    }
    service.received.push({ method: req.method ?? '', path, id: String(req.headers['atelier-webhook-id'] ?? ''), body, verified: !problem });
    if (problem) return json(res, 401, { message: problem });
    const fault = faults.findIndex((f) => (!f.method || f.method === req.method) && (!f.path || f.path === path));
    if (fault >= 0) {
      const [{ fault: f }] = faults.splice(fault, 1) as [{ fault: Fault }];
      if ('hang' in f) return; // never answers; the client's timeout ends it
      if ('malformed' in f) return json(res, 200, f.malformed);
      res.writeHead(f.answer, { 'content-type': 'application/json' });
      return res.end(f.body ?? JSON.stringify({ message: `injected HTTP ${f.answer}` }));
    }
    const status = /^\/deployments\/([^/]+)$/.exec(path);
    if (status && req.method === 'GET') {
      const id = decodeURIComponent(status[1]!);
      const d = deployments.get(id);
      if (!d) return json(res, 404, { code: 'UNKNOWN_DEPLOYMENT', message: `no deployment ${id} here` });
      for (const r of d.revisions.values()) if (r.health === 'STARTING' && --r.startingFor <= 0) r.health = 'READY';
      return json(res, 200, view(id, d));
    }
    if (path === '/deployments' && req.method === 'GET') {
      if (!service.listing) return json(res, 404, { message: `no route ${req.method} ${path}` });
      const installation = new URL(req.url ?? '/', 'http://x').searchParams.get('installation');
      const held = [...deployments].filter(([, d]) => installation && d.installation === installation);
      return json(res, 200, { deployments: held.map(([id, d]) => ({ id, ...(d.name ? { name: d.name } : {}) })) });
    }
    const call = /^\/deployments\/([^/]+)\/(apply|traffic|rollback|delete)$/.exec(path);
    if (!call || req.method !== 'POST' || !body) return json(res, 400, { message: `no route ${req.method} ${path}` });
    const requestId = String(req.headers['atelier-webhook-id']);
    if (body.requestId !== requestId) return json(res, 400, { message: 'requestId and Atelier-Webhook-Id differ' });
    const answer = answered.get(requestId) ?? handleCall(decodeURIComponent(call[1]!), call[2]!, body);
    answered.set(requestId, answer);
    return json(res, answer.status, answer.body);
  }

  async function listen() {
    server = createServer((req, res) => {
      handle(req, res).catch((err: Error) => json(res, 500, { message: err.message }));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  }
  await listen();

  const service: FakeServingService = {
    url: `http://127.0.0.1:${port}`,
    secrets,
    received: [],
    startingFor: 0,
    listing: true,
    inject: (fault, count = 1, method, path) => {
      for (let i = 0; i < count; i++) faults.push({ fault, method, path });
    },
    heal: () => {
      faults.length = 0;
    },
    held: () => [...deployments.values()].reduce((sum, d) => sum + d.revisions.size, 0),
    down: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    up: listen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return service;
}
