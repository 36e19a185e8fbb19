// The mistakes a person types into `atelier`, run as they type them against a real control plane: each is refused
// with what went wrong and what to do, exit 1, no stack trace, and nothing is sent that the server would answer
// with a raw GraphQL variable error or take as "no value" (a token that never expires).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type CliResult, runCli, showCli } from '../harness/cli';

let t: TestApp;
const cli = (args: string[], env: Record<string, string> = {}) => runCli({ url: t.url, token: t.app.adminToken }, args, env);

function refused(r: CliResult, message: RegExp) {
  expect(r.code, showCli(r)).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |Variable "\$|NaN/);
}

beforeAll(async () => {
  t = await startTestApp();
}, 60_000);

afterAll(() => t?.stop());

describe('the control plane address', () => {
  it('takes the GraphQL endpoint `npm start` prints as the address it is served from', async () => {
    for (const url of [`${t.url}/graphql`, `${t.url}/graphql/`, `${t.url}/`]) {
      const r = await cli(['workflow', 'list'], { ATELIER_URL: url });
      expect(r.code, showCli(r)).toBe(0);
    }
  });

  it('takes --url before or after the command, over ATELIER_URL', async () => {
    for (const args of [
      ['--url', t.url, 'workflow', 'list'],
      ['workflow', 'list', '--url', t.url],
    ]) {
      const r = await cli(args, { ATELIER_URL: 'http://127.0.0.1:9' });
      expect(r.code, showCli(r)).toBe(0);
    }
  });

  it('leaves a command’s own --url to it: webhook update --url asks the control plane, not the new URL', async () => {
    const r = await cli(['webhook', 'update', '00000000-0000-0000-0000-000000000000', '--url', 'http://127.0.0.1:9/hook']);
    refused(r, /^error \[NOT_FOUND\]: No webhook 00000000-0000-0000-0000-000000000000/);
  });

  it('refuses an address that is not an http URL, with an example of one', async () => {
    refused(await cli(['workflow', 'list', '--url', 'notaurl']), /'--url <url>'.*expected the control plane's address, like http:\/\/127\.0\.0\.1:4000/);
    refused(await cli(['workflow', 'list'], { ATELIER_URL: 'localhost:4000' }), /from env 'ATELIER_URL' is invalid.*like http:\/\/127\.0\.0\.1:4000/);
  });
});

describe('what the server refuses', () => {
  it('says what a name in a workflow spec must be, in words', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-input-'));
    try {
      const spec = path.join(dir, 'names.yaml');
      await writeFile(spec, 'name: My Flow\ntasks:\n  - name: a b\n    module: ML/Train\n');
      const r = await cli(['workflow', 'create', spec]);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        'error [INVALID_WORKFLOW]: The workflow spec is invalid:',
        '  name: must be 1–64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
        '  tasks.a b.name: must be 1–63 letters, digits, "_" or "-", starting with a letter or "_"',
        '  tasks.a b.module: must be namespace/name, optionally @tag or @version (e.g. "ml/train@latest")',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints each problem of a refused workflow spec once, on its own line, under the server’s lead', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-input-'));
    try {
      const spec = path.join(dir, 'typo.yaml');
      await writeFile(spec, 'name: typo\ntasks:\n  - name: a\n    modul: ns/a\n    dependOn: [b]\n');
      const r = await cli(['workflow', 'create', spec]);
      refused(r, /^error \[INVALID_WORKFLOW\]: The workflow spec is invalid:$/m);
      expect(r.stderr.split('\n').filter(Boolean)).toEqual([
        'error [INVALID_WORKFLOW]: The workflow spec is invalid:',
        '  tasks.a: unknown field "modul" (did you mean "module"?)',
        '  tasks.a: unknown field "dependOn" (did you mean "dependsOn"?)',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deployment gates', () => {
  it('refuses a bound that is not a finite number (1e999 would be sent as no bound at all)', async () => {
    const r = await cli(['deploy', 'create', 'iris-x', 'ml/iris@champion', '--steps', '10,100', '--gate', 'serving.error_rate>1e999']);
    refused(r, /'--gate <rule>' argument 'serving\.error_rate>1e999' is invalid\. expected a finite VALUE in METRIC>VALUE or METRIC<VALUE/);
  });
});

describe('names that do not exist', () => {
  it('says where to list them', async () => {
    refused(await cli(['model', 'show', 'ml/nope']), /^error: no model ml\/nope; list them with `atelier model list`$/m);
    refused(await cli(['model', 'lineage', 'ml/nope@1']), /no model version ml\/nope@1; `atelier model show NAME` lists/);
    refused(await cli(['experiment', 'rename', 'nope', 'other']), /No experiment nope; `atelier experiment list`/);
    const none = '00000000-0000-0000-0000-000000000000';
    for (const args of [
      ['get', none],
      ['watch', none],
      ['logs', none],
      ['logs', none, '-f'],
    ])
      refused(await cli(['run', ...args]), new RegExp(`^error \\[NOT_FOUND\\]: There is no run ${none} that you may read; \`atelier run list\` lists`));
  });
});

describe('a manifest with mistakes', () => {
  it('says what each field must be, in words, each once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-manifest-'));
    try {
      await writeFile(
        path.join(dir, 'atelier.module.yaml'),
        'namespace: ml\nname: Score Users\nentrypoint: ../score.py\nruntime: python\nresources: { memory: 4GB }\n',
      );
      const r = await cli(['module', 'push', dir]);
      refused(r, /^error \[INVALID_MANIFEST\]: atelier\.module\.yaml is invalid:$/m);
      expect(r.stderr.split('\n').filter(Boolean).slice(1)).toEqual([
        '  name: must be 1–64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
        '  entrypoint: must be a path inside the module directory (relative, without "..")',
        '  runtime: must be one of node, python3, shell',
        '  resources.memory: must be a whole number of bytes, optionally with Ki, Mi, Gi or Ti (e.g. "4Gi")',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('option values', () => {
  it('names the run statuses for a wrong --status, in any case', async () => {
    refused(await cli(['run', 'list', '--status', 'bogus']), /--status.*expected one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, got "bogus"/);
    const r = await cli(['run', 'list', '--status', 'failed']);
    expect(r.code, showCli(r)).toBe(0);
    expect(r.stdout).toBe('no runs match\n');
  });

  it('names the team roles for a wrong --role', async () => {
    refused(await cli(['team', 'add', 'vision', 'alice', '--role', 'boss']), /Allowed choices are viewer, member, maintainer, admin/);
    refused(await cli(['user', 'create', 'alice', '--role', 'boss']), /Allowed choices are admin, member, viewer/);
  });

  it('refuses a token lifetime that is not a number instead of issuing one that never expires', async () => {
    refused(await cli(['user', 'create', 'bob', '--expires-in-days', 'ten']), /--expires-in-days.*expected a whole number ≥ 1/);
    await t.user('bob'); // a name taken would be refused: nothing was created
  });

  it('refuses deployer settings that are not a JSON object, with an example', async () => {
    refused(
      await cli(['deploy', 'create', 'web', 'ml/model@champion', '--settings', '{port: 8080}']),
      /--settings.*expected a JSON object, e.g. '\{"port": 8080\}'/,
    );
    refused(await cli(['deploy', 'create', 'web', 'ml/model@champion', '--ready-timeout', 'soon']), /--ready-timeout.*expected a whole number ≥ 1/);
  });

  it('points to the subcommand’s --help after a mistake, also in groups built apart (team, deploy, dataset)', async () => {
    for (const args of [
      ['team', 'add', 'vision', 'alice', '--role', 'boss'],
      ['deploy', 'list', '--bogus'],
      ['dataset', 'show'],
    ]) {
      const r = await cli(args);
      refused(r, /\(add --help for usage\)/);
    }
  });
});
