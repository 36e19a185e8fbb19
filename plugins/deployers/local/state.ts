// What the local deployer keeps per deployment in its state directory (`<stateDir>/<deployment id>/state.json`):
// the processes it started, their ports and health, and the split in force. Written atomically after each change,
// so a new deployer instance (a restarted control plane) re-attaches to the same processes instead of starting more.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Deployment, DeploymentStatus, RevisionHealth, ServingStats, TrafficSplit } from '../../deployer-sdk';
import type { ProcessRef } from './processes';

export interface RevisionState {
  number: number;
  modelVersion: string;
  digest: string;
  /** The version's files, resolved to a local directory at apply. */
  dir: string;
  command: string[];
  /** Put before the command (inside the sandbox): its resource limits (resources.ts). Absent in older states. */
  wrap?: string[];
  /** What of its resources was not placed, said in status messages (resources.ts). */
  note?: string | null;
  /** Null: a TCP connect is the health check. */
  healthPath: string | null;
  env: Record<string, string>;
  /** Loopback port of its server: kept across restarts, so the router's targets never change. */
  port: number;
  process: ProcessRef | null;
  health: RevisionHealth;
  restarts: number;
  message: string | null;
}

export interface DeploymentState {
  deployment: Deployment;
  /** The router's port: the deployment's URL. */
  port: number;
  router: ProcessRef | null;
  split: TrafficSplit;
  /** Bumped on each routes change; the router reports the one it serves. */
  routesVersion: number;
  /**
   * The secret the router's own paths (routes, stats) ask for in ROUTER_KEY_HEADER: the deployment's clients reach the
   * same port, and its split, revisions and traffic are the control plane's to read. Absent in older states.
   */
  routerKey?: string;
  revisions: Record<string, RevisionState>;
}

export const deploymentDir = (stateDir: string, id: string) => path.join(stateDir, 'deployments', id);
const stateFile = (stateDir: string, id: string) => path.join(deploymentDir(stateDir, id), 'state.json');
export const routesFile = (stateDir: string, id: string) => path.join(deploymentDir(stateDir, id), 'routes.json');

/** The field that carries a deployment's routerKey to its router's own paths (router.mjs). */
export const ROUTER_KEY_HEADER = 'x-atelier-router-key';

/** The key of `state`'s router, made (and kept in the state, which the caller saves) when an older state has none. */
export function routerKeyOf(state: DeploymentState): string {
  state.routerKey ??= randomBytes(24).toString('base64url');
  return state.routerKey;
}

export async function readState(stateDir: string, id: string): Promise<DeploymentState | null> {
  try {
    return JSON.parse(await readFile(stateFile(stateDir, id), 'utf8')) as DeploymentState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The states of every deployment in `stateDir` (a directory without a whole state, mid-apply or mid-delete, is skipped). */
export async function readStates(stateDir: string): Promise<DeploymentState[]> {
  let ids: string[];
  try {
    ids = await readdir(path.join(stateDir, 'deployments'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const states = await Promise.all(ids.map((id) => readState(stateDir, id).catch(() => null)));
  return states.filter((s): s is DeploymentState => s !== null);
}

/** Per file, the last write queued: writes of one file land in the order they were asked for. */
const writing = new Map<string, Promise<void>>();

/**
 * Replaces `file` with `text` atomically (a temporary file of its own, renamed over it). Writes of one file are queued:
 * two at once (a router respawned while a revision restarts, both saving the state) would otherwise race, the older
 * text could land last, and a shared temporary name made one rename fail, which left a restart half done.
 */
function writeAtomically(file: string, text: string): Promise<void> {
  const write = async () => {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 }); // both hold the router's key
    await rename(tmp, file);
  };
  const queued = (writing.get(file) ?? Promise.resolve()).then(write, write);
  const settled = queued.catch(() => undefined);
  writing.set(file, settled);
  void settled.then(() => writing.get(file) === settled && writing.delete(file));
  return queued;
}

export const saveState = (stateDir: string, state: DeploymentState) =>
  writeAtomically(stateFile(stateDir, state.deployment.id), JSON.stringify(state, null, 1));

/** The router's view: its port, the split, each revision's server port, and the key its own paths ask for. */
export function writeRoutes(stateDir: string, state: DeploymentState, split: TrafficSplit, version: number) {
  const targets: Record<string, number> = {};
  for (const rev of Object.values(state.revisions)) targets[rev.number] = rev.port;
  const key = routerKeyOf(state);
  return writeAtomically(routesFile(stateDir, state.deployment.id), JSON.stringify({ port: state.port, version, split, targets, key }));
}

/** The status a deployment's state answers, given whether its router is up and serving its routes. */
/** What the deployment runs, as status() answers it; `serving`: what its router measured (routing.ts#servingStats). */
export function statusOf(state: DeploymentState, routerUp: boolean, serving: ServingStats | null = null): DeploymentStatus {
  const revisions = Object.values(state.revisions)
    .sort((a, b) => a.number - b.number)
    .map((r) => ({ number: r.number, modelVersion: r.modelVersion, health: r.health, restarts: r.restarts, message: r.message }));
  const routed = Object.keys(state.split).map(Number);
  const unready = routed.filter((n) => state.revisions[n]?.health !== 'READY');
  const ready = routerUp && routed.length > 0 && unready.length === 0;
  const notes = routed.flatMap((n) => (state.revisions[n]?.note ? [`revision ${n}: ${state.revisions[n]!.note}`] : []));
  const message = ready
    ? [`serving ${routed.map((n) => `revision ${n} (${state.split[n]}%)`).join(', ')}`, ...notes].join('; ')
    : !routed.length
      ? 'no revision has traffic yet'
      : !routerUp
        ? 'the router is not running'
        : `not ready: ${unready.map((n) => `revision ${n} is ${state.revisions[n]?.health ?? 'gone'}${state.revisions[n]?.message ? ` (${state.revisions[n]!.message})` : ''}`).join(', ')}`;
  const status = { deploymentId: state.deployment.id, ready, url: `http://127.0.0.1:${state.port}`, traffic: { ...state.split }, message, revisions };
  return serving ? { ...status, serving } : status;
}
