// A model version as a deployer's Revision: its files fetched from the object store into a directory named by the
// version's digest (written beside it and renamed into place, so a crash leaves no half directory under the real
// name; a second fetch of the same version finds it there), and its serve entrypoint from `metadata.serve`.
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Revision } from '../../plugins/deployer-sdk';
import type { ObjectStore } from '../artifacts/store';
import type { ModelVersion, RegisteredModel } from '../db/tables/registry';
import { badInput } from '../errors';
import { serveOf } from './spec';

async function fetchFiles(store: ObjectStore, root: string, version: ModelVersion): Promise<string> {
  const dir = path.join(root, version.digest.replace(/[^A-Za-z0-9]/g, '_'));
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.${randomUUID()}.tmp`;
  try {
    for (const file of version.files) {
      const target = path.resolve(tmp, file.path);
      if (!target.startsWith(`${path.resolve(tmp)}${path.sep}`))
        throw badInput(`model file path "${file.path}" leaves the version's directory; register the model again from files whose paths stay inside it`);
      await mkdir(path.dirname(target), { recursive: true });
      const { body } = await store.stream(file.digest);
      await pipeline(body, createWriteStream(target));
    }
    await mkdir(tmp, { recursive: true });
    await rename(tmp, dir).catch(async (error) => {
      if (!existsSync(dir)) throw error; // another fetch won the race: its copy is the same content
      await rm(tmp, { recursive: true, force: true });
    });
    return dir;
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

export function revisionOf(store: ObjectStore, filesDir: string, model: RegisteredModel, version: ModelVersion, number: number): Revision {
  return {
    number,
    modelVersion: {
      ref: `${model.namespace}/${model.name}/${version.version}`,
      digest: version.digest,
      files: () => fetchFiles(store, filesDir, version),
    },
    serve: serveOf(version.metadata),
    env: { MODEL_VERSION: `${model.namespace}/${model.name}/${version.version}` },
  };
}
