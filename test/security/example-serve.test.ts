// The iris example's model server (examples/iris/evaluate/serve.mjs), as users copy it for their own models: a body
// over its bound is answered 413 with what to do, never kept and never a cut connection (which the router counts as
// the model's failure, so a client's mistake could roll a canary back), and the server answers on afterwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

const serveScript = path.join(import.meta.dirname, '..', '..', 'examples', 'iris', 'evaluate', 'serve.mjs');
let dir: string;
let server: ChildProcess;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'atelier-iris-serve-'));
  const identity = [0, 1, 2].map((k) => [0, 1, 2, 3, 4].map((j) => (j === k ? 1 : 0)));
  await writeFile(
    path.join(dir, 'model.json'),
    JSON.stringify({
      classes: ['setosa', 'versicolor', 'virginica'],
      mean: [0, 0, 0, 0],
      std: [1, 1, 1, 1],
      weights: identity,
      featureNames: ['a', 'b', 'c', 'd'],
    }),
  );
  server = spawn(process.execPath, [serveScript], { cwd: dir, env: { ...process.env, PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (chunk) => {
      out += chunk;
      const port = /serving on 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      if (port) resolve(`http://127.0.0.1:${port}`);
    });
    server.once('exit', (code) => reject(new Error(`serve.mjs exited ${code}: ${out}`)));
  });
});

afterAll(async () => {
  server?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('answers a body over 1 MiB 413, declared or streamed, and serves on', async () => {
  const tooLarge = { status: 413, body: { error: 'the body is over 1048576 bytes: send fewer instances a request' } };
  const post = async (body: BodyInit) => {
    const res = await fetch(`${url}/v1/models/iris:predict`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    return { status: res.status, body: await res.json() };
  };
  expect(await post('x'.repeat(2 << 20))).toEqual(tooLarge);
  // No content-length: chunks past the bound are dropped as they come.
  const streamed = new ReadableStream({
    start(controller) {
      for (let i = 0; i < 40; i++) controller.enqueue(new Uint8Array(64 << 10));
      controller.close();
    },
  });
  expect(await post(streamed)).toEqual(tooLarge);
  expect(await post(JSON.stringify({ instances: [[5, 1, 1, 1]] }))).toEqual({ status: 200, body: { predictions: ['setosa'] } });
});
