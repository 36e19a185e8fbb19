// `atelier run tag|note|search|compare` and `run list --filter` against a real control plane: tags and a note set,
// a search by tag and metric printed as a table, a malformed filter's column on stderr, and a comparison table.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';
import { seedRun } from '../tracking/seed';

let t: TestApp;
let a = '';
let b = '';
const cli = (...args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

beforeAll(async () => {
  t = await startTestApp();
  const db = t.app.services.db;
  a = await seedRun(db, {
    name: 'run-a',
    experiment: 'cli-exp',
    parameters: { lr: 0.1, opt: 'adam' },
    tasks: [
      [
        ['acc', 0.8],
        ['acc', 0.9],
      ],
    ],
  });
  b = await seedRun(db, { name: 'run-b', experiment: 'cli-exp', parameters: { lr: 0.01, opt: 'adam' }, tasks: [[['acc', 0.95]]] });
}, 60_000);

afterAll(() => t?.stop());

it('tags, notes, searches and compares runs', async () => {
  const tag = await cli('run', 'tag', a, 'dataset=v2', 'owner=me');
  expect(tag.code, showCli(tag)).toBe(0);
  const untag = await cli('run', 'tag', a, '--delete', 'owner');
  expect(untag.stdout).toContain('removed owner');
  // A key the run has not (any more) is said to be absent, not removed: a no-op, exit 0 as other no-ops
  const absent = await cli('run', 'tag', a, '--delete', 'owner', '--delete', 'dataset');
  expect(absent.code, showCli(absent)).toBe(0);
  expect(absent.stdout).toBe(`run ${a}: no tag owner to remove (it has none by that key), removed dataset\n`);
  expect((await cli('run', 'tag', a, 'dataset=v2')).code).toBe(0);
  expect((await cli('run', 'note', a, 'baseline')).code).toBe(0);

  const search = await cli('run', 'search', "tags.dataset = 'v2' or metrics.acc > 0.9", '--order', 'metrics.acc DESC');
  expect(search.code, showCli(search)).toBe(0);
  const lines = search.stdout.trim().split('\n');
  // the metric the filter and order name is a column of its own, with the value the search compared
  expect(lines[0]).toMatch(/^ID\s+STATUS\s+EXPERIMENT\s+NAME\s+CREATED\s+metrics\.acc\s+TAGS$/);
  expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([b, a]);
  expect(lines[1]!.split(/\s+/)[5]).toBe('0.95');
  expect(lines[2]!.split(/\s+/)[5]).toBe('0.9');
  expect(lines[2]).toContain('dataset=v2');
  const byParam = await cli('run', 'search', 'params.lr < 1 and metrics.acc.min >= 0.8', '--order', 'params.lr');
  expect(byParam.code, showCli(byParam)).toBe(0);
  const paramLines = byParam.stdout.trim().split('\n');
  expect(paramLines[0]).toMatch(/\sparams\.lr\s+metrics\.acc\.min\s+TAGS$/);
  expect(paramLines.slice(1).map((l) => l.split(/\s+/).slice(5, 7))).toEqual([
    ['0.01', '0.95'],
    ['0.1', '0.8'],
  ]);

  const bad = await cli('run', 'search', 'metrics.acc >');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/column 14: expected a number or a 'string'/);
  expect(bad.stderr).not.toMatch(/Expecting|Token sequences|but found/); // the parser's own words stay out of it
  // said once: the server's message already names the column, so its detail is not printed under it again
  expect(bad.stderr).toBe("error [BAD_USER_INPUT]: filter column 14: expected a number or a 'string', found the end of the filter.\n");

  const compare = await cli('run', 'compare', a, b);
  expect(compare.code, showCli(compare)).toBe(0);
  const rows = compare.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));
  expect(rows).toEqual([
    ['RUN', 'run-a', 'run-b'],
    ['param lr', '0.1', '0.01'],
    ['acc last', '0.9', '0.95'],
    ['acc min', '0.8', '0.95'],
    ['acc max', '0.9', '0.95'],
  ]);

  // a metric no compared run reports is said, with the ones they do, and fails the command as a missing run does
  const typo = await cli('run', 'compare', a, b, '--metric', 'acc', '--metric', 'Acc', '--metric', 'loss');
  expect(typo.code, showCli(typo)).toBe(1);
  expect(typo.stdout).toContain('acc last');
  expect(typo.stderr).toBe(
    'no compared run reports metric "Acc" (did you mean "acc"?); they report: acc\nno compared run reports metric "loss"; they report: acc\n',
  );

  // a run not compared fails the command, also when the others were compared (and as --json)
  const unknown = '00000000-0000-0000-0000-000000000000';
  for (const json of [[], ['--json']]) {
    const partial = await cli('run', 'compare', a, unknown, ...json);
    expect(partial.code, showCli(partial)).toBe(1);
    if (json.length) expect(JSON.parse(partial.stdout).missing).toEqual([unknown]);
    else expect(partial.stdout).toContain('acc last');
  }
});

