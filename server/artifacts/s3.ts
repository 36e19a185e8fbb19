// The S3-compatible backend (AWS S3, MinIO, Ceph, R2, …) through the AWS SDK v3. Credentials come from the SDK's
// default chain (environment, shared config/SSO, web identity, container or instance roles); nothing here reads
// them. Uploads stream from a spooled file (multipart above 8 MiB, by @aws-sdk/lib-storage); downloads stream and
// are checked against the digest by remote.ts, so the content digest is checked whatever the server does.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { redactUrl } from '../../plugins/redact-url';
import type { Blobs } from './remote';

export interface S3StoreOptions {
  bucket: string;
  /** Keys start with this (e.g. `atelier/`); empty by default. */
  prefix?: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** Only for tests; deployments leave it to the SDK's default chain. */
  credentials?: S3ClientConfig['credentials'];
  /** Keys per listing page (MaxKeys); S3's own 1,000 by default. Tests list many pages of a few objects. */
  listPageSize?: number;
}

const PART_BYTES = 8 * 1024 * 1024;
/** User metadata (`x-amz-meta-atelier-touched`) a touch writes: when the object was last stored again. */
const TOUCHED = 'atelier-touched';

export function createS3Blobs(options: S3StoreOptions): Blobs {
  const client = new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    // Checksums only where S3 requires them: S3-compatible servers differ in the ones they know, and every read
    // is checked against its SHA-256 digest anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const Bucket = options.bucket;
  const key = (name: string) => `${options.prefix ?? ''}${name}`;
  const missing = (error: unknown) => {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
  };
  const where = `S3 bucket ${options.bucket}${options.endpoint ? ` at ${redactUrl(options.endpoint)}` : ''}`;

  return {
    backend: 's3',
    describe: () => where,
    async size(name) {
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket, Key: key(name) }));
        return head.ContentLength ?? 0;
      } catch (error) {
        if (missing(error)) return null;
        throw explain(error, where);
      }
    },
    async read(name) {
      try {
        const got = await client.send(new GetObjectCommand({ Bucket, Key: key(name) }));
        return (got.Body as Readable | undefined) ?? null;
      } catch (error) {
        if (missing(error)) return null;
        throw explain(error, where);
      }
    },
    async write(name, source) {
      try {
        if ('bytes' in source) {
          await new Upload({ client, params: { Bucket, Key: key(name), Body: source.bytes } }).done();
        } else {
          const Body = createReadStream(source.file);
          await new Upload({ client, partSize: PART_BYTES, queueSize: 2, params: { Bucket, Key: key(name), Body, ContentLength: source.size } }).done();
        }
      } catch (error) {
        throw explain(error, where);
      }
    },
    async head(name) {
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket, Key: key(name) }));
        // The later of Last-Modified and the stamp a touch wrote: S3 gives a self-copy a new Last-Modified, but not
        // every S3-compatible server does (s3rver keeps the old one); the stamp holds either way.
        const stamped = Date.parse(head.Metadata?.[TOUCHED] ?? '');
        const modified = head.LastModified?.getTime() ?? Date.now();
        return { size: head.ContentLength ?? 0, touchedAt: new Date(Number.isFinite(stamped) ? Math.max(stamped, modified) : modified) };
      } catch (error) {
        if (missing(error)) return null;
        throw explain(error, where);
      }
    },
    async touch(name) {
      // S3 has no touch: copying an object onto itself with new metadata (REPLACE, as S3 requires for a self-copy)
      // gives it a new Last-Modified server-side, bytes unmoved. Above 5 GiB S3 refuses a copy: the caller uploads.
      try {
        await client.send(
          new CopyObjectCommand({
            Bucket,
            Key: key(name),
            CopySource: `${Bucket}/${key(name).split('/').map(encodeURIComponent).join('/')}`,
            MetadataDirective: 'REPLACE',
            Metadata: { [TOUCHED]: new Date().toISOString() },
          }),
        );
        return true;
      } catch {
        return false;
      }
    },
    async *list(prefix) {
      // ListObjectsV2 pages (1,000 keys at most each) follow NextContinuationToken while IsTruncated. A listing has no
      // user metadata: its Last-Modified may be older than a touch, which `head` (what a delete decides on) reads.
      let ContinuationToken: string | undefined;
      do {
        let page: ListObjectsV2CommandOutput;
        try {
          page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: key(prefix), ContinuationToken, MaxKeys: options.listPageSize }));
        } catch (error) {
          throw explain(error, where);
        }
        for (const item of page.Contents ?? []) {
          if (!item.Key) continue;
          yield { name: item.Key.slice(key('').length), size: item.Size ?? 0, touchedAt: item.LastModified ?? new Date() };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },
    async remove(name) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key(name) }));
    },
    async close() {
      client.destroy();
    },
  };
}

function explain(error: unknown, where: string): Error {
  const e = error as Error & { name?: string };
  const hint =
    e.name === 'NoSuchBucket'
      ? ': the bucket does not exist; create it, or set ATELIER_S3_BUCKET to one that does'
      : e.name === 'CredentialsProviderError'
        ? ': no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the process a role'
        : e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch'
          ? ': check the credentials and that they may read and write the bucket'
          : '';
  return new Error(`${where}: ${e.name ?? 'Error'}: ${e.message}${hint}`, { cause: error });
}
