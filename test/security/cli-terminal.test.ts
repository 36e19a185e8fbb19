// What the `atelier` CLI prints of the server's text is text, never the terminal's commands: another member's
// experiment name and tags, a run's log lines (a module prints what it likes) and its messages may carry ESC
// sequences (OSC 52 writes the clipboard, OSC 0 the window title, CSI 2J clears the screen), CR that rewrites a line
// and bidirectional overrides. Every string the CLI's client receives is escaped before any command sees it, so
// `experiment list`, `run logs` and `run logs -f` print them as \uXXXX. The real CLI against a real control plane.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';

let t: TestApp;
const cli = (...args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);
/** OSC 52 (clipboard), OSC 0 (title), CSI 2J (clear), a CR and a right-to-left override. */
const HOSTILE = '\u001b]52;c;cHduZWQ=\u0007\u001b]0;owned\u0007\u001b[2J\rfake\u202e';
// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters looked for
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'loud', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: `hi ${HOSTILE}` } }] });
  const mlflow = async (path: string, body: unknown) =>
    (await (
      await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json()) as any;
  await mlflow('experiments/create', { name: `exp ${HOSTILE}`, tags: [{ key: 'note', value: `v ${HOSTILE}` }] });
}, 60_000);
afterAll(async () => t?.stop());

it('prints experiment names, tags and run logs with their control characters escaped', async () => {
  const list = await cli('experiment', 'list');
  expect(list.code, showCli(list)).toBe(0);
  expect(list.stdout).toContain('exp \\u001b]52;c;cHduZWQ=\\u0007');
  expect(list.stdout).toContain('note=v \\u001b]52');

  const id = (await t.api.gql('mutation { startRun(workflow: "loud") { id } }')).startRun.id as string;
  const followed = await cli('run', 'logs', id, '-f');
  expect(followed.code, showCli(followed)).toBe(0);
  expect(followed.stdout).toContain('echo: hi \\u001b]52;c;cHduZWQ=\\u0007');
  const logs = await cli('run', 'logs', id);
  expect(logs.stdout).toContain('echo: hi \\u001b]52');

  for (const r of [list, followed, logs]) expect(CONTROL.test(r.stdout + r.stderr), JSON.stringify(r.stdout)).toBe(false);
}, 120_000);
