// The `local` deployer: serves each revision's `serve` entrypoint as a real child process on a free loopback port,
// health-checked at start (GET its health path, with a deadline) and while READY (health.ts: a hung server is
// restarted too), within what it can place of the revision's resources (resources.ts), and restarted with
// exponential backoff after a crash until it has used its restarts (then FAILED, with the end of its stderr); a
// router process per deployment (router.mjs, driven by routing.ts), on the deployment's own port, splits requests
// across revisions by the traffic split. Everything it started is recorded in its state directory, so a new instance
// re-attaches instead of starting it twice.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  checkSplit,
  type Deployer,
  DeployerError,
  type Deployment,
  type DeploymentStatus,
  defineDeployer,
  normaliseSplit,
  type Revision,
  type TrafficSplit,
} from '../../deployer-sdk';
import { healthWatch } from './health';
import type { LocalDeployerOptions } from './options';
import { DEFAULT_DEPLOY_PORTS, settingsPortProblem } from './ports';
import { alive, freePort, healthy, portFree, sleep, startProcess, stopProcess, tail } from './processes';
import { type Placement, place } from './resources';
import { routeVia, servingStats } from './routing';
import { type Isolation, probeBwrap, SANDBOX_MODEL_DIR, sandboxed } from './sandbox';
import { type DeploymentState, deploymentDir, type RevisionState, readState, readStates, saveState, statusOf } from './state';

export type { LocalDeployerOptions } from './options';
export { liveProcesses } from './processes';

const idRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function createLocalDeployer(options: LocalDeployerOptions): Deployer {
  const name = options.name ?? 'local';
  const { stateDir } = options;
  const startupMs = options.startupMs ?? 15_000;
  const maxRestarts = options.maxRestarts ?? 3;
  const backoffMs = options.backoffMs ?? 500;
  const health = healthWatch({ everyMs: options.healthEveryMs ?? 2_000, timeoutMs: options.healthTimeoutMs ?? 1_000, failures: options.healthFailures ?? 3 });
  const loaded = new Map<string, Promise<DeploymentState | null>>();
  const locks = new Map<string, Promise<unknown>>();
  const supervising = new Set<string>();
  /** Deleted deployments' states: a restart queued before the delete must not bring a server back. */
  const gone = new WeakSet<DeploymentState>();
  /** Deployments whose router was started and has not yet confirmed its routes: not ready, though its pid lives. */
  const routerStarting = new WeakSet<DeploymentState>();
  const pushRoutes = (state: DeploymentState, split: TrafficSplit) => routeVia({ stateDir, name, starting: routerStarting }, state, split);
  let closed = false;
  const bwrapCheck = options.isolation === 'none' ? null : probeBwrap();
  if (options.isolation === 'bwrap' && bwrapCheck && !bwrapCheck.ok)
    throw new Error(`${name}: isolation "bwrap" asked for, but bwrap does not run here (${bwrapCheck.reason}): install bubblewrap, or choose isolation "none"`);
  const isolation: Isolation = bwrapCheck?.ok ? 'bwrap' : 'none';
  const hide = [stateDir, ...(options.hidePaths ?? [])].map((p) => path.resolve(p)).filter((p) => existsSync(p));

  const ports = options.ports ?? DEFAULT_DEPLOY_PORTS;
  const refuse = (code: ConstructorParameters<typeof DeployerError>[0], message: string) => new DeployerError(code, message, name);

  /** Runs changes to one deployment one at a time. */
  function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (locks.get(id) ?? Promise.resolve()).then(fn, fn);
    locks.set(
      id,
      run.catch(() => undefined),
    );
    return run;
  }

  /** The deployment's state, read (and re-attached to) once per instance. */
  function load(id: string): Promise<DeploymentState | null> {
    let state = loaded.get(id);
    if (!state) {
      state = readState(stateDir, id).then(async (s) => (s ? attach(s) : null));
      loaded.set(id, state);
      state.catch(() => loaded.delete(id));
    }
    return state;
  }

  /** Adopts what still runs; servers that died while no deployer watched are restarted, a dead router respawned. */
  async function attach(state: DeploymentState): Promise<DeploymentState> {
    for (const rev of Object.values(state.revisions)) {
      if (rev.health === 'FAILED') continue;
      if ((await alive(rev.process)) && (await healthy(rev.port, rev.healthPath))) {
        rev.health = 'READY';
        continue;
      }
      await stopProcess(rev.process);
      rev.process = null;
      rev.health = 'RESTARTING';
      rev.message = 'the server stopped while no deployer watched it; restarting';
      supervise(state, rev);
    }
    if (Object.keys(state.split).length && !(await alive(state.router))) await pushRoutes(state, state.split);
    return state;
  }

  const serverEnv = (rev: RevisionState): Record<string, string> => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? rev.dir,
    ...rev.env,
    PORT: String(rev.port),
    HOST: '127.0.0.1',
    MODEL_DIR: isolation === 'bwrap' ? SANDBOX_MODEL_DIR : rev.dir,
    MODEL_VERSION: rev.modelVersion,
    ATELIER_REVISION: String(rev.number),
  });

  const logFile = (state: DeploymentState, rev: RevisionState, stream: 'stdout' | 'stderr') =>
    path.join(deploymentDir(stateDir, state.deployment.id), `revision-${rev.number}.${stream}.log`);

  /** Waits until the server answers its health path; 'exited' when it died first, 'timeout' past the deadline. */
  async function waitHealthy(rev: RevisionState): Promise<'ready' | 'exited' | 'timeout'> {
    const deadline = Date.now() + startupMs;
    while (Date.now() < deadline) {
      if (!(await alive(rev.process))) return 'exited';
      if (await healthy(rev.port, rev.healthPath, 500)) return 'ready';
      await sleep(25);
    }
    return 'timeout';
  }

  /**
   * Starts a revision's server until it is READY, restarting it with backoff after each failure (`failure`: why it
   * has just stopped once already) until `maxRestarts` are spent, then marks it FAILED with the end of its stderr.
   */
  async function runRevision(state: DeploymentState, rev: RevisionState, failure: string | null): Promise<void> {
    let last = failure;
    for (;;) {
      if (failure) {
        // A closing deployer leaves the restart to the next instance (its attach restarts what is not running).
        if (closed) {
          rev.health = 'RESTARTING';
          rev.process = null;
          return saveState(stateDir, state);
        }
        // Not ready from the moment its failure is known: nothing awaited below may show it READY with the new count.
        rev.health = 'RESTARTING';
        rev.restarts++;
        const stderr = await tail(logFile(state, rev, 'stderr'));
        if (rev.restarts > maxRestarts) {
          rev.health = 'FAILED';
          rev.process = null;
          const limit = rev.wrap?.join(' ').match(/--data=(\d+)/)?.[1];
          const hint = limit ? ` (it runs with resources.memoryMb ${Number(limit) / 1024 / 1024}: allocations past it fail)` : '';
          rev.message = `${failure}, ${maxRestarts} restarts used${hint}; stderr: ${stderr || '(empty)'}`;
          await saveState(stateDir, state);
          return;
        }
        last = failure;
        const delay = backoffMs * 2 ** (rev.restarts - 1);
        rev.health = 'RESTARTING';
        rev.message = `${failure}; restart ${rev.restarts} of ${maxRestarts} in ${delay} ms`;
        await saveState(stateDir, state);
        await sleep(delay);
      }
      rev.process = await startProcess({
        stateDir,
        command: isolation === 'bwrap' ? sandboxed([...(rev.wrap ?? []), ...rev.command], { dir: rev.dir, hide }) : [...(rev.wrap ?? []), ...rev.command],
        cwd: rev.dir,
        env: serverEnv(rev),
        stdout: logFile(state, rev, 'stdout'),
        stderr: logFile(state, rev, 'stderr'),
      }).catch((error: Error) => {
        failure = `the server could not start (${error.message})`;
        return null;
      });
      if (!rev.process) continue;
      if (rev.health !== 'RESTARTING') rev.health = 'STARTING';
      await saveState(stateDir, state);
      const result = await waitHealthy(rev);
      if (result === 'ready') {
        rev.health = 'READY';
        // What was not placed of its resources, and why it was last restarted: READY, but worth a look.
        rev.message = [rev.note, last && `restarted after: ${last}`].filter(Boolean).join('; ') || null;
        await saveState(stateDir, state);
        return;
      }
      await stopProcess(rev.process); // past its deadline, or what is left of its group after it exited
      failure =
        result === 'timeout'
          ? `the server did not answer ${rev.healthPath ? `GET ${rev.healthPath}` : 'a TCP connect'} within ${startupMs} ms`
          : 'the server exited before it was ready';
    }
  }

  /**
   * Restarts a crashed server in the background, under the deployment's lock; `hung`: one that lives but stopped
   * answering its health path (why, in words), stopped first.
   */
  function supervise(state: DeploymentState, rev: RevisionState, hung?: string) {
    const key = `${state.deployment.id}#${rev.number}`;
    if (supervising.has(key) || closed || gone.has(state)) return;
    supervising.add(key);
    const pid = rev.process?.pid;
    void withLock(state.deployment.id, async () => {
      if (gone.has(state) || rev.health === 'FAILED') return;
      // Hung: only the process that was probed (an apply may have replaced it meanwhile); crashed: only if dead.
      if (hung ? rev.process?.pid !== pid || rev.health !== 'READY' : await alive(rev.process)) return;
      rev.health = 'RESTARTING'; // not ready while it (or what is left of it) stops
      try {
        await stopProcess(rev.process); // what is left of its group (a sandboxed server whose bwrap was killed)
        rev.process = null;
        await runRevision(state, rev, hung ?? 'the server exited');
      } catch (error) {
        // Never left RESTARTING with nobody restarting it (a state write that failed mid-restart did): stop what the
        // interrupted try started, say why, and try again; each try counts as a restart, so a lasting fault ends FAILED.
        if (gone.has(state) || closed || rev.restarts > maxRestarts) return; // FAILED, or left to the next instance
        await stopProcess(rev.process).catch(() => undefined);
        rev.process = null;
        rev.health = 'RESTARTING';
        rev.message = `a restart was interrupted (${(error as Error).message}); trying again`;
        setTimeout(() => supervise(state, rev), backoffMs).unref();
      }
    })
      .catch(() => undefined)
      .finally(() => supervising.delete(key));
  }

  /** Starts a router that died again, with the split in force, under the deployment's lock. */
  function reviveRouter(state: DeploymentState) {
    const key = `${state.deployment.id}#router`;
    if (supervising.has(key) || closed || gone.has(state)) return;
    supervising.add(key);
    void withLock(state.deployment.id, async () => {
      if (!gone.has(state) && !(await alive(state.router))) await pushRoutes(state, state.split);
    })
      .catch(() => undefined)
      .finally(() => supervising.delete(key));
  }

  const checker = setInterval(async () => {
    for (const pending of loaded.values()) {
      const state = await pending.catch(() => null);
      if (!state) continue;
      for (const rev of Object.values(state.revisions)) {
        if (rev.health !== 'READY') continue;
        if (!(await alive(rev.process))) supervise(state, rev);
        else health.check(`${state.deployment.id}#${rev.number}`, rev, (why) => supervise(state, rev, why));
      }
      if (Object.keys(state.split).length && !(await alive(state.router))) reviveRouter(state);
    }
  }, options.checkMs ?? 500);
  checker.unref();

  /** Stops everything a deployment runs and forgets it (under its lock). */
  async function discard(state: DeploymentState) {
    const { id } = state.deployment;
    gone.add(state);
    await stopProcess(state.router);
    await Promise.all(Object.values(state.revisions).map((r) => stopProcess(r.process)));
    await rm(deploymentDir(stateDir, id), { recursive: true, force: true });
    loaded.delete(id);
    health.forget(id);
  }

  const describe = async (state: DeploymentState): Promise<DeploymentStatus> => {
    const routerUp = !routerStarting.has(state) && (await alive(state.router));
    return statusOf(state, routerUp, routerUp ? await servingStats(state) : null);
  };

  async function existing(id: string): Promise<DeploymentState> {
    const state = idRe.test(id) ? await load(id) : null;
    if (!state) throw refuse('UNKNOWN_DEPLOYMENT', `no deployment ${id} here: apply a revision to create it`);
    return state;
  }

  async function route(id: string, split: TrafficSplit): Promise<DeploymentStatus> {
    return withLock(id, async () => {
      const state = await existing(id);
      checkSplit(split, (await describe(state)).revisions, name);
      await pushRoutes(state, normaliseSplit(split));
      return describe(state);
    });
  }

  return defineDeployer({
    name,

    async apply(deployment: Deployment, revision: Revision) {
      const { id } = deployment;
      if (!idRe.test(id)) throw refuse('BAD_SETTINGS', `deployment id "${id}" must be letters, digits, dots, dashes and underscores`);
      const serve = revision.serve;
      if (!serve?.command.length)
        throw refuse(
          'NO_SERVE_ENTRYPOINT',
          `model version ${revision.modelVersion.ref} has no serve entrypoint: register the version with a serve command to deploy it`,
        );
      const port = deployment.settings.port;
      const badPort = settingsPortProblem(port, ports);
      if (badPort) throw refuse('BAD_SETTINGS', badPort);
      const placement = place(revision.resources);
      if ('refused' in placement) throw refuse('BAD_SETTINGS', `revision ${revision.number} of ${id}: ${placement.refused}`);
      const placed: Placement = placement;
      return withLock(id, async () => {
        let state = await load(id);
        const held = state?.revisions[revision.number];
        if (held && held.digest !== revision.modelVersion.digest)
          throw refuse(
            'REVISION_CONFLICT',
            `revision ${revision.number} of ${id} was applied with ${held.modelVersion} (${held.digest}): give a new revision a new number`,
          );
        // A deployment applied before installations were tagged takes its control plane's id with its next revision.
        if (state && !state.deployment.installation && deployment.installation) {
          state.deployment.installation = deployment.installation;
          await saveState(stateDir, state);
        }
        if (held && held.health !== 'FAILED') return describe(state!);
        const fresh = !state;
        if (!state) {
          const chosen = (port as number | undefined) ?? (await freePort());
          if (!(await portFree(chosen))) throw refuse('PORT_IN_USE', `port ${chosen} for deployment ${id} is in use: free it or choose another settings.port`);
          await mkdir(deploymentDir(stateDir, id), { recursive: true });
          state = { deployment, port: chosen, router: null, split: {}, routesVersion: 0, revisions: {} };
          loaded.set(id, Promise.resolve(state));
        }
        // A first apply that fails after starting something (the router lost the port to another process between the
        // check above and its start; the files could not be fetched) leaves nothing behind: no deployment was made.
        try {
          return await startRevision(state, held ?? null);
        } catch (error) {
          if (fresh) await discard(state);
          throw error;
        }
      });

      async function startRevision(state: DeploymentState, held: RevisionState | null) {
        const rev: RevisionState = held ?? {
          number: revision.number,
          modelVersion: revision.modelVersion.ref,
          digest: revision.modelVersion.digest,
          dir: typeof revision.modelVersion.files === 'string' ? revision.modelVersion.files : await revision.modelVersion.files(),
          command: serve!.command,
          wrap: placed.wrap,
          note: placed.note,
          healthPath: serve!.healthPath === undefined ? '/health' : serve!.healthPath,
          env: { ...revision.env, ...placed.env },
          port: await freePort(),
          process: null,
          health: 'STARTING',
          restarts: 0,
          message: null,
        };
        Object.assign(rev, { restarts: 0, message: null, health: 'STARTING' });
        state.revisions[rev.number] = rev;
        await saveState(stateDir, state);
        await runRevision(state, rev, null);
        const first = Object.keys(state.split).length === 0 && rev.health === 'READY';
        await pushRoutes(state, first ? { [rev.number]: 100 } : state.split);
        return describe(state);
      }
    },

    async status(id) {
      return describe(await existing(id));
    },

    setTraffic: route,

    rollback: (id, toRevision) => route(id, { [toRevision]: 100 }),

    async delete(id) {
      if (!idRe.test(id)) return;
      await withLock(id, async () => {
        // Not load(): attaching would restart what is about to be stopped.
        const state = (await loaded.get(id)?.catch(() => null)) ?? (await readState(stateDir, id));
        if (state) await discard(state);
        else await rm(deploymentDir(stateDir, id), { recursive: true, force: true });
      });
    },

    // The state directory is this deployer's alone, but two control planes may share one: the id each state was applied with decides.
    async list(installation) {
      const states = await readStates(stateDir);
      return states.filter((st) => st.deployment.installation === installation).map((st) => ({ id: st.deployment.id, name: st.deployment.name }));
    },

    async close() {
      closed = true;
      clearInterval(checker);
    },
  });
}
