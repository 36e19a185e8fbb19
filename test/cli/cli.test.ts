// End to end for the `atelier` CLI: the real control plane in-process, the real CLI (server/cli/bin.js) as child
// processes, and the iris example pushed, created and run to completion, plus the errors a user meets first. The
// help's examples, the deployment of the trained model, and the executor and artifact commands are in the other
// cli-*.test.ts files, each on a control plane of its own (./iris.ts), so they run on different workers.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot as root, showCli } from '../harness/cli';
import { type IrisPlane, IRIS_MODULES as modules, startIrisPlane } from './iris';

let plane: IrisPlane;
const cli = (args: string[], env: Record<string, string> = {}, command?: string[]) => plane.cli(args, env, command);
const show = showCli;
let dataDir: string;

beforeAll(async () => {
  plane = await startIrisPlane();
  dataDir = plane.dataDir;
});

afterAll(async () => {
  await plane?.stop();
});

describe('atelier CLI with the iris example', () => {
  let runId = '';

  it('pushes the three example modules, then says unchanged when pushed again', async () => {
    const first = await Promise.all(modules.map((m) => cli(['module', 'push', `examples/iris/${m}`])));
    for (const [i, r] of first.entries()) {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^published examples/iris-${modules[i]}@1 \\(sha256:[0-9a-f]{12}…, \\d+ files, [\\d.]+ KB`));
    }
    const again = await cli(['module', 'push', 'examples/iris/train']);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(/^unchanged: examples\/iris-train@1 already has this content/);
  });

  it('creates the workflow, then says unchanged for the same spec', async () => {
    const created = await cli(['workflow', 'create', 'examples/iris/workflow.yaml']);
    expect(created.code, show(created)).toBe(0);
    expect(created.stdout).toMatch(/created workflow iris version 1/);
    // No ATELIER_TOKEN: a newcomer on the control plane's machine is found by the admin-token file.
    const again = await cli(['workflow', 'create', 'examples/iris/workflow.yaml'], { ATELIER_TOKEN: '', ATELIER_DATA_DIR: dataDir });
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(/unchanged: workflow iris is already at version 1/);
  });

  it('runs the workflow with --watch to success, showing each task and the accuracy', async () => {
    const r = await cli(['run', 'start', 'iris', '--param', 'epochs=200', '--watch', '--logs']);
    expect(r.code, show(r)).toBe(0);
    runId = /started run ([0-9a-f-]{36})/.exec(r.stdout)?.[1] ?? '';
    expect(runId).not.toBe('');
    for (const node of modules) expect(r.stdout).toMatch(new RegExp(`^\\[${node}\\] SUCCEEDED`, 'm'));
    expect(r.stdout).toMatch(/\[train\] \d+% epoch \d+\/200/);
    expect(r.stdout).toMatch(/\[evaluate\] confusion matrix/); // a log line, with --logs
    expect(r.stdout).toMatch(/^ {2}evaluate\s+SUCCEEDED\s+\S+\s+accuracy=0\.9\d*/m);
    expect(r.stdout).toMatch(new RegExp(`run ${runId} SUCCEEDED`));
  });

  it('shows the finished run and its logs', async () => {
    const [got, logs] = await Promise.all([cli(['run', 'get', runId]), cli(['run', 'logs', runId, '--node', 'evaluate'])]);
    expect(got.code, show(got)).toBe(0);
    expect(got.stdout).toMatch(/SUCCEEDED/);
    expect(got.stdout).toMatch(/^train\s+SUCCEEDED\s+1\/1/m);
    expect(logs.code, show(logs)).toBe(0);
    expect(logs.stdout).toMatch(/^accuracy \d+\.\d% \(\d+\/45\)/m);
  });

  it('watches a finished run: its tasks upstream first, and every metric they reported, though none arrives live', async () => {
    const r = await cli(['run', 'watch', runId, '--plain']);
    expect(r.code, show(r)).toBe(0);
    const statusLines = r.stdout.match(/^\[\w+\] SUCCEEDED/gm) ?? [];
    expect(statusLines).toEqual(['[prepare] SUCCEEDED', '[train] SUCCEEDED', '[evaluate] SUCCEEDED']);
    expect(r.stdout).toMatch(/^ {2}prepare\s+SUCCEEDED\s+\S+\s+testRows=45 trainRows=105$/m);
    expect(r.stdout).toMatch(/^ {2}train\s+SUCCEEDED\s+\S+\s+accuracy=0\.\d+ loss=0\.\d+$/m);
    expect(r.stdout).toMatch(/^ {2}evaluate\s+SUCCEEDED\s+\S+\s+accuracy=0\.9\d* macroF1=0\.\d+$/m);
  });

  it('exits 1 with the reason when the run fails (accuracy below minAccuracy)', async () => {
    const r = await cli(['run', 'start', 'iris', '--param', 'minAccuracy=0.999', '--watch']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(/^\[evaluate\] FAILED/m);
    expect(r.stdout).toMatch(/below minAccuracy/);
  });

  it('follows a run’s logs live with run logs -f until it ends, exit 1 when it fails', async () => {
    const started = await cli(['run', 'start', 'iris', '--param', 'epochs=300', '--param', 'minAccuracy=0.999', '-q']);
    const id = started.stdout.trim();
    const followed = await cli(['run', 'logs', id, '-f']);
    expect(followed.code, show(followed)).toBe(1); // evaluate fails: below minAccuracy
    expect(followed.stdout).toMatch(/^\[evaluate\] confusion matrix/m);
    expect(followed.stdout).toMatch(/^\[evaluate\] accuracy \d+\.\d% \(\d+\/45\)/m);
    const finished = await cli(['run', 'logs', runId, '--follow', '--node', 'evaluate']);
    expect(finished.code, show(finished)).toBe(0);
    expect(finished.stdout).toMatch(/^accuracy \d+\.\d% \(\d+\/45\)/m);
    // The module's lines only (the host's own, such as its artifacts logged, start with [atelier]).
    expect(finished.stdout).not.toMatch(/^\[(?!atelier\])/m);
  });

  it('clones a run with a changed parameter, and reruns a failed one reusing what succeeded', async () => {
    const clone = await cli(['run', 'clone', runId, '--param', 'epochs=50', '--watch', '--plain']);
    expect(clone.code, show(clone)).toBe(0);
    expect(clone.stdout).toMatch(/^started run [0-9a-f-]{36} \(a clone of /m);
    const failed = await cli(['run', 'start', 'iris', '--param', 'minAccuracy=0.999', '-q']);
    const failedId = failed.stdout.trim();
    await cli(['run', 'watch', failedId, '--plain']);
    const rerun = await cli(['run', 'rerun', failedId, '--watch', '--plain']);
    expect(rerun.stdout).toMatch(/1 task\(s\) execute again, 2 reused from/);
    expect(rerun.code, show(rerun)).toBe(1); // the same parameters fail the same way
    // --node alone means --from nodes; --from nodes without --node, or --node with another --from, is refused
    const noNodes = await cli(['run', 'rerun', failedId, '--from', 'nodes']);
    expect(noNodes.code, show(noNodes)).toBe(1);
    expect(noNodes.stderr).toBe('error: --from nodes needs the nodes to execute again: add --node NODE (repeatable)\n');
    const stray = await cli(['run', 'rerun', failedId, '--from', 'all', '--node', 'train']);
    expect(stray.stderr).toMatch(/^error: --node goes with --from nodes/);
    const nothing = await cli(['run', 'rerun', runId]);
    expect(nothing.stderr).toBe(`nothing of ${runId} failed: --from all, or --node NODE, executes tasks again\n`);
    // started without --watch, a clone or a rerun says how to follow it, as run start does
    expect(nothing.stdout).toMatch(/^follow it with: atelier run watch [0-9a-f-]{36}$/m);
    const unwatched = await cli(['run', 'clone', runId]);
    expect(unwatched.stdout).toMatch(/^started run ([0-9a-f-]{36}) \(a clone of .*\nfollow it with: atelier run watch \1$/m);
    const nodeAlone = await cli(['run', 'rerun', failedId, '--node', 'ghost']);
    expect(nodeAlone.stderr).toMatch(/error \[BAD_USER_INPUT\].*"ghost"/);
    const bad = await cli(['run', 'rerun', failedId, '--from', 'nodes', '--node', 'ghost']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/error \[BAD_USER_INPUT\].*"ghost"/);
  });

  it('reports an unknown workflow as NOT_FOUND', async () => {
    const r = await cli(['run', 'start', 'no-such-workflow']);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/^error \[NOT_FOUND\]: /);
  });

  it('starts a run with --timeout as its time limit, and refuses one beyond the bound naming it', async () => {
    const bad = await cli(['run', 'start', 'iris', '--timeout', '0']);
    expect(bad.code, show(bad)).not.toBe(0);
    expect(bad.stderr).toMatch(/^error \[BAD_USER_INPUT\]: timeoutSeconds must be more than 0 and at most 604800/);
    const notNumber = await cli(['run', 'start', 'iris', '--timeout', 'soon']);
    expect(notNumber.code, show(notNumber)).not.toBe(0);
    expect(notNumber.stderr).toMatch(/expected a number of seconds, got "soon"/);
    const started = await cli(['run', 'start', 'iris', '--timeout', '900', '-q']);
    expect(started.code, show(started)).toBe(0);
    const got = await cli(['run', 'show', started.stdout.trim(), '--json']);
    expect(JSON.parse(got.stdout)).toMatchObject({ timeoutSeconds: 900 });
  });

  it('reports a bad --param value as the run parameter and the value passed, then the task it feeds', async () => {
    const r = await cli(['run', 'start', 'iris', '--param', 'epochs=-5']);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/^error \[BAD_USER_INPUT\]: Run parameters do not fit the workflow's modules \(pass values their schemas accept\):$/m);
    expect(r.stderr).toMatch(
      /^ {2}parameters\.epochs: must be >= 1 \(run parameter "epochs", given to task "train" as parameters\.epochs; schema of .*\) \(you passed --param epochs=-5\)$/m,
    );
  });

  it('refuses a schedule’s, a trigger’s or a monitor action’s parameters that a run would refuse when they are stored, not when they fire', async () => {
    const bad = '^ {2}parameters\\.epochs: must be >= 1 \\(run parameter "epochs", given to task "train" as parameters\\.epochs; schema of .*\\)';
    const scheduled = await cli(['schedule', 'create', 'iris', '--cron', '0 6 * * *', '--param', 'epochs=-5']);
    expect(scheduled.code, show(scheduled)).toBe(1);
    expect(scheduled.stderr).toMatch(/^error \[BAD_USER_INPUT\]: The schedule's parameters do not fit workflow "iris": /);
    expect(scheduled.stderr).toMatch(new RegExp(bad, 'm'));
    const triggered = await cli(['trigger', 'create', 'iris', 'on-iris', '--on', 'http', '--param', 'epochs=-5']);
    expect(triggered.code, show(triggered)).toBe(1);
    expect(triggered.stderr).toMatch(/^error \[BAD_USER_INPUT\]: The trigger's parameters do not fit workflow "iris": /);
    expect(triggered.stderr).toMatch(new RegExp(bad, 'm'));
    const action = '{"kind":"START_WORKFLOW","workflow":"iris","parameters":{"epochs":-5}}';
    const rule = '{"kind":"THRESHOLD","above":100}';
    const monitored = await cli(['monitor', 'create', 'slow', 'workflow:iris', 'latency', '--rule', rule, '--action', action]);
    expect(monitored.code, show(monitored)).toBe(1);
    expect(monitored.stderr).toMatch(/^error \[BAD_USER_INPUT\]: The monitor's parameters do not fit workflow "iris": /);
    expect(monitored.stderr).toMatch(new RegExp(bad, 'm'));
    // A parameter the event fills in is checked when it fires; the fixed ones beside it are checked now.
    const mapped = await cli(['trigger', 'create', 'iris', 'on-iris', '--on', 'http', '--map', 'epochs=/epochs', '--param', 'seed=7', '--paused']);
    expect(mapped.code, show(mapped)).toBe(0);
    const listed = await cli(['schedule', 'list', 'iris']);
    expect(listed.stdout).not.toMatch(/0 6 \* \* \*/);
    expect((await cli(['trigger', 'delete', 'on-iris'])).code).toBe(0);
  });

  it('refuses at create a workflow using a run parameter it does not declare, naming every task and field', async () => {
    const spec = path.join(dataDir, 'undeclared.yaml');
    await writeFile(
      spec,
      'name: undeclared\nparameters:\n  lr: { default: 0.1 }\ntasks:\n  - name: prep\n    module: examples/iris-prepare\n    parameters: { seed: "${params.seed}" }\n  - name: train\n    module: examples/iris-train\n    dependsOn: [prep]\n    parameters: { epochs: "${params.epochs}", lr: "${params.lr}" }\n',
    );
    const r = await cli(['workflow', 'create', spec]);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/^error \[INVALID_WORKFLOW\]: /);
    expect(r.stderr).toMatch(/^ {2}tasks\.prep\.parameters\.seed: uses \$\{params\.seed\}, but the workflow declares no run parameter "seed"/m);
    expect(r.stderr).toMatch(/^ {2}tasks\.train\.parameters\.epochs: uses \$\{params\.epochs\}/m);
    expect((await cli(['workflow', 'list'])).stdout).not.toMatch(/undeclared/);
  });

  it('says to set ATELIER_TOKEN when the token is wrong', async () => {
    const r = await cli(['run', 'get', runId], { ATELIER_TOKEN: 'atl_not-a-real-token' });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/^error \[UNAUTHENTICATED\]/);
    expect(r.stderr).toMatch(/set ATELIER_TOKEN/);
  });

  it('says when the control plane cannot be reached, naming ATELIER_URL and --url', async () => {
    const r = await cli(['workflow', 'list'], { ATELIER_URL: 'http://127.0.0.1:9' });
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr).toMatch(/cannot reach Atelier at http:\/\/127\.0\.0\.1:9 /);
    expect(r.stderr).toMatch(/hint: start it with `npm start`, or point the CLI at the running one with ATELIER_URL=http:\/\/HOST:PORT or --url/);
  });

  it('runs an example module standalone, warning that progress is not reported', async () => {
    const r = await cli([], { ATELIER_PARAMS: '{}' }, [path.join(root, 'examples', 'iris', 'prepare', 'main.mjs')]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/105 train, 45 test/);
    expect(r.stderr).toMatch(/ATELIER_PROGRESS_FD is not set/);
  });
});