it('lists runs through the filter language with run list --filter/--order-by, and refuses a malformed filter', async () => {
  const c = await seedRun(t.app.services.db, { name: 'run-c', experiment: 'cli-exp', parameters: { lr: 0.5, opt: 'sgd' }, tasks: [[['acc', 0.4]]] });
  const listed = await cli('run', 'list', '--filter', 'metrics.acc > 0.5', '--order-by', 'metrics.acc DESC');
  expect(listed.code, showCli(listed)).toBe(0);
  const lines = listed.stdout.trim().split('\n');
  expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([b, a]);
  expect(lines[0]).toMatch(/SUCCEEDED\s+external/);
  expect(listed.stdout).not.toContain(c);

  const bad = await cli('run', 'list', '--filter', 'metrics.acc >');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/column 14: expected a number or a 'string'/);
  expect(bad.stdout).toBe('');
});

it('lists, renames, tags, deletes and restores experiments', async () => {
  const listed = await cli('experiment', 'list');
  expect(listed.code, showCli(listed)).toBe(0);
  expect(listed.stdout).toMatch(/^EXPERIMENT\s+RUNS\s+OF\s+TAGS$/m);
  const { experiment } = await t.api.gql(`{ experiment(name: "cli-exp") { runCount } }`);
  expect(listed.stdout).toMatch(new RegExp(`^cli-exp\\s+${experiment.runCount}\\s`, 'm'));
  const tag = await cli('experiment', 'tag', 'cli-exp', 'goal=recall', 'owner=me');
  expect(tag.code, showCli(tag)).toBe(0);
  expect(tag.stdout).toContain('goal=recall owner=me');
  expect((await cli('experiment', 'tag', 'cli-exp', '--delete', 'owner')).stdout).toContain('experiment cli-exp: goal=recall');
  expect((await cli('experiment', 'rename', 'cli-exp', 'cli-exp-2')).stdout).toContain('is now cli-exp-2');
  const deleted = await cli('experiment', 'delete', 'cli-exp-2');
  expect(deleted.stdout).toContain(`experiment cli-exp-2 deleted (${experiment.runCount} runs in it)`);
  expect((await cli('experiment', 'list')).stdout).not.toContain('cli-exp-2');
  expect((await cli('experiment', 'list', '--deleted')).stdout).toMatch(/^cli-exp-2 \(deleted\)\s+\d+\s/m);
  expect((await cli('experiment', 'restore', 'cli-exp-2')).code).toBe(0);
  // refusals say why, with a non-zero exit
  const missing = await cli('experiment', 'rename', 'no-such', 'x');
  expect(missing.code).not.toBe(0);
  expect(missing.stderr).toContain('No experiment no-such');
  const bare = await cli('experiment', 'tag', 'cli-exp-2');
  expect(bare.code).not.toBe(0);
  expect(bare.stderr).toContain('give key=value pairs to set, or --delete KEY');
});
