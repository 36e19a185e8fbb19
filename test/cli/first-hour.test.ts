// A newcomer's first commands against a fresh control plane, as the README's quick-start has them typed: every list
// that is still empty says how to make the first one, and a typo in a module reference says what was most likely
// meant and what there is. The tests share one control plane, empty at first: run the file whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type CliResult, runCli, showCli } from '../harness/cli';

let t: TestApp;
const cli = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

function ok(r: CliResult): string {
  expect(r.code, showCli(r)).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  t = await startTestApp();
}, 60_000);
afterAll(() => t?.stop());

describe('on a fresh control plane', () => {
  it('says, for every list that is still empty, the command that makes the first one', async () => {
    const lists = [
      ['workflow', 'list'],
      ['module', 'list'],
      ['run', 'list'],
      ['schedule', 'list'],
      ['trigger', 'list'],
      ['experiment', 'list'],
      ['model', 'list'],
      ['deploy', 'list'],
      ['dataset', 'list'],
      ['cluster', 'list'],
      ['team', 'list'],
    ];
    for (const args of lists) expect(ok(await cli(args)), args.join(' ')).toMatch(/`(npx )?atelier [a-z]+ [a-z]+[^`]*`/);
  });

  it('names what a mistyped module or tag in a workflow spec most likely meant, and what there is', async () => {
    await t.publishFixture('echo');
    const create = (module: string) =>
      t.api.raw(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify({ name: 'typo', tasks: [{ name: 'a', module }] }) });
    const problems = async (module: string) => (await create(module)).errors?.[0]?.extensions?.details as { path: string; message: string }[];

    expect(await problems('test/ehco@latest')).toEqual([
      {
        path: 'tasks.a.module',
        message:
          'unknown module test/ehco (did you mean "test/echo"?); publish it first with `npx atelier module push DIR`, or see the published ones with `npx atelier module list`',
      },
    ]);
    expect(await problems('test/echo@lates')).toEqual([
      {
        path: 'tasks.a.module',
        message: 'module test/echo has no tag or version "lates" (did you mean "latest"? its tags: latest; its newest version: 1)',
      },
    ]);
    expect((await problems('test/nothing-like-it@latest'))[0]!.message).toMatch(/^unknown module test\/nothing-like-it; publish it first/);
  });
});
