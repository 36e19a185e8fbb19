// Hostile input against a real server in its own process (issue 14, stalls 2–6): each one gets its typed error,
// changes nothing, and never stalls the server for others. While each is processed a second client polls
// `/health`; the worst latency seen is printed per case and must stay under a generous bound.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const token = 'atl_input-stalls-admin-token';
let pg: PostgresServer;
let cp: ControlPlaneProcess;
let dataDir: string;
let api: ReturnType<typeof apiClient>;
const worst: Record<string, number> = {};

beforeAll(async () => {
  pg = await startPostgres({ migrated: true });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-stalls-'));
  cp = await startControlPlaneProcess({
    PORT: String(await freePort()),
    DATABASE_URL: pg.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: token,
    ATELIER_TICK_MS: '200',
    ATELIER_MAX_UNPACKED_MB: '64',
  });
  api = apiClient(cp.url, token);
  await api.gql(`mutation { createTeam(name: "stall") { id } }`);
  await api.gql(`mutation { setTeamMember(team: "stall", identity: "admin") { id } }`);
  await api.gql(`mutation { assignNamespace(namespace: "stall", team: "stall") { id } }`);
}, 180_000);

afterAll(async () => {
  console.log(
    `worst /health latency per hostile input (goal 200 ms):\n${Object.entries(worst)
      .map(([name, ms]) => `  ${ms.toFixed(0).padStart(6)} ms  ${name}`)
      .join('\n')}`,
  );
  await cp?.kill();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/**
 * Runs `hostile` while polling `/health` back to back from this process (the server runs in its own), and checks
 * every answer came within the bound. The issue's goal is 200 ms and the worst latency is printed against it; the
 * assertion allows 2,000 ms because timing assertions on a loaded 2-core CI machine turn red for nothing.
 */
async function withoutStall<T>(name: string, hostile: () => Promise<T>): Promise<T> {
  let done = false;
  const latencies: number[] = [];
  const poll = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${cp.url}/health`, { signal: AbortSignal.timeout(120_000) });
      await res.text();
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    return await hostile();
  } finally {
    done = true;
    await poll;
    const max = Math.max(...latencies);
    worst[name] = max;
    console.log(`${name}: worst /health ${max.toFixed(0)} ms over ${latencies.length} polls`);
    expect(max, `${name}: /health answered in ${max.toFixed(0)} ms`).toBeLessThan(2_000);
  }
}

const codes = (r: { errors?: { extensions?: { code?: string } }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);
const text = (r: { errors?: { message: string; extensions?: { details?: { path?: string; message: string }[] } }[] }) => JSON.stringify(r.errors ?? []);

async function archiveOf(files: Record<string, string>): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-stall-module-'));
  try {
    for (const [name, body] of Object.entries(files)) await writeFile(path.join(dir, name), body);
    return await packDirectory(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const moduleFiles = (name: string, parameters: unknown) => ({
  'atelier.module.yaml': `${JSON.stringify({ namespace: 'stall', name, entrypoint: 'main.mjs', runtime: 'node', parameters })}\n`,
  'main.mjs': 'console.log("hi");\n',
});

const publish = async (files: Record<string, string>) => api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await archiveOf(files));
const versionsOf = async (name: string) => (await api.gql(`query ($n: String!) { module(name: $n) { versions { id } } }`, { n: name })).module?.versions ?? [];
const runCount = async () => (await api.gql(`{ runs(first: 100) { edges { node { id } } } }`)).runs.edges.length;
const teamNames = async () => (await api.gql(`{ teams { name } }`)).teams.map((t: { name: string }) => t.name).sort();

describe('ReDoS through a module’s parameter schema', () => {
  const parameters = {
    type: 'object',
    properties: {
      s: { type: 'string', pattern: '^(a|a)+$' },
      list: { type: 'array', items: { type: 'string', pattern: '^(x+x+)+y$' } },
      map: { type: 'object', patternProperties: { '^(b|b)+$': { type: 'integer' } }, propertyNames: { pattern: '^(c|c)+$|^(b|b)+$' } },
    },
  };

  beforeAll(async () => {
    const r = await publish(moduleFiles('redos', parameters));
    expect(r.errors).toBeUndefined();
    await api.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({
        name: 'redos',
        parameters: { s: { default: 'aa' }, list: { default: ['xxy'] }, map: { default: { bb: 1 } } },
        tasks: [{ name: 't', module: 'stall/redos', parameters: { s: '${params.s}', list: '${params.list}', map: '${params.map}' } }],
      }),
    });
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['pattern', { s: `${'a'.repeat(34)}!` }, /\bs\b/],
    ['items.pattern', { list: ['x'.repeat(34)] }, /list/],
    ['patternProperties and propertyNames', { map: { [`${'b'.repeat(34)}!`]: 1, [`${'c'.repeat(34)}!`]: 1 } }, /map/],
  ];
  for (const [name, hostile, where] of cases) {
    it(`refuses a startRun that fails a catastrophic ${name} in linear time`, async () => {
      const before = await runCount();
      const r = await withoutStall(`ReDoS: ${name}`, () =>
        api.raw(`mutation ($p: JSON) { startRun(workflow: "redos", parameters: $p) { id } }`, { p: hostile }),
      );
      // The caller's parameters are at fault, not the workflow: BAD_USER_INPUT, as for any parameter that does not fit.
      expect(codes(r)).toEqual(['BAD_USER_INPUT']);
      expect(text(r)).toMatch(where);
      expect(await runCount()).toBe(before);
    });
  }

  it('still matches what the patterns mean', async () => {
    const r = await api.raw(`mutation ($p: JSON) { startRun(workflow: "redos", parameters: $p) { id } }`, {
      p: { s: 'aaaa', list: ['xxxy'], map: { bbb: 2 } },
    });
    expect(r.errors).toBeUndefined();
  });

  it('refuses at publish a pattern a linear-time engine cannot run (backreference, lookaround), naming the field', async () => {
    for (const [schema, field] of [
      [{ type: 'object', properties: { s: { type: 'string', pattern: '^(a)\\1$' } } }, 'parameters.properties.s.pattern'],
      [{ type: 'object', properties: { s: { type: 'string', pattern: '^(?=a)a+$' } } }, 'parameters.properties.s.pattern'],
      [{ type: 'object', patternProperties: { '^(?<!x)y$': {} } }, 'parameters.patternProperties'],
      [{ type: 'object', propertyNames: { pattern: '(?!a)b' } }, 'parameters.propertyNames.pattern'],
    ] as const) {
      const r = await withoutStall('ReDoS: unsupported pattern at publish', () => publish(moduleFiles('lookaround', schema)));
      expect(codes(r)).toEqual(['INVALID_MANIFEST']);
      expect(r.errors?.[0]?.extensions?.details?.map((d) => d.path)).toContain(field);
    }
    expect(await versionsOf('stall/lookaround')).toEqual([]);
  });
});

describe('huge parameter schemas', () => {
  const wide = (n: number) => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, {}])) });
  const deep = (n: number) => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < n; i++) schema = { type: 'object', properties: { a: schema } };
    return schema;
  };
  const many = () => ({
    type: 'object',
    properties: Object.fromEntries(Array.from({ length: 180 }, (_, i) => [`p${i}`, { anyOf: Array.from({ length: 5 }, () => ({ type: 'string' })) }])),
  });
  /** 7,000 properties in under 64 KiB of manifest: keys of three characters. */
  const dense = () => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: 7_000 }, (_, i) => [(i + 1296).toString(36), {}])) });
  const cases: [string, unknown, string, RegExp][] = [
    ['25,000 properties (a 290 KB manifest)', wide(25_000), 'PAYLOAD_TOO_LARGE', /65,536 bytes/],
    ['7,000 properties in 63 KiB', dense(), 'INVALID_MANIFEST', /at most 200 properties/],
    ['nested 20 deep (40 levels)', deep(20), 'INVALID_MANIFEST', /32 levels/],
    ['2,160 schema nodes', many(), 'INVALID_MANIFEST', /at most 1,000/],
  ];
  for (const [name, schema, code, limit] of cases) {
    it(`refuses at publish a parameter schema with ${name}, naming the limit`, async () => {
      const files = moduleFiles('huge', schema);
      console.log(`${name}: manifest of ${files['atelier.module.yaml'].length} bytes`);
      const r = await withoutStall(`schema size: ${name}`, () => publish(files));
      expect(codes(r)).toEqual([code]);
      expect(r.errors?.[0]?.message).toMatch(limit);
      expect(await versionsOf('stall/huge')).toEqual([]);
    });
  }

  it('accepts a schema inside the limits', async () => {
    const r = await withoutStall('schema size: 190 properties', () => publish(moduleFiles('big-enough', wide(190))));
    expect(r.errors).toBeUndefined();
  });
});

/** A tar.gz whose entry `name` claims `size` bytes of zeros, streamed through gzip (never held inflated). */
async function gzipBomb(size: number, first: Record<string, string> = {}): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => gzip.on('end', resolve));
  const header = (name: string, bytes: number) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return h;
  };
  const write = (b: Buffer) => new Promise<void>((resolve) => (gzip.write(b) ? resolve() : gzip.once('drain', () => resolve())));
  for (const [name, body] of Object.entries(first)) {
    const bytes = Buffer.from(body);
    await write(header(name, bytes.length));
    await write(Buffer.concat([bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)]));
  }
  await write(header('zeros.bin', size));
  const zeros = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= zeros.length) await write(left >= zeros.length ? zeros : zeros.subarray(0, left));
  await write(Buffer.alloc(1024));
  gzip.end();
  await ended;
  return Buffer.concat(chunks);
}

async function memoryKb(field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${cp.pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

describe('gzip bombs', () => {
  it('refuses a 1 MiB archive that inflates to 1 GiB as it inflates, before the memory grows', async () => {
    const bomb = await gzipBomb(1024 ** 3, moduleFiles('bomb', { type: 'object' }));
    expect(bomb.length).toBeLessThan(2 * 1024 ** 2);
    const before = await memoryKb('VmRSS');
    const r = await withoutStall('gzip bomb (manifest, then 1 GiB of zeros)', () => api.upload(PUBLISH, {}, 'artifact', bomb));
    expect(codes(r)).toEqual(['PAYLOAD_TOO_LARGE']);
    expect(r.errors?.[0]?.message).toMatch(/ATELIER_MAX_UNPACKED_MB/);
    const grew = ((await memoryKb('VmHWM')) - before) / 1024;
    console.log(`gzip bomb: peak RSS grew by at most ${grew.toFixed(0)} MiB`);
    expect(grew).toBeLessThan(256);
    expect(await versionsOf('stall/bomb')).toEqual([]);
  });

  it('refuses a bomb with no manifest the same way', async () => {
    const r = await withoutStall('gzip bomb (no manifest)', async () => api.upload(PUBLISH, {}, 'artifact', await gzipBomb(256 * 1024 ** 2)));
    expect(codes(r)).toEqual(['PAYLOAD_TOO_LARGE']);
  });

  it('does not inflate a gzip-encoded GraphQL body', async () => {
    const body = await gzipBomb(256 * 1024 ** 2);
    const r = await withoutStall('gzip-encoded GraphQL body', () =>
      fetch(`${cp.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: `Bearer ${token}` },
        body: new Uint8Array(body),
      }),
    );
    expect(r.status).toBeGreaterThanOrEqual(400);
    await r.text();
  });
});

