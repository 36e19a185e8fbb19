// A process group's liveness (plugins/process-group.ts), which every local attempt's finalize asks once its module
// has exited: a group with no member left is decided without reading /proc (the scan reads every process's stat, as
// the host starts its next attempt), and a group whose leader is gone but a member lives is still alive.
import { spawn } from 'node:child_process';
import { expect, it, vi } from 'vitest';

// Counts the scans of /proc, however they list it.
const scans = vi.hoisted(() => ({ count: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return {
    ...actual,
    readdirSync: ((...args: Parameters<typeof actual.readdirSync>) => {
      if (args[0] === '/proc') scans.count++;
      return actual.readdirSync(...args);
    }) as typeof actual.readdirSync,
  };
});
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    readdir: ((...args: Parameters<typeof actual.readdir>) => {
      if (args[0] === '/proc') scans.count++;
      return actual.readdir(...args);
    }) as typeof actual.readdir,
  };
});
const { groupAlive, startTimeOf } = await import('../../plugins/process-group');

async function startGroup(command: string) {
  const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: 'ignore' });
  await new Promise((resolve) => child.once('spawn', resolve));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { handle: { pid: child.pid!, pgid: child.pid!, startTime: startTimeOf(child.pid!) }, exited };
}

it('says a group with no member left is gone without scanning /proc', async () => {
  const { handle, exited } = await startGroup('exec sleep 30');
  expect(await groupAlive(handle)).toBe(true);
  process.kill(-handle.pgid, 'SIGKILL');
  await exited;
  scans.count = 0;
  expect(await groupAlive(handle)).toBe(false);
  expect(scans.count).toBe(0);
});

it('says a group whose leader has exited is alive while a member runs, and gone once it ends', async () => {
  const { handle, exited } = await startGroup('sleep 30 & exit 0');
  await exited;
  expect(await groupAlive(handle)).toBe(true);
  process.kill(-handle.pgid, 'SIGKILL');
  const deadline = Date.now() + 5_000;
  while ((await groupAlive(handle)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(await groupAlive(handle)).toBe(false);
});
