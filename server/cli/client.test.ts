// The CLI's GraphQL client as a command runs it: its own short-lived Node process against a server on a free port.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';

const client = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'client.ts')).href;
const seen: { method?: string; authorization?: string; contentType?: string; body: string }[] = [];
let server: http.Server;
let url = '';

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    seen.push({ method: req.method, authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
    res.setHeader('content-type', 'application/graphql-response+json');
    res.end(JSON.stringify({ data: { hello: 'wörld' } }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Runs one request the way a command does, in a process of its own, and says which of Node's own modules it loaded. */
function requestInAProcess(): Promise<{ data: unknown; undiciLoaded: boolean }> {
  const script = `
    const { createClient } = await import(${JSON.stringify(client)});
    const data = await createClient({ url: process.argv[1], token: 'atl_test' }).request('query ($n: Int) { hello }', { n: 1 });
    console.log(JSON.stringify({ data, undiciLoaded: process.moduleLoadList.some((m) => m.includes('undici')) }));`;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, url], { timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    ),
  );
}

it('sends a command’s queries without loading fetch, whose first request costs a short-lived process ~0.3 s of CPU', async () => {
  const answer = await requestInAProcess();
  expect(answer.data).toEqual({ hello: 'wörld' });
  expect(seen.at(-1)).toEqual({
    method: 'POST',
    authorization: 'Bearer atl_test',
    contentType: 'application/json',
    body: JSON.stringify({ query: 'query ($n: Int) { hello }', variables: { n: 1 } }),
  });
  expect(answer.undiciLoaded).toBe(false);
});
