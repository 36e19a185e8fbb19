// The module dev loop through the real CLI as child processes: `module run` on the working directory,
// `push --test` recording its result, `push --run` trying the new alpha, promotion and rollback, and a
// corrupt stored object refused at fetch.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { sha256 } from '../../server/artifacts/store';
import { createHttpArtifactSource } from '../../server/cli/artifact-source';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';

let t: TestApp;
let scratch: string;
let moduleDir: string;

const cli = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);
const show = showCli;

/** A module whose behaviour and test are set by files the test rewrites between pushes. */
async function writeModule(greeting: string, testExit: number) {
  await writeFile(
    path.join(moduleDir, 'atelier.module.yaml'),
    [
      'namespace: dev',
      'name: greet',
      'entrypoint: main.mjs',
      'runtime: node',
      `test: node -e "console.log('checking ${greeting}'); process.exit(${testExit})"`,
      'parameters:',
      '  type: object',
      '  additionalProperties: false',
      '  properties: { name: { type: string }, times: { type: integer, minimum: 1 } }',
      '',
    ].join('\n'),
  );
  await writeFile(
    path.join(moduleDir, 'main.mjs'),
    `import { writeSync } from 'node:fs';
const fd = Number(process.env.ATELIER_PROGRESS_FD);
const p = JSON.parse(process.env.ATELIER_PARAMS);
for (let i = 1; i <= (p.times ?? 1); i++) {
  console.log('${greeting}, ' + (p.name ?? 'world'));
  writeSync(fd, JSON.stringify({ progress: i / (p.times ?? 1), message: 'round ' + i }) + '\\n');
}
writeSync(fd, JSON.stringify({ output: { name: 'greeting', value: '${greeting}' } }) + '\\n');
`,
  );
}

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-modules-'));
  moduleDir = path.join(scratch, 'greet');
  await mkdir(moduleDir);
  await writeModule('hello', 0);
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('atelier module (dev loop)', () => {
  it('runs a module from its directory without publishing, streaming logs and progress, printing outputs', async () => {
    const r = await cli(['module', 'run', moduleDir, '-p', 'name=Ada', '-p', 'times=2']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^hello, Ada$/m);
    expect(r.stdout).toMatch(/\[progress 100% round 2\]/);
    expect(r.stdout).toMatch(/^outputs: \{"greeting":"hello"\}$/m);
    expect(r.stdout).toMatch(/^succeeded in /m);
    expect((await t.api.gql(`{ modules { id } }`)).modules).toEqual([]);
  });

  it('refuses parameters that break the schema before running anything', async () => {
    const r = await cli(['module', 'run', moduleDir, '-p', 'times=0', '-p', 'colour=red']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/parameters do not match atelier.module.yaml: /);
    expect(r.stderr).toMatch(/parameters unknown field "colour"/);
    expect(r.stderr).toMatch(/parameters.times must be >= 1/);
  });

  it('prints a failing module’s stderr once: live, not again in the failure line', async () => {
    const r = await cli(['module', 'run', 'examples/iris/train']); // no inputs: it says what it needs on stderr, exit 1
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout.match(/needs the `train` and `classes` outputs/g), show(r)).toHaveLength(1);
    expect(r.stdout).toMatch(/^! iris-train: needs the `train`/m);
    expect(r.stdout).toMatch(/^failed in [\d.]+ s: exited with code 1 \(its stderr is above\)$/m);
  });

  it('push --test records a passing test on the version; a failing one records it and moves no tag', async () => {
    const ok = await cli(['module', 'push', moduleDir, '--test']);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout).toMatch(/^test passed in [\d.]+ s: node -e/m);
    expect(ok.stdout).toMatch(/published dev\/greet@1 .*tags: latestAlpha, latest/);

    await writeModule('hi', 3);
    const failing = await cli(['module', 'push', moduleDir, '--test']);
    expect(failing.code, show(failing)).toBe(1);
    expect(failing.stdout).toMatch(/test FAILED \(exit 3\)/);
    expect(failing.stdout).toMatch(/published dev\/greet@2 .*no tags moved/);
    expect(failing.stderr).toMatch(/no tag moved/);
    const { module } = await t.api.gql(
      `{ module(name: "dev/greet") { tags { tag version { version } } versions { version testResult { passed exitCode output } } } }`,
    );
    expect(module.tags.map((x: any) => `${x.tag}=${x.version.version}`).sort()).toEqual(['latest=1', 'latestAlpha=1']);
    expect(module.versions.map((v: any) => [v.version, v.testResult.passed, v.testResult.exitCode])).toEqual([
      ['2', false, 3],
      ['1', true, 0],
    ]);
    expect(module.versions[0].testResult.output).toMatch(/checking hi/);
  });

  it('push --run starts the workflow with the fresh alpha, leaving latest alone', async () => {
    await t.createWorkflow({ name: 'greeter', tasks: [{ name: 'g', module: 'dev/greet', parameters: { name: 'team' } }] });
    await writeModule('howdy', 0);
    const r = await cli(['module', 'push', moduleDir, '--run', 'greeter', '--watch']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/published dev\/greet@3 .*tags: latestAlpha/);
    expect(r.stdout).toMatch(/started run [0-9a-f-]{36} of greeter with dev\/greet@3/);
    expect(r.stdout).toMatch(/SUCCEEDED/);
    const again = await cli(['module', 'push', moduleDir]);
    expect(again.stdout).toMatch(/^unchanged: dev\/greet@3 already has this content, nothing uploaded/);
    const { runs } = await t.api.gql(`{ runs(first: 1) { edges { node { tasks { moduleRef moduleVersion { version } } } } } }`);
    expect(runs.edges[0].node.tasks[0]).toEqual({ moduleRef: 'dev/greet@3', moduleVersion: { version: '3' } });
  });

  it('promotes, rolls back and shows the history', async () => {
    const promote = await cli(['module', 'tag', 'dev/greet', 'latest', 'latestAlpha', '--reason', 'looks good']);
    expect(promote.stdout.trim(), show(promote)).toBe('dev/greet@latest: 1 → 3');
    const back = await cli(['module', 'rollback', 'dev/greet', 'latest']);
    expect(back.stdout.trim(), show(back)).toBe('dev/greet@latest: 3 → 1');
    const deprecate = await cli(['module', 'deprecate', 'dev/greet@2', '--reason', 'fails its test']);
    expect(deprecate.stdout.trim()).toBe('dev/greet@2 is deprecated');
    const refused = await cli(['module', 'tag', 'dev/greet', 'latest', '2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/CONFLICT.*deprecated \(fails its test\).*--force/);
    const shown = await cli(['module', 'show', 'dev/greet']);
    expect(shown.code, show(shown)).toBe(0);
    expect(shown.stdout).toMatch(/^ {2}2 .*DEPRECATED \(fails its test\) {2}test FAILED/m);
    expect(shown.stdout).toMatch(/latest: 3 → 1 {2}\(rollback\) by admin/);
    expect(shown.stdout).toMatch(/latest: 1 → 3 {2}by admin: looks good/);
    const listed = await cli(['module', 'list']);
    expect(listed.stdout).toMatch(/^dev\/greet {2}latest→1 latestAlpha→3 {2}team:\(none\) {2}runs:1/m);
  });

  it('refuses a stored object whose bytes no longer match its digest, at fetch', async () => {
    const digest = sha256(await packDirectory(moduleDir));
    const objects = path.join(t.dataDir, 'objects');
    const find = async (dir: string): Promise<string | undefined> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          const found = await find(p);
          if (found) return found;
        } else if (p.includes(digest.slice(7))) return p;
      }
      return undefined;
    };
    const file = await find(objects);
    expect(file).toBeTruthy();
    await writeFile(file!, 'tampered');
    const source = createHttpArtifactSource({ url: t.url, token: t.app.adminToken, cacheDir: path.join(scratch, 'cache') });
    await expect(source.fetch(digest)).rejects.toThrow(/corrupt|hashes to/);
  });
});
