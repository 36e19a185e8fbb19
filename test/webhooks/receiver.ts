// A real webhook receiver on 127.0.0.1 for the webhook tests: answers each path by a script (a list of statuses,
// the last one repeated, or a redirect), records every request with its raw body, and loads the README's verifier.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** What `path` answers, in order (the last one repeats): a status, or `{ redirect: URL }`. */
  script(path: string, answers: (number | { redirect: string })[]): void;
  at(path: string): Received[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const scripts = new Map<string, (number | { redirect: string })[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      received.push({ path: url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answers = scripts.get(url) ?? [200];
      const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
      if (typeof answer === 'object') {
        res.writeHead(307, { location: answer.redirect }).end();
        return;
      }
      res.writeHead(answer, { 'content-type': 'text/plain' }).end(`answer ${answer} ${'x'.repeat(3000)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script: (p, answers) => scripts.set(p, [...answers]),
    at: (p) => received.filter((r) => r.path === p),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive sockets would hold close() for seconds
      }),
  };
}

type Verify = (secret: string, headers: IncomingHttpHeaders, rawBody: string, now?: number) => { id: string; type: string; data: any } | null;

/** The verifier exactly as the README shows it (the `js` block after `<!-- webhook-verifier -->`), as a module. */
export async function readmeVerifier(): Promise<Verify> {
  const readme = await import('node:fs/promises').then((fs) =>
    fs.readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md'), 'utf8'),
  );
  const match = /<!-- webhook-verifier -->\s*```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no webhook verifier block');
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'atelier-verifier-')), 'verify.mjs');
  await writeFile(file, match[1]!);
  return (await import(file)).verifyWebhook as Verify;
}

export async function until<T>(read: () => Promise<T> | T, ok: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)?.slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
