// A control plane SIGKILLed in the middle of a write that spans the object store and the database (a module publish:
// the archive stored, its version not yet recorded), and the temporary files writes killed mid-stream leave on disk.
// Started again: no version is half-visible and none names a missing archive, the same publish succeeds, and the
// stale partial files are removed, while a write in progress (a fresh temporary file) is left alone.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, crashAt, startControlPlaneProcess } from '../harness/control-plane-process';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { freePort } from '../harness/ports';
import { until } from '../triggers/world';

const TOKEN = 'atl_crash-mid-write-admin-token';
let dataDir = '';
const planes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-crash-mid-write-'));
  await seedEmbeddedDatabase(dataDir); // migrated already: each start is quicker
});
afterAll(async () => {
  for (const p of planes) await p.kill();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const VERSIONS = `query { module(name: "test/sleep") { versions { ref digest } } }`;

/** A temporary file as the store writes one (store.ts `place`, verify.ts `spool`), last touched `ageMs` ago. */
async function partial(dir: string, name: string, ageMs: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await writeFile(file, 'half an object');
  const then = new Date(Date.now() - ageMs);
  await utimes(file, then, then);
  return file;
}
const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

it('leaves no half-published version, publishes on retry, and removes only stale partial files', async () => {
  const port = await freePort();
  const env = { PORT: String(port), ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: TOKEN };
  const archive = await packDirectory(path.join(fixturesDir, 'modules', 'sleep'));
  // Killed with the archive in the store and no row naming it yet.
  await crashAt(env, 'module-object-stored', (url) =>
    apiClient(url, TOKEN)
      .upload(PUBLISH, {}, 'artifact', archive)
      .catch((error: Error) => error),
  );

  // What writes killed mid-stream leave (two hours old), and a write in progress on another replica (fresh).
  const objects = path.join(dataDir, 'objects');
  const hex = 'ab'.repeat(32);
  const stale = [
    await partial(path.join(objects, 'sha256', 'ab'), `${hex}.${randomUUID()}.tmp`, 2 * 3_600_000),
    await partial(objects, `.incoming-${randomUUID()}.tmp`, 2 * 3_600_000),
  ];
  const live = await partial(objects, `.incoming-${randomUUID()}.tmp`, 0);
  const foreign = await partial(objects, 'notes.tmp', 2 * 3_600_000); // not a name the store writes: not the sweep's

  const plane = await startControlPlaneProcess(env);
  planes.push(plane);
  const api = apiClient(plane.url, TOKEN);
  // The crash left no version: the module (made in the same transaction) is not there either.
  expect((await api.gql(VERSIONS)).module).toBeNull();
  await until('the stale partial files to be removed', async () => !(await exists(stale[0]!)) && !(await exists(stale[1]!)));
  expect(await exists(live)).toBe(true);
  expect(await exists(foreign)).toBe(true);

  // The same publish again records the version, and its archive is served.
  const again = await api.upload(PUBLISH, {}, 'artifact', archive);
  expect(again.data).toMatchObject({ publishModuleVersion: { created: true } });
  const [version] = (await api.gql(VERSIONS)).module.versions;
  const download = await fetch(`${plane.url}/artifacts/${version.digest}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(download.status).toBe(200);
  expect(Buffer.from(await download.arrayBuffer()).equals(Buffer.from(archive))).toBe(true);
  // Of the temporary files, only the live write's and the foreign one remain.
  expect((await readdir(objects)).filter((n) => n.endsWith('.tmp')).sort()).toEqual([path.basename(live), 'notes.tmp'].sort());
}, 60_000);
