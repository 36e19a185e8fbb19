// Opens the object store the configuration names: the local directory (`$ATELIER_DATA_DIR/objects`), an S3 bucket
// or the NATS JetStream object store. The SDKs load only for the backend in use.
import path from 'node:path';
import type { ObjectStoreConfig } from '../config';
import { createRemoteObjectStore } from './remote';
import { createFileObjectStore, type ObjectStore } from './store';

export async function openObjectStore(config: ObjectStoreConfig, dataDir: string): Promise<ObjectStore> {
  // Remote backends keep verified local copies here for callers that need a file (the embedded executor host).
  const cacheDir = path.join(dataDir, 'object-cache');
  switch (config.backend) {
    case 'local':
      return createFileObjectStore(config.dir);
    case 's3': {
      const { createS3Blobs } = await import('./s3');
      return createRemoteObjectStore(createS3Blobs(config), { cacheDir });
    }
    case 'nats': {
      const { createNatsBlobs } = await import('./nats');
      return createRemoteObjectStore(await createNatsBlobs(config), { cacheDir });
    }
  }
}
