// The request-size limit for the bodies yoga reads itself, skipped for those the route read whole (issue 21, S3's CPU):
// a real yoga over a one-field schema, requests through its fetch as the route and the node adapter hand them in.
import { createSchema, createYoga } from 'graphql-yoga';
import { expect, it } from 'vitest';
import { useBodyLimit } from './body-limit';

const yoga = createYoga<{ bodyRead?: boolean }>({
  schema: createSchema({ typeDefs: 'type Query { ok: Boolean }', resolvers: { Query: { ok: () => true } } }),
  maxRequestBodySize: false,
  plugins: [useBodyLimit(100)],
  logging: false,
});

const body = (padding: number) => JSON.stringify({ query: '{ ok }', variables: { pad: 'x'.repeat(padding) } });
const streamed = (text: string) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      // In two chunks, as a chunked upload comes: only their sum is over the limit.
      const bytes = new TextEncoder().encode(text);
      controller.enqueue(bytes.slice(0, 60));
      controller.enqueue(bytes.slice(60));
      controller.close();
    },
  });
const post = (init: { body: BodyInit; length?: string }, serverContext: { bodyRead?: boolean } = {}) =>
  yoga.fetch(
    'http://localhost/graphql',
    {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(init.length ? { 'content-length': init.length } : {}) },
      body: init.body,
      duplex: 'half',
    } as RequestInit,
    serverContext,
  );

it('answers a body within the limit, streamed or whole', async () => {
  expect((await post({ body: streamed(body(10)) })).status).toBe(200);
  expect(await (await post({ body: body(10) })).json()).toEqual({ data: { ok: true } });
});

it('refuses a streamed body that grows past the limit, and a declared length over it or not a number', async () => {
  const grown = await post({ body: streamed(body(200)) });
  expect(grown.status).toBe(413);
  expect(await grown.json()).toMatchObject({ errors: [{ extensions: { code: 'REQUEST_ENTITY_TOO_LARGE' } }] });
  expect((await post({ body: body(10), length: '5000' })).status).toBe(413);
  expect((await post({ body: body(10), length: '12, 12' })).status).toBe(400);
});

it("leaves a body the route has read whole and checked to the route's own limit", async () => {
  expect(await (await post({ body: streamed(body(200)) }, { bodyRead: true })).json()).toEqual({ data: { ok: true } });
});
