// Uploads as an attacker sends them: an upload is held whole in memory while it is read, so who may make the server
// hold one, and how many at once, bounds its memory. A GraphQL upload without a live token is refused before its
// body is read (yoga read the whole multipart body before its context asked for the token: anyone could fill the
// memory with uploads of ATELIER_MAX_UPLOAD_MB each), and the uploads in progress share one budget: past it, a new
// one (GraphQL or an MLflow artifact) is answered 503 with Retry-After, and once those end uploads are taken again.
import { type ClientRequest, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH } from '../harness/client';

let t: TestApp;
// Budget: 4 uploads at the limit (1 MiB, plus the envelope's MiB).
beforeAll(async () => {
  t = await startTestApp({ ATELIER_MAX_UPLOAD_MB: '1' });
}, 60_000);
afterAll(async () => t?.stop());

const boundary = 'upload-budget-boundary';
const head = Buffer.from(
  `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: PUBLISH, variables: { artifact: null } })}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${JSON.stringify({ 0: ['variables.artifact'] })}\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="m.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
);
const tail = Buffer.from(`\r\n--${boundary}--\r\n`);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A multipart upload whose head is sent at once and whose rest is left to the caller; `answer` settles on the response. */
function openUpload(token: string | null, headers: Record<string, string> = {}): { req: ClientRequest; answer: Promise<Answer> } {
  const url = new URL(`${t.url}/graphql`);
  let req!: ClientRequest;
  const answer = new Promise<Answer>((resolve) => {
    req = request(
      {
        host: url.hostname,
        port: url.port,
        path: '/graphql',
        method: 'POST',
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          'graphql-require-preflight': '1',
          'content-type': `multipart/form-data; boundary=${boundary}`,
          ...headers,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
  });
  req.on('error', () => undefined); // the server may close the connection before all was sent
  req.write(head);
  return { req, answer };
}

/** The answer, or 'no answer yet' when none came within `ms` (the body still being sent). */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'no answer yet'>((r) => setTimeout(() => r('no answer yet'), ms))]);
const code = (a: Answer | string) => (typeof a === 'string' ? a : JSON.parse(a.body).errors?.[0]?.extensions?.code);

describe('a GraphQL upload without a live token', () => {
  it('is refused with 401 UNAUTHENTICATED before its body is read', async () => {
    for (const token of [null, 'not-a-live-token']) {
      const { req, answer } = openUpload(token); // 1 MB promised, only the head sent
      req.write(Buffer.alloc(64 * 1024, 1));
      const got = await within(answer, 10_000);
      req.destroy();
      expect(typeof got === 'string' ? got : [got.status, code(got)], `token ${token}`).toEqual([401, 'UNAUTHENTICATED']);
    }
  });
});

describe('a GraphQL upload by a token that may not publish modules (a viewer’s)', () => {
  it('is refused with 403 FORBIDDEN before its body is read, holding none of the budget', async () => {
    const viewer = (await t.user('upload-viewer', 'viewer')).token;
    // More than the budget holds (four at the limit), each chunked and never finished.
    const uploads = Array.from({ length: 6 }, () => openUpload(viewer));
    const got = await Promise.all(uploads.map(({ answer }) => within(answer, 10_000)));
    for (const { req } of uploads) req.destroy();
    expect(got.map((a) => (typeof a === 'string' ? a : [a.status, code(a)]))).toEqual(Array(6).fill([403, 'FORBIDDEN']));
    expect(JSON.parse((got[0] as Answer).body).errors[0].message).toContain('You may not upload (publish) modules');
  });
});

describe('uploads in progress', () => {
  it('share one budget: past it a new one is refused with 503 and Retry-After, and taken again once they end', async () => {
    // Chunked, so each reserves the whole limit: four fill the budget.
    const held = [0, 1, 2, 3].map(() => openUpload(t.app.adminToken));
    const small = Buffer.alloc(1024, 1);
    const probe = async () => {
      const { req, answer } = openUpload(t.app.adminToken, { 'content-length': String(head.length + small.length + tail.length) });
      req.end(Buffer.concat([small, tail]));
      return answer;
    };
    // The held ones are reserved once their tokens are checked: probe until the server has them.
    let refused: Answer | undefined;
    for (let i = 0; i < 50 && !refused; i++) {
      const a = await probe();
      if (a.status === 503) refused = a;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused, 'an upload past the budget was taken').toBeDefined();
    expect(code(refused!)).toBe('TOO_MANY_UPLOADS');
    expect(refused!.headers['retry-after']).toBe('5');

    // An MLflow artifact shares it.
    const exp = await mlflow('experiments/create', { name: 'upload-budget' });
    const run = (await mlflow('runs/create', { experiment_id: exp.experiment_id })).run.info.run_id as string;
    const put = () =>
      fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp.experiment_id}/${run}/artifacts/w.bin`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${t.app.adminToken}` },
        body: small,
      });
    const artifact = await put();
    expect([artifact.status, ((await artifact.json()) as any).error_code]).toEqual([503, 'TEMPORARILY_UNAVAILABLE']);
    expect(artifact.headers.get('retry-after')).toBe('5');

    for (const h of held) h.req.destroy();
    let after: Answer | undefined;
    for (let i = 0; i < 50; i++) {
      after = await probe();
      if (after.status !== 503) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after!.status, after!.body).not.toBe(503); // read (the archive itself is what is refused)
    expect((await put()).status).toBe(200);
  }, 60_000);
});

async function mlflow(path: string, body: unknown) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.json()) as any;
}

describe('a GraphQL request (not an upload) without a live token', () => {
  it('is refused with 401 UNAUTHENTICATED before its body is all in (not held until it is)', async () => {
    const url = new URL(`${t.url}/graphql`);
    for (const token of [null, 'not-a-live-token']) {
      let req!: ClientRequest;
      const answer = new Promise<number>((resolve) => {
        req = request(
          {
            host: url.hostname,
            port: url.port,
            path: '/graphql',
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': String(4 * 1024 * 1024), ...(token ? { authorization: `Bearer ${token}` } : {}) },
          },
          (res) => resolve(res.statusCode!),
        );
      });
      req.on('error', () => undefined);
      req.write(`{"query":"{ __typename }","variables":{"pad":"${'x'.repeat(64 * 1024)}`); // 4 MB promised, 64 KiB sent
      const got = await within(answer, 10_000);
      req.destroy();
      expect(got, `token ${token}`).toBe(401);
    }
  });
});

