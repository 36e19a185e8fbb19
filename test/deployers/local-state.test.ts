// The local deployer's state file under concurrent writers: a router respawned while a revision restarts saves the
// same deployment's state twice at once. Once such a pair shared a temporary file, one rename failed, the restart
// was abandoned half done and the revision stayed RESTARTING with nobody restarting it.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeploymentState, deploymentDir, readState, saveState } from '../../plugins/deployers/local/state';

let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-deployer-state-'));
});
afterAll(() => rm(stateDir, { recursive: true, force: true }));

const state = (routesVersion: number): DeploymentState => ({
  deployment: { id: 'concurrent', name: 'concurrent', settings: {} } as unknown as DeploymentState['deployment'],
  port: 1,
  router: null,
  split: {},
  routesVersion,
  revisions: {},
});

describe('local deployer state', () => {
  it('takes many writes of one deployment at once: every one succeeds, the last asked for lands, no temporary file is left', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => saveState(stateDir, state(i))));
    expect((await readState(stateDir, 'concurrent'))?.routesVersion).toBe(49);
    expect(await readdir(deploymentDir(stateDir, 'concurrent'))).toEqual(['state.json']);
  });

  it('a write that failed leaves later writes of the same file working', async () => {
    const blocked = (v: number) => ({ ...state(v), deployment: { ...state(v).deployment, id: 'blocked' } });
    await mkdir(path.join(stateDir, 'deployments'), { recursive: true });
    await writeFile(deploymentDir(stateDir, 'blocked'), 'a file where its folder belongs');
    const first = saveState(stateDir, blocked(1));
    const second = rm(deploymentDir(stateDir, 'blocked')).then(() => saveState(stateDir, blocked(2)));
    await expect(first).rejects.toThrow();
    await second;
    expect((await readState(stateDir, 'blocked'))?.routesVersion).toBe(2);
  });
});
