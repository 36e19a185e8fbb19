// Which object store holds module archives and outputs (`ATELIER_OBJECT_STORE`), read from the environment once.
// Replicas must share one: `local` is one machine's directory, `s3` and `nats` are shared.
import path from 'node:path';
import { DEFAULT_DOWNLOAD_RETRY_MS, DEFAULT_NATS_OBJECT_BUCKET, DEFAULT_OBJECT_STORE } from './defaults';

export type ObjectStoreConfig =
  | { backend: 'local'; dir: string }
  | { backend: 's3'; bucket: string; prefix: string; endpoint?: string; region: string; forcePathStyle: boolean }
  | { backend: 'nats'; url: string; bucket: string; replicas: number };

const backends = ['local', 's3', 'nats'] as const;

/** Throws `fail(message)` with a message that says what to set. */
export function parseObjectStore(env: NodeJS.ProcessEnv, dataDir: string, natsUrl: string | undefined, fail: (message: string) => Error): ObjectStoreConfig {
  const backend = (env.ATELIER_OBJECT_STORE || DEFAULT_OBJECT_STORE).trim().toLowerCase();
  if (!(backends as readonly string[]).includes(backend)) {
    throw fail(
      `ATELIER_OBJECT_STORE must be local, s3 or nats (got "${env.ATELIER_OBJECT_STORE}"): local keeps objects in $ATELIER_DATA_DIR/objects on this machine; replicas need s3 or nats.`,
    );
  }
  if (backend === 's3') {
    const bucket = env.ATELIER_S3_BUCKET?.trim();
    if (!bucket) throw fail('ATELIER_OBJECT_STORE=s3 needs ATELIER_S3_BUCKET: the bucket every replica shares (it must exist).');
    const endpoint = env.ATELIER_S3_ENDPOINT?.trim() || undefined;
    if (endpoint && !/^https?:\/\/[^/\s]+/.test(endpoint)) {
      throw fail(`ATELIER_S3_ENDPOINT must be an http(s):// URL of an S3-compatible server (got "${endpoint}"); unset it for AWS S3.`);
    }
    const forcePathStyle = env.ATELIER_S3_FORCE_PATH_STYLE?.trim().toLowerCase() ?? '';
    if (!['', '1', '0', 'true', 'false'].includes(forcePathStyle)) {
      throw fail(`ATELIER_S3_FORCE_PATH_STYLE must be true or false (got "${env.ATELIER_S3_FORCE_PATH_STYLE}"); most S3-compatible servers need true.`);
    }
    return {
      backend,
      bucket,
      prefix: env.ATELIER_S3_PREFIX?.trim() ?? '',
      endpoint,
      region: env.ATELIER_S3_REGION?.trim() || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      // Path-style by default with a custom endpoint (MinIO and most stand-ins), virtual-hosted for AWS.
      forcePathStyle: forcePathStyle === '' ? Boolean(endpoint) : forcePathStyle === '1' || forcePathStyle === 'true',
    };
  }
  if (backend === 'nats') {
    if (!natsUrl) throw fail('ATELIER_OBJECT_STORE=nats keeps objects in the JetStream object store of NATS_URL: set NATS_URL (e.g. nats://127.0.0.1:4222).');
    const bucket = env.ATELIER_NATS_OBJECT_BUCKET?.trim() || DEFAULT_NATS_OBJECT_BUCKET;
    if (!/^[A-Za-z0-9_-]+$/.test(bucket)) throw fail(`ATELIER_NATS_OBJECT_BUCKET may hold letters, digits, - and _ only (got "${bucket}").`);
    const replicas = Number(env.ATELIER_NATS_OBJECT_REPLICAS || 1);
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
      throw fail(`ATELIER_NATS_OBJECT_REPLICAS must be 1 to 5 (got "${env.ATELIER_NATS_OBJECT_REPLICAS}"): the copies a NATS cluster keeps of each object.`);
    }
    return { backend, url: natsUrl, bucket, replicas };
  }
  // Replicas on one machine (or one shared filesystem) may share a directory; the data dir's `objects` otherwise.
  return { backend: 'local', dir: path.resolve(env.ATELIER_OBJECTS_DIR || path.join(dataDir, 'objects')) };
}

/** How long a module or input download keeps retrying a control plane that cannot be reached or answers 5xx. */
export function parseDownloadRetryMs(env: NodeJS.ProcessEnv, fail: (message: string) => Error): number {
  const raw = env.ATELIER_DOWNLOAD_RETRY_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_DOWNLOAD_RETRY_MS;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 3600) {
    throw fail(
      `ATELIER_DOWNLOAD_RETRY_SECONDS=${raw} must be 0 to 3600: how long downloads from the control plane keep retrying (it should outlast a replica restart).`,
    );
  }
  return Math.round(n * 1000);
}