const nested = (levels: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
/** The same nesting as JSON text, built without recursion (JSON.stringify would overflow first). */
const nestedText = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

describe('deeply nested JSON', () => {
  beforeAll(async () => {
    expect((await publish(moduleFiles('plain', { type: 'object' }))).errors).toBeUndefined();
    await api.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({
        name: 'deep',
        parameters: { p: { default: 1 } },
        tasks: [{ name: 't', module: 'stall/plain', parameters: { p: '${params.p}' } }],
      }),
    });
  });

  const deepVariables = (query: string, variable: string, wrap = (deep: string) => `{"p": ${deep}}`) =>
    fetch(`${cp.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: `{"query": ${JSON.stringify(query)}, "variables": {"${variable}": ${wrap(nestedText(100_000))}}}`,
    }).then(async (res) => ({ status: res.status, ...(await res.json()) }));

  it('refuses run parameters nested 100,000 deep with BAD_USER_INPUT naming the argument and the limit', async () => {
    const before = await runCount();
    const r = await withoutStall('deep JSON: startRun parameters', () =>
      deepVariables(`mutation ($p: JSON) { startRun(workflow: "deep", parameters: $p) { id } }`, 'p'),
    );
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors[0].message).toMatch(/\$p\b/);
    expect(r.errors[0].message).toMatch(/64 levels/);
    expect(await runCount()).toBe(before);
  });

  it('refuses a deep dataset sample, a deep literal and deep JSON over graphql-ws', async () => {
    const sample = await withoutStall('deep JSON: dataset sample', () =>
      deepVariables(
        `mutation ($s: JSON) { createDataset(name: "stall/deep", domain: adhoc, columns: [{ name: "a", type: "int" }], digest: "sha256:${'0'.repeat(64)}", sample: $s) { id } }`,
        's',
        (deep) => `[{"a": ${deep}}]`,
      ),
    );
    expect(codes(sample)).toEqual(['BAD_USER_INPUT']);
    expect(sample.errors[0].message).toMatch(/64 levels/);
    expect((await api.gql(`{ dataset(name: "stall/deep") { id } }`)).dataset).toBeNull();

    const literal = await withoutStall('deep JSON: literal', () =>
      api.raw(`mutation { startRun(workflow: "deep", parameters: { p: ${nestedText(600)} }) { id } }`),
    );
    expect(codes(literal)).toEqual(['BAD_USER_INPUT']);
    expect(literal.errors?.[0]?.message).toMatch(/parameters/);
    expect(literal.errors?.[0]?.message).toMatch(/64 levels/);

    const ws = await withoutStall('deep JSON: graphql-ws', () =>
      api.subscribe(`mutation ($p: JSON) { startRun(workflow: "deep", parameters: $p) { id } }`, { p: { p: nested(1_000) } }).then(
        () => null,
        (e: { errors?: { message: string; extensions?: { code?: string } }[] }) => e.errors,
      ),
    );
    expect(ws?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(ws?.[0]?.message).toMatch(/64 levels/);
  });

  it('refuses a deep workflow spec and a deep git hook body', async () => {
    const spec = await withoutStall('deep JSON: workflow spec text', () =>
      api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
        spec: `{"name": "deep-spec", "tasks": [{"name": "t", "module": "stall/plain", "parameters": {"s": ${nestedText(100_000)}}}]}`,
      }),
    );
    expect(codes(spec)).toEqual(['INVALID_WORKFLOW']);
    expect(text(spec)).toMatch(/64 levels/);
    expect((await api.gql(`{ workflow(name: "deep-spec") { id } }`)).workflow).toBeNull();

    const yamlSpec = await withoutStall('deep JSON: workflow spec YAML', () =>
      api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
        spec: `name: deep-yaml\ntasks:\n  - name: t\n    module: stall/plain\n    parameters: { s: ${nestedText(20_000)} }\n`,
      }),
    );
    expect(codes(yamlSpec)).toEqual(['INVALID_WORKFLOW']);
    expect(text(yamlSpec)).toMatch(/64 levels/);

    const hook = await withoutStall('deep JSON: git hook body', () =>
      fetch(`${cp.url}/hooks/git`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-atelier-delivery': randomUUID() },
        body: `{"repository": "x", "commit": "abc", "extra": ${nestedText(200_000)}}`,
      }).then(async (res) => ({ status: res.status, ...(await res.json()) })),
    );
    expect(hook.status).toBe(400);
    expect(hook.error.code).toBe('BAD_USER_INPUT');
    expect(hook.error.message).toMatch(/64 levels/);
  });

  it('refuses a manifest nested deeper than the limit', async () => {
    const r = await withoutStall('deep JSON: manifest YAML', () =>
      publish({
        'atelier.module.yaml': `namespace: stall\nname: deep\nentrypoint: main.mjs\nruntime: node\nparameters: ${nestedText(30_000)}\n`,
        'main.mjs': '',
      }),
    );
    expect(codes(r)).toEqual(['INVALID_MANIFEST']);
    expect(r.errors?.[0]?.message).toMatch(/levels/);
    expect(await versionsOf('stall/deep')).toEqual([]);
  });
});

describe('NUL bytes', () => {
  const nul = 'a\u0000b';

  it('refuses a NUL in a String argument (variable) with BAD_USER_INPUT naming it, and changes nothing', async () => {
    const before = await teamNames();
    const r = await withoutStall('NUL: variable', () => api.raw(`mutation ($n: String!) { createTeam(name: $n) { id } }`, { n: nul }));
    expect(codes(r)).toEqual(['BAD_USER_INPUT']);
    expect(r.errors?.[0]?.message).toMatch(/\$n/);
    expect(r.errors?.[0]?.message).toMatch(/NUL/);
    expect(await teamNames()).toEqual(before);
  });

  it('refuses a NUL in a literal, an ID, a JSON value, a JSON key and an input object field', async () => {
    const before = { teams: await teamNames(), runs: await runCount() };
    const cases: [string, Promise<{ errors?: { message: string; extensions?: { code?: string } }[] }>, RegExp][] = [
      ['literal', api.raw(`mutation { createTeam(name: "a\\u0000b") { id } }`), /"name"/],
      // The same document again: its refusal is remembered per parsed document (server/http/input-guard.ts).
      ['literal, sent again', api.raw(`mutation { createTeam(name: "a\\u0000b") { id } }`), /"name"/],
      ['ID', api.raw(`query ($id: ID!) { run(id: $id) { id } }`, { id: nul }), /\$id/],
      ['JSON value', api.raw(`mutation ($p: JSON) { startRun(workflow: "deep", parameters: $p) { id } }`, { p: { p: [nul] } }), /\$p\.p\.0/],
      ['JSON key', api.raw(`mutation ($p: JSON) { startRun(workflow: "deep", parameters: $p) { id } }`, { p: { [nul]: 1 } }), /\$p/],
      [
        'input object field',
        api.raw(
          `mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "stall/nul", domain: adhoc, columns: $c, digest: "sha256:${'0'.repeat(64)}") { id } }`,
          { c: [{ name: nul, type: 'int' }] },
        ),
        /\$c\.0\.name/,
      ],
      ['literal inside an input object', api.raw(`mutation { startRun(workflow: "deep", parameters: { p: ["x", "\\u0000"] }) { id } }`), /parameters/],
    ];
    for (const [name, request, where] of cases) {
      const r = await withoutStall(`NUL: ${name}`, () => request);
      expect(codes(r), name).toEqual(['BAD_USER_INPUT']);
      expect(r.errors?.[0]?.message, name).toMatch(where);
    }
    expect({ teams: await teamNames(), runs: await runCount() }).toEqual(before);
    expect((await api.gql(`{ dataset(name: "stall/nul") { id } }`)).dataset).toBeNull();
  });

  it('refuses a NUL over graphql-ws and SSE alike', async () => {
    const ws = await withoutStall('NUL: graphql-ws', () =>
      api.subscribe(`subscription ($r: ID!) { runEvents(runId: $r) { __typename } }`, { r: nul }).then(
        () => null,
        (e: { errors?: { message: string; extensions?: { code?: string } }[] }) => e.errors,
      ),
    );
    expect(ws?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(ws?.[0]?.message).toMatch(/\$r/);

    const sse = await withoutStall('NUL: SSE', async () => {
      const res = await fetch(`${cp.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'subscription ($r: ID!) { runEvents(runId: $r) { __typename } }', variables: { r: nul } }),
        signal: AbortSignal.timeout(10_000),
      });
      return res.text();
    });
    expect(sse).toMatch(/BAD_USER_INPUT/);
    expect(sse).toMatch(/\$r/);
  });
});

