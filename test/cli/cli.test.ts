// End to end for the `atelier` CLI: the real control plane in-process, the real CLI (server/cli/bin.js) as child
// processes, and the iris example pushed, created and run to completion, plus the errors a user meets first.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../server/app';
import { packDirectory } from '../../server/artifacts/archive';
import { sha256 } from '../../server/artifacts/store';
import { createHttpArtifactSource } from '../../server/cli/artifact-source';
import { EXAMPLES } from '../../server/cli/examples';
import { loadConfig } from '../../server/config';
import { repoRoot as root, runCli, showCli } from '../harness/cli';
import { apiClient } from '../harness/client';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

const modules = ['prepare', 'train', 'evaluate'];

let app: App;
let url: string;
let dataDir: string;

const cli = (args: string[], env: Record<string, string> = {}, command?: string[]) => runCli({ url, token: app.adminToken }, args, env, command);
const show = showCli;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gql = (query: string, variables: Record<string, unknown> = {}) => apiClient(url, app.adminToken).gql(query, variables);

/**
 * What `atelier ARGS` prints once it `shows` what the test waits for (or its last output after `ms`). The wait is
 * polled in-process (`ready`: a GraphQL query of the same state, a few ms) and the CLI is run only when that says the
 * state is there: each CLI run is a Node process, ~0.5 s of CPU, and polling the CLI itself every 100 ms ran dozens.
 */
async function cliWhen(args: string[], shows: (stdout: string) => boolean, ready: () => Promise<boolean>, ms = 120_000): Promise<string> {
  let stdout = '';
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    if (!(await ready())) continue;
    stdout = (await cli(args)).stdout;
    if (shows(stdout)) break;
  }
  return stdout;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-cli-'));
  await seedEmbeddedDatabase(dataDir);
  app = await buildApp(
    loadConfig({ PORT: '0', ATELIER_DATA_DIR: dataDir, ATELIER_LOG_LEVEL: 'silent', ATELIER_TICK_MS: '100', ATELIER_DEPLOYMENT_STATS_MS: '200' }),
  );
  url = await app.start();
});

