// `atelier executor list` and `atelier cluster` with the real CLI, and the executor host's HTTP artifact source, against
// the real control plane in-process (./iris.ts) with the iris example's modules pushed.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { sha256 } from '../../server/artifacts/store';
import { createHttpArtifactSource } from '../../server/cli/artifact-source';
import { repoRoot as root, showCli } from '../harness/cli';
import { cliWhen as cliWhenOn, IRIS_MODULES, type IrisPlane, startIrisPlane } from './iris';

let plane: IrisPlane;
const cli = (args: string[], env: Record<string, string> = {}, command?: string[]) => plane.cli(args, env, command);
const show = showCli;
const gql = (query: string, variables: Record<string, unknown> = {}) => plane.gql(query, variables);
const cliWhen = (args: string[], shows: (stdout: string) => boolean, ready: () => Promise<boolean>, ms?: number) => cliWhenOn(plane, args, shows, ready, ms);

beforeAll(async () => {
  plane = await startIrisPlane();
  for (const r of await Promise.all(IRIS_MODULES.map((m) => cli(['module', 'push', `examples/iris/${m}`])))) expect(r.code, show(r)).toBe(0);
});

afterAll(async () => {
  await plane?.stop();
});

describe('atelier executor list and atelier cluster', () => {
  it('lists pools with their live hosts, and creates, lists and ends a hot cluster', async () => {
    const listed = await cli(['executor', 'list']);
    expect(listed.code, show(listed)).toBe(0);
    // (running counts come from the last heartbeat: an earlier test's task may still be counted)
    expect(listed.stdout).toMatch(/^pool local {2}HEALTHY {2}\d+\/\d+ running, 0 waiting$/m);
    expect(listed.stdout).toMatch(/^ {2}\S+-embedded {2}\d+\/\d+ {2}local, noop {2}v\d+\.\d+\.\d+$/m);

    const created = await cli(['cluster', 'create', 'warm', '--executor', 'local', '--workers', '1', '--idle-timeout', '600']);
    expect(created.code, show(created)).toBe(0);
    expect(created.stdout).toMatch(/^created hot cluster warm {2}STARTING +local on pool local {2}\{"workers":1\} {2}idle timeout 600 s/);
    const clusters = await cliWhen(
      ['cluster', 'list'],
      (stdout) => /READY/.test(stdout),
      async () =>
        (await gql(`{ hotClusters { name state } }`)).hotClusters.some((c: { name: string; state: string }) => c.name === 'warm' && c.state === 'READY'),
      60_000,
    );
    expect(clusters).toMatch(/^warm {2}READY +local on pool local/m);
    const duplicate = await cli(['cluster', 'create', 'warm', '--executor', 'local']);
    expect(duplicate.code, show(duplicate)).toBe(1);
    expect(duplicate.stderr).toMatch(/already live .*end it first with `npx atelier cluster end warm`/);

    const ended = await cli(['cluster', 'end', 'warm']);
    expect(ended.code, show(ended)).toBe(0);
    expect(ended.stdout).toBe('ended hot cluster warm\n');
    expect((await cli(['cluster', 'list'])).stdout).toMatch(/^no hot clusters/);
  });
});

describe("the executor host's HTTP artifact source", () => {
  it('downloads a published archive, verifies it, reuses the cache and re-fetches a damaged copy', async () => {
    const digest = sha256(await packDirectory(path.join(root, 'examples', 'iris', 'train')));
    const cacheDir = path.join(plane.dataDir, 'executor-cache-test');
    const source = createHttpArtifactSource({ url: plane.url, token: plane.adminToken, cacheDir });
    const file = await source.fetch(digest);
    expect(sha256(await readFile(file))).toBe(digest);
    expect(await source.fetch(digest)).toBe(file);

    await writeFile(file, 'damaged');
    const fresh = createHttpArtifactSource({ url: plane.url, token: plane.adminToken, cacheDir });
    expect(await fresh.fetch(digest)).toBe(file);
    expect(sha256(await readFile(file))).toBe(digest);

    await expect(createHttpArtifactSource({ url: plane.url, token: 'atl_wrong', cacheDir: `${cacheDir}-2` }).fetch(digest)).rejects.toThrow(
      /HTTP 401.*ATELIER_TOKEN/,
    );
    await expect(source.fetch(`sha256:${'0'.repeat(64)}`)).rejects.toThrow(/HTTP 404/);
  });
});
