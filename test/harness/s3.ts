// A local S3-compatible server for tests: s3rver (pure JavaScript, files on disk under a temporary folder), in the
// test's own process on a free port, with buckets made at start. Its limits as a stand-in for S3: one fixed key
// pair (S3RVER/S3RVER); no If-None-Match/conditional writes, object lock, versioning, storage classes or
// x-amz-checksum-* validation; no real consistency or throttling behaviour (it answers at once, from one process).
// The object store needs none of those: it checks every read against its own SHA-256 digest. Two more gaps: a copy of an
// object onto itself keeps its Last-Modified (S3 sets a new one; the store's touch stamps metadata too). Its ListObjectsV2
// continuation tokens were sealed with DES, absent from Node 20's OpenSSL 3 (a 500 from the second page): patched in
// server/db/patches/s3rver+3.7.1.patch (test/object-store/s3-listing.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface S3Server {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The same credentials as environment variables, for the AWS SDK's default chain in child processes. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'atelier-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const address = await server.run();
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    credentials,
    env: { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey },
    stop() {
      stopped ??= server.close().then(() => rm(directory, { recursive: true, force: true }));
      return stopped;
    },
  };
}