describe('a GraphQL upload of thousands of parts', () => {
  it('is refused at its 109th part (operations, map and up to 100 files), not parsed whole', async () => {
    for (const kind of ['field', 'file'] as const) {
      const parts = Array.from({ length: 5_000 }, (_, i) =>
        kind === 'field'
          ? `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nx\r\n`
          : `--${boundary}\r\nContent-Disposition: form-data; name="${i + 1}"; filename="f"\r\n\r\nx\r\n`,
      ).join('');
      const body = Buffer.concat([head, Buffer.from('x\r\n'), Buffer.from(parts), tail]);
      const { req, answer } = openUpload(t.app.adminToken, { 'content-length': String(head.length + body.length - head.length) });
      req.end(body.subarray(head.length));
      const got = await answer;
      expect([got.status, code(got)], `${kind}s: ${got.body}`).toEqual([400, 'BAD_REQUEST']);
      expect(JSON.parse(got.body).errors[0].message).toMatch(/(Fields|Files|Parts) limit exceeded/);
    }
  });

  it('of a few files is still taken', async () => {
    await t.publishFixture('echo');
  });
});

it('a refusal the route writes itself carries the CORS headers of an allowed origin (a browser can read it)', async () => {
  const app = await startTestApp({ ATELIER_CORS_ORIGINS: 'https://ui.example' });
  try {
    for (const [origin, allowed] of [
      ['https://ui.example', 'https://ui.example'],
      ['https://evil.example', null],
    ] as const) {
      const res = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', authorization: 'Bearer not-a-live-token' },
        body: '{"query":"{ __typename }"}',
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('access-control-allow-origin')).toBe(allowed);
    }
  } finally {
    await app.stop();
  }
});