afterAll(async () => {
  await app?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('atelier CLI with the iris example', () => {
  let runId = '';
  let firstRunId = '';

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
    firstRunId = runId;
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

  it('runs every example its --help shows, as written (RUN_ID: a run that succeeded)', async () => {
    const words = (line: string) => [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    // Each command's --help reads no state: ~50 of them, asked four at a time rather than one after another.
    const commands = Object.keys(EXAMPLES);
    const helps: string[] = [];
    for (let next = 0; next < commands.length; next += 4) {
      const batch = commands.slice(next, next + 4).map((command) => cli([...command.split(' ').filter(Boolean), '--help']));
      helps.push(...(await Promise.all(batch)).map((r) => r.stdout));
    }
    for (const [i, [command, lines]] of Object.entries(EXAMPLES).entries()) {
      expect(helps[i], command).toContain('Examples:');
      for (const line of lines) {
        // an example is the command, then (after three spaces or more) what it does
        const args = words(
          line
            .split(/\s{3,}/)[0]!
            .replace(/^atelier /, '')
            .replaceAll('RUN_ID', firstRunId),
        );
        const r = await cli(args);
        expect(r.code, `${line}\n${show(r)}`).toBe(0);
      }
    }
    // `--version` of run start is the workflow's, not the program's (which took it, printed 0.1.0 and started nothing)
    const pinned = await cli(['run', 'start', 'iris', '--version', '1', '-q']);
    expect(pinned.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
    expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  }, 120_000);
});

describe('from the trained iris model to predictions: registry, deployment, new version, failover', () => {
  // The iris runs above registered examples/iris from iris-evaluate (model.json and its server, serve.mjs, left in
  // ATELIER_ARTIFACTS_DIR), version 1 from the first: what the example's README walks through, as written.
  const versions = async () => {
    const shown = await cli(['model', 'show', 'examples/iris']);
    expect(shown.code, show(shown)).toBe(0);
    return [...shown.stdout.matchAll(/^(\d+) +\S+ +iris-softmax /gm)].map((m) => Number(m[1]));
  };
  const deployment = async (serving: number) => {
    const servedBy = (stdout: string) => {
      const ready = /^url +(http:\/\/\S+) +\(ready: serving revision (\d+) \(100%\)\)/m.exec(stdout);
      const version = new RegExp(`^${ready?.[2]} +(\\d+) +SERVING`, 'm').exec(stdout);
      return ready && Number(version?.[1]) === serving && !/FAILED OVER/.test(stdout) ? ready[1]! : null;
    };
    const shown = await cliWhen(
      ['deploy', 'show', 'iris'],
      (stdout) => servedBy(stdout) !== null,
      async () => {
        const { deployment: d } = await gql(
          `{ deployment(name: "iris") { ready failedOver traffic { revision percent } revisions { number state modelVersion { version } } } }`,
        );
        const only = d?.traffic.length === 1 && d.traffic[0].percent === 100 ? d.traffic[0].revision : null;
        const revision = d?.revisions.find((r: { number: number }) => r.number === only);
        return Boolean(d?.ready && !d.failedOver && revision?.state === 'SERVING' && Number(revision.modelVersion?.version) === serving);
      },
    );
    const served = servedBy(shown);
    if (served) return served;
    throw new Error(`deployment iris never served examples/iris version ${serving}:\n${shown}`);
  };
  const predict = async (url: string, body: unknown, path = '/predict') => {
    const res = await fetch(url + path, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const setosa = { features: [5.1, 3.5, 1.4, 0.2] };

  it('serves the registered model through a deployment that follows its alias, moves to a retrained version, fails over and back', async () => {
    expect(await versions()).toContain(1);
    const lineage = await cli(['model', 'lineage', 'examples/iris@1']);
    expect(lineage.stdout).toMatch(/iris-evaluate/);
    // evaluate and train both report an accuracy: each metric under the task that reported it, the model's own first
    expect(lineage.stdout).toMatch(/^metrics evaluate: accuracy=[\d.]+ macroF1=[\d.]+; train: accuracy=[\d.]+ loss=[\d.]+; prepare: /m);
    expect((await cli(['model', 'alias', 'examples/iris', 'champion', '1', '--reason', 'first model'])).code).toBe(0);
    const created = await cli(['deploy', 'create', 'iris', 'examples/iris@champion']);
    expect(created.code, show(created)).toBe(0);
    const url = await deployment(1);
    expect(await predict(url, setosa)).toEqual({
      status: 200,
      body: { class: 'setosa', probabilities: expect.objectContaining({ setosa: expect.any(Number) }), version: 'examples/iris/1' },
    });
    expect(
      await predict(
        url,
        {
          instances: [
            [6.7, 3.0, 5.2, 2.3],
            [5.9, 3.0, 4.2, 1.5],
          ],
        },
        '/v1/models/iris:predict',
      ),
    ).toEqual({
      status: 200,
      body: { predictions: ['virginica', 'versicolor'] },
    });
    expect(await predict(url, { features: [1] })).toEqual({ status: 400, body: { error: expect.stringMatching(/^features must be 4 finite numbers/) } });
    // What the router measured of that traffic, per revision: requests, errors (none: a 400 is the caller's), latency.
    const measuredRow = /^1 +1 +SERVING +READY +0 +\d+ +0\.0% +[\d.]+ +[\d.]+/m;
    const measured = await cliWhen(
      ['deploy', 'show', 'iris'],
      (stdout) => measuredRow.test(stdout),
      async () => {
        await predict(url, setosa);
        const { deployment: d } = await gql(`{ deployment(name: "iris") { revisions { number serving { requests } } } }`);
        return Boolean(d?.revisions.find((r: { number: number }) => r.number === 1)?.serving);
      },
      60_000,
    );
    expect(measured).toMatch(/^REV +VERSION +STATE +HEALTH +RESTARTS +REQ +ERRORS +P50 MS +P99 MS +MESSAGE$/m);
    expect(measured).toMatch(/^1 +1 +SERVING +READY +0 +\d+ +0\.0% +[\d.]+ +[\d.]+/m);

    // Retrained: a new version, registered by the run; moving the alias rolls it out.
    const before = await versions();
    const retrained = await cli(['run', 'start', 'iris', '--param', 'epochs=400', '--param', 'learningRate=0.3', '--watch']);
    expect(retrained.code, show(retrained)).toBe(0);
    const latest = Math.max(...(await versions()));
    expect(before).not.toContain(latest);
    expect((await cli(['model', 'alias', 'examples/iris', 'champion', String(latest), '--reason', 'more epochs'])).code).toBe(0);
    expect(await deployment(latest)).toBe(url);
    expect((await predict(url, setosa)).body.version).toBe(`examples/iris/${latest}`);

    const failover = await cli(['deploy', 'failover', 'iris', '--reason', 'checking the fallback']);
    expect(failover.code, show(failover)).toBe(0);
    // version 1's retired revision takes all traffic, the latest's none: the revisions table says so
    expect(failover.stdout).toMatch(/^1\s+1\s+RETIRED \(fallback 100%\)\s/m);
    expect(failover.stdout).toMatch(new RegExp(`^\\d+\\s+${latest}\\s+HELD \\(failed over\\)\\s`, 'm'));
    expect((await predict(url, setosa)).body.version).toBe('examples/iris/1');
    expect((await cli(['deploy', 'restore', 'iris', '--reason', 'fine'])).code).toBe(0);
    expect((await predict(url, setosa)).body.version).toBe(`examples/iris/${latest}`);

    expect((await cli(['deploy', 'delete', 'iris'])).code).toBe(0);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('creates a canary gated on what its router measures, shows its policy, and refuses a gate it cannot read', async () => {
    const bad = await cli(['deploy', 'create', 'iris-canary', 'examples/iris@champion', '--steps', '10:60,100', '--gate', 'error rate is low']);
    expect(bad.code, show(bad)).not.toBe(0);
    expect(bad.stderr).toMatch(
      /expected METRIC>VALUE \(roll back above\) or METRIC<VALUE \(below\), e\.g\. serving\.error_rate>0\.01; got "error rate is low"/,
    );
    const args = ['--steps', '10:60,100', '--gate', 'serving.error_rate>0.01', '--gate', 'serving.latency_p99_ms>250', '--on-no-data', 'pass'];
    const created = await cli(['deploy', 'create', 'iris-canary', 'examples/iris@champion', ...args]);
    expect(created.code, show(created)).toBe(0);
    const shown = await cli(['deploy', 'show', 'iris-canary']);
    expect(shown.stdout).toMatch(
      /^policy +steps 10% 60s → 100% 60s; gates serving\.error_rate > 0\.01 \(mean\), serving\.latency_p99_ms > 250 \(mean\); no data: pass$/m,
    );
    expect((await cli(['deploy', 'delete', 'iris-canary'])).code).toBe(0);
  });
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
    const cacheDir = path.join(dataDir, 'executor-cache-test');
    const source = createHttpArtifactSource({ url, token: app.adminToken, cacheDir });
    const file = await source.fetch(digest);
    expect(sha256(await readFile(file))).toBe(digest);
    expect(await source.fetch(digest)).toBe(file);

    await writeFile(file, 'damaged');
    const fresh = createHttpArtifactSource({ url, token: app.adminToken, cacheDir });
    expect(await fresh.fetch(digest)).toBe(file);
    expect(sha256(await readFile(file))).toBe(digest);

    await expect(createHttpArtifactSource({ url, token: 'atl_wrong', cacheDir: `${cacheDir}-2` }).fetch(digest)).rejects.toThrow(/HTTP 401.*ATELIER_TOKEN/);
    await expect(source.fetch(`sha256:${'0'.repeat(64)}`)).rejects.toThrow(/HTTP 404/);
  });
});
