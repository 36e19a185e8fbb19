// The local deployer's hold on a deployment's router (router.mjs): starting it on the deployment's port (waiting for
// a dead one's closing connections to release it), switching its routes by SIGHUP, and waiting until it confirms
// the routes version it serves. Called under the deployment's lock.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeployerError, type DeployerErrorCode, type ServingStats, type TrafficSplit } from '../../deployer-sdk';
import { alive, portFree, probe, sleep, startProcess, tail } from './processes';
import { type DeploymentState, deploymentDir, ROUTER_KEY_HEADER, routerKeyOf, routesFile, saveState, writeRoutes } from './state';

const routerScript = fileURLToPath(new URL('./router.mjs', import.meta.url));

/** Makes the router serve `split` (starting it when it is not running) and waits until it says it does. */
export async function routeVia(
  { stateDir, name, starting }: { stateDir: string; name: string; starting: WeakSet<DeploymentState> },
  state: DeploymentState,
  split: TrafficSplit,
): Promise<void> {
  const refuse = (code: DeployerErrorCode, message: string) => new DeployerError(code, message, name);
  const version = state.routesVersion + 1;
  await writeRoutes(stateDir, state, split, version);
  const id = state.deployment.id;
  const dir = deploymentDir(stateDir, id);
  let spawned = false;
  const spawnRouter = async () => {
    spawned = true;
    starting.add(state);
    // A router that died with connections open leaves them closing for a moment (the port is busy until the
    // clients close their side): a router started again waits for them, a first one does not.
    const waitUntil = Date.now() + (state.routesVersion > 0 ? 15_000 : 0);
    while (!(await portFree(state.port))) {
      if (Date.now() >= waitUntil) throw refuse('PORT_IN_USE', `port ${state.port} of deployment ${id} is in use: free it or choose another settings.port`);
      await sleep(50);
    }
    state.router = await startProcess({
      stateDir,
      command: [process.execPath, routerScript, routesFile(stateDir, id)],
      cwd: dir,
      env: { PATH: process.env.PATH ?? '' },
      stdout: path.join(dir, 'router.log'),
      stderr: path.join(dir, 'router.log'),
    });
    // On disk at once: were this call to fail (the router never confirms), a new deployer instance would otherwise
    // not know the router runs, and it would hold the deployment's port with nothing to stop it.
    await saveState(stateDir, state);
  };
  try {
    // A router reads its routes at start; a running one rereads them on SIGHUP.
    if (await alive(state.router)) process.kill(state.router!.pid, 'SIGHUP');
    else await spawnRouter();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const answer = await probe(state.port, '/__atelier/routes', 500, { [ROUTER_KEY_HEADER]: routerKeyOf(state) });
      if (answer?.status === 200 && JSON.parse(answer.body).version === version) break;
      // A router signalled before it installed its handler (a deployer that died right after starting it) dies of
      // the SIGHUP: start it once more, it reads the new routes at start.
      if (!spawned && !(await alive(state.router))) {
        await spawnRouter();
        continue;
      }
      if (!(await alive(state.router)) || Date.now() > deadline) {
        const why = await tail(path.join(deploymentDir(stateDir, id), 'router.log'), 3);
        if (/EADDRINUSE/.test(why)) throw refuse('PORT_IN_USE', `port ${state.port} of deployment ${id} is in use: free it or choose another settings.port`);
        throw new Error(`${name}: the router of deployment ${id} did not take the new routes: ${why || 'no output'}`);
      }
      await sleep(10);
    }
  } finally {
    starting.delete(state);
  }
  state.routesVersion = version;
  state.split = split;
  await saveState(stateDir, state);
}

/** What `state`'s router measured of its revisions' traffic (serving-stats.mjs), or null when it cannot say now. */
export async function servingStats(state: DeploymentState): Promise<ServingStats | null> {
  const answer = await probe(state.port, '/__atelier/stats', 500, { [ROUTER_KEY_HEADER]: routerKeyOf(state) });
  if (answer?.status !== 200) return null;
  try {
    return JSON.parse(answer.body) as ServingStats;
  } catch {
    return null; // cut short: the next status has them
  }
}