describe('large YAML', () => {
  // ~7 ms a KiB on the event loop before: a 128 KiB spec held /health for ~0.9 s, a 64 KiB manifest ~0.45 s.
  const yamlList = (key: string, bytes: number) => {
    const lines = [`${key}:`];
    for (let i = 0, size = 0; size < bytes; i++) {
      const line = `  p${i}: { default: "value ${i}", description: "parameter number ${i}" }`;
      lines.push(line);
      size += line.length + 1;
    }
    return lines.join('\n');
  };

  it('parses a 127 KiB YAML workflow spec without stalling the server', async () => {
    const spec = `name: big-yaml\n${yamlList('parameters', 126 * 1024)}\ntasks:\n  - name: t\n    module: stall/nowhere\n`;
    const r = await withoutStall('127 KiB YAML spec', () => api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, { spec }));
    // Parsed in full: the answer is about the spec's content (its unknown module), not its size or syntax.
    expect(text(r)).toContain('stall/nowhere');
  });

  it('parses a 60 KiB YAML manifest without stalling the server', async () => {
    const manifest = `namespace: stall\nname: big-manifest\nentrypoint: main.mjs\nruntime: node\ndescription: big\nmetadata:\n${yamlList('  labels', 56 * 1024).replace(/^/gm, '  ')}\n`;
    const r = await withoutStall('60 KiB YAML manifest', () => publish({ 'atelier.module.yaml': manifest, 'main.mjs': 'console.log(1);\n' }));
    expect(codes(r)).toEqual(['INVALID_MANIFEST']);
    expect(text(r)).toContain('metadata');
  });
});