it('an MLflow artifact upload abandoned part-way gives its share back (the budget does not leak)', async () => {
  const exp = await mlflow('experiments/create', { name: 'upload-budget-abandoned' });
  const run = (await mlflow('runs/create', { experiment_id: exp.experiment_id })).run.info.run_id as string;
  const url = new URL(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp.experiment_id}/${run}/artifacts/w.bin`);
  // Ten times 1 MiB declared (the budget holds eight), each abandoned after its first KiB.
  for (let i = 0; i < 10; i++) {
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'PUT',
      headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-length': String(1024 * 1024) },
    });
    req.on('error', () => undefined);
    req.on('response', (res) => res.resume());
    req.write(Buffer.alloc(1024, 1));
    await new Promise((r) => setTimeout(r, 50));
    req.destroy();
  }
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${t.app.adminToken}` }, body: Buffer.alloc(1024 * 1024, 2) });
    status = res.status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  expect(status).toBe(200);
}, 60_000);

it('an MLflow artifact upload the token may not make is refused before its body is read, holding none of the budget', async () => {
  const exp = await mlflow('experiments/create', { name: 'upload-budget-refused' });
  const run = (await mlflow('runs/create', { experiment_id: exp.experiment_id })).run.info.run_id as string;
  const viewer = (await t.user('budget-viewer', 'viewer')).token;
  const url = new URL(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp.experiment_id}/${run}/artifacts/w.bin`);
  // A viewer's uploads, 1 MiB declared and never sent: each answered at once, while its body is still to come.
  const answers = await Promise.all(
    Array.from({ length: 6 }, () => {
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'PUT',
        headers: { authorization: `Bearer ${viewer}`, 'content-length': String(1024 * 1024) },
      });
      req.on('error', () => undefined);
      req.flushHeaders();
      return new Promise<{ status: number; code: string; req: ClientRequest }>((resolve) =>
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(body).error_code, req }));
        }),
      );
    }),
  );
  expect(answers.map((a) => [a.status, a.code])).toEqual(Array(6).fill([403, 'PERMISSION_DENIED']));
  // The owner's upload is taken at once: the refused ones held no share.
  const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${t.app.adminToken}` }, body: Buffer.alloc(1024, 3) });
  expect(res.status).toBe(200);
  for (const a of answers) a.req.destroy();
}, 60_000);

it('a POST /api/observations by a token that may not write observations is refused before its body is read', async () => {
  // A viewer's batch, 8 MB declared and never sent: answered at once, not after the server read and parsed it all.
  const viewer = (await t.user('observations-viewer', 'viewer')).token;
  const url = new URL(`${t.url}/api/observations`);
  const req = request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json', 'content-length': String(8 * 1024 * 1024 - 1) },
  });
  req.on('error', () => undefined);
  req.write('{"observations": [');
  const answer = new Promise<{ status: number; code: string }>((resolve) =>
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(body).error?.code }));
    }),
  );
  const got = await within(answer, 10_000);
  req.destroy();
  expect(got).toEqual({ status: 403, code: 'FORBIDDEN' });
});

it('an MLflow write by a token that may change nothing is refused before its JSON body (up to 1 MB) is read', async () => {
  // A viewer's, and an admin's token scoped to reading: 1 MB declared and never sent, answered at once from the token.
  const viewer = (await t.user('mlflow-body-viewer', 'viewer')).token;
  const readOnly = (await t.api.gql(`mutation { createServiceAccount(name: "mlflow-body-reader", scopes: ["read:*"]) { token } }`)).createServiceAccount.token;
  const post = (token: string, path: string) => {
    const url = new URL(`${t.url}/api/2.0/mlflow/${path}`);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: path.endsWith('update') ? 'PATCH' : 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(1024 * 1024 - 1) },
    });
    req.on('error', () => undefined);
    req.write('{"metrics": [');
    const answer = new Promise<{ status: number; code: string }>((resolve) =>
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, code: JSON.parse(body).error_code }));
      }),
    );
    return { req, answer };
  };
  for (const token of [viewer, readOnly])
    for (const path of ['runs/log-batch', 'experiments/create', 'registered-models/create', 'model-versions/update', 'logged-models']) {
      const { req, answer } = post(token, path);
      const got = await within(answer, 10_000);
      req.destroy();
      expect(got, path).toEqual({ status: 403, code: 'PERMISSION_DENIED' });
    }
  // Reads that take a JSON body (searches) are still read for them.
  const search = await fetch(`${t.url}/api/2.0/mlflow/runs/search`, {
    method: 'POST',
    headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ experiment_ids: ['0'] }),
  });
  expect(search.status).toBe(200);
});
