// The CLI's GraphQL POSTs over node:http(s) instead of fetch. A CLI command is a short-lived process, and its first
// fetch costs ~0.3 s of CPU (undici set up, its HTTP parser compiled from WebAssembly, a vm context its web streams
// make for an error message): about half of all a command like `atelier run get` spends. node:http sends the same
// request for a few ms. Uploads (multipart) still go through fetch: a push is one request among much other work.
// node:http and node:https are loaded on the first request, not at start-up (~3.5 ms and ~2.5 ms of CPU to load):
// `--help`, a mistake's usage and local commands never send one, and most commands speak only one of the two.
import type { Agent } from 'node:http';

export interface PostAnswer {
  status: number;
  text: string;
}

// Kept alive between a command's requests (`run watch` polls), as fetch did; an idle socket keeps no process running.
const agents: { http?: Agent; https?: Agent } = {};

/** POSTs `body` to `url` (http: or https:), resolving with the status and the answer's text, rejecting when unreachable. */
export function post(url: URL, headers: Record<string, string>, body: string): Promise<PostAnswer> {
  const secure = url.protocol === 'https:';
  const transport = process.getBuiltinModule(secure ? 'node:https' : 'node:http');
  const scheme = secure ? 'https' : 'http';
  agents[scheme] ??= new transport.Agent({ keepAlive: true });
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: agents[scheme] },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
