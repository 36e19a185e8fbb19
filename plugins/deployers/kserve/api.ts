// The kserve deployer's way to the Kubernetes API: plain JSON requests for serving.kserve.io/v1beta1
// InferenceServices (GET, LIST by label, POST, PUT, merge and JSON PATCH, DELETE), credentials applied by
// @kubernetes/client-node's KubeConfig, and the API server's `Status` objects turned into one error type.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export const GROUP_VERSION = 'serving.kserve.io/v1beta1';

// biome-ignore lint/suspicious/noExplicitAny: InferenceServices are read as the API server sends them.
export type InferenceService = Record<string, any>;

/** A failed API call: the HTTP status, the `Status` object's reason and message. */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeError';
  }
}

export interface InferenceServiceApi {
  get(namespace: string, name: string): Promise<InferenceService | null>;
  /** Lists across all namespaces (or one) by label selector. */
  list(labelSelector: string, namespace?: string): Promise<InferenceService[]>;
  create(namespace: string, body: InferenceService): Promise<InferenceService>;
  replace(namespace: string, name: string, body: InferenceService): Promise<InferenceService>;
  patch(namespace: string, name: string, type: 'merge' | 'json', patch: unknown): Promise<InferenceService>;
  /** True when it was deleted, false when it was not there. */
  delete(namespace: string, name: string): Promise<boolean>;
}

export function createInferenceServiceApi(kubeConfig: () => KubeConfig, timeoutMs: number): InferenceServiceApi {
  const base = (namespace?: string) =>
    `/apis/${GROUP_VERSION}${namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`}/inferenceservices`;

  async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<InferenceService> {
    const kc = kubeConfig();
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeError(0, 'NoCluster', 'the kubeconfig names no current cluster: set its current-context');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          ...opts,
          method,
          timeout: timeoutMs,
          headers: {
            ...opts.headers,
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': String(Buffer.byteLength(payload)) } : {}),
          },
        },
        resolve,
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the Kubernetes API in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: InferenceService | undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300 && parsed) return parsed;
    if (status >= 200 && status < 300) throw new KubeError(status, 'Malformed', `${method} ${path}: the answer is not JSON`);
    throw new KubeError(status, parsed?.reason ?? 'Unknown', parsed?.message ?? `${method} ${path}: HTTP ${status} ${text.slice(0, 200)}`);
  }

  return {
    async get(namespace, name) {
      try {
        return await call('GET', `${base(namespace)}/${encodeURIComponent(name)}`);
      } catch (err) {
        if (err instanceof KubeError && err.status === 404 && err.reason === 'NotFound' && !/namespaces? "/.test(err.message)) return null;
        throw err;
      }
    },
    async list(labelSelector, namespace) {
      const list = await call('GET', `${base(namespace)}?labelSelector=${encodeURIComponent(labelSelector)}`);
      return (list.items ?? []) as InferenceService[];
    },
    create: (namespace, body) => call('POST', base(namespace), body),
    replace: (namespace, name, body) => call('PUT', `${base(namespace)}/${encodeURIComponent(name)}`, body),
    patch: (namespace, name, type, patch) =>
      call('PATCH', `${base(namespace)}/${encodeURIComponent(name)}`, patch, type === 'merge' ? 'application/merge-patch+json' : 'application/json-patch+json'),
    async delete(namespace, name) {
      try {
        await call('DELETE', `${base(namespace)}/${encodeURIComponent(name)}`, { propagationPolicy: 'Foreground' });
        return true;
      } catch (err) {
        if (err instanceof KubeError && err.status === 404) return false;
        throw err;
      }
    },
  };
}
