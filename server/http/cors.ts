// Which browser origins may call the API (yoga's `cors` option): only those the operator lists in
// ATELIER_CORS_ORIGINS. By default none, so only the control plane's own origin (the dashboards) can use it from a
// browser; a listed origin is answered with itself (never by reflecting whatever Origin a request sends), and `*`
// allows any origin but never with credentials.
import type { CORSOptions } from 'graphql-yoga';

/** Headers a browser may send on an API call from an allowed origin. */
const allowedHeaders = ['authorization', 'content-type', 'accept', 'graphql-require-preflight', 'x-atelier-delivery'];

export function corsFor(allowedOrigins: readonly string[]): (request: Request) => CORSOptions {
  const anyOrigin = allowedOrigins.includes('*');
  return (request) => {
    const origin = request.headers.get('origin');
    if (!origin) return false;
    if (anyOrigin) return { origin: '*', credentials: false, methods: ['GET', 'POST'], allowedHeaders, maxAge: 600 };
    // One listed origin answered with itself: useCORS sends `Vary: Origin` only for several, so name it here.
    if (!allowedOrigins.includes(origin)) return false;
    return { origin: [origin, origin], credentials: true, methods: ['GET', 'POST'], allowedHeaders, maxAge: 600 };
  };
}

/**
 * The CORS headers yoga would add for `origin`, for an answer the route writes itself (a request refused before yoga
 * reads it): without them a browser on an allowed origin sees a network error instead of the refusal.
 */
export function corsHeadersFor(allowedOrigins: readonly string[], origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  if (allowedOrigins.includes('*')) return { 'access-control-allow-origin': '*' };
  if (!allowedOrigins.includes(origin)) return {};
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
}
