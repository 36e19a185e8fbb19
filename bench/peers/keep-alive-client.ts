// A GraphQL client for the benches that share a process with the control plane (S3): the same POST the tests' client
// (test/harness/client.ts) sends, method, path, headers and body, on one kept-alive socket, through node's own HTTP
// client rather than `fetch` (undici), whose request, headers, streams and abort signal cost S3's process ~1 ms of CPU
// a request (bench/peers/s3-profile.ts, profiled: docs/performance.md, session 35) on the core its control plane
// runs on. The request stays real: a socket, HTTP/1.1, the server's whole path.
import { post as postOnce } from '../../server/cli/http-post';

export interface KeepAliveClient {
  /** Runs an operation and returns its data, throwing with the errors when there are any (as the tests' `gql`). */
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** The raw answer: its status and text. */
  post(body: string): Promise<{ status: number; text: string }>;
}

export function keepAliveClient(baseUrl: string, token: string): KeepAliveClient {
  const url = new URL(`${baseUrl}/graphql`);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  // The CLI's POST (server/cli/http-post.ts): node:http on a kept-alive agent of its own, one socket while the bench
  // sends one request at a time.
  const post = (body: string) => postOnce(url, headers, body);
  return {
    post,
    async gql<T>(query: string, variables: Record<string, unknown> = {}) {
      const { status, text } = await post(JSON.stringify({ query, variables }));
      const result = JSON.parse(text) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
      if (result.errors?.length)
        throw Object.assign(new Error(result.errors.map((e) => `[${e.extensions?.code}] ${e.message}`).join('\n')), { result: { status, ...result } });
      return result.data!;
    },
  };
}
