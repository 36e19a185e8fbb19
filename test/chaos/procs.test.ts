// The chaos suite's process watcher: it must see a module under its host, and call it an orphan when it outlives
// its host's SIGKILL by the grace period (the suite's "module processes alive after their host died").
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { watchModuleProcesses } from './procs';

const spawned: number[] = [];
afterAll(() => {
  for (const pid of spawned) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

/** A stand-in host: starts a detached "module" that sets the chaos title and sleeps, prints its pid, and waits. */
function startHost(task: string): Promise<{ host: ChildProcess; modulePid: number }> {
  const module = `process.title = 'atelier-chaos ' + Date.now(); setTimeout(() => {}, 20000);`;
  const host = spawn(
    process.execPath,
    [
      '-e',
      `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(module)}], { detached: true, stdio: 'ignore', env: { ...process.env, ATELIER_TASK_ID: '${task}', ATELIER_ATTEMPT: '1' } }); console.log(c.pid); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve) => host.stdout!.once('data', (d: Buffer) => resolve({ host, modulePid: Number(String(d).trim()) })));
}

it('sees a module under its host and counts it as an orphan once it outlives the host’s SIGKILL', async () => {
  const task = randomUUID();
  const { host, modulePid } = await startHost(task);
  spawned.push(modulePid, host.pid!);
  // Another suite's host and module on the same machine (a chaos run beside this one): none of this watcher's business.
  const stranger = await startHost(randomUUID());
  spawned.push(stranger.modulePid, stranger.host.pid!);
  const watcher = watchModuleProcesses({ everyMs: 100, graceMs: 500, hostPids: () => (host.exitCode === null && host.signalCode === null ? [host.pid!] : []) });
  try {
    for (let i = 0; i < 100 && !watcher.seen().some((p) => p.task === task && p.hostPid === host.pid); i++) await watcher.sampleNow();
    expect(watcher.seen().find((p) => p.task === task)).toMatchObject({ task, attempt: 1, pid: modulePid, hostPid: host.pid });
    expect(watcher.orphans()).toEqual([]);
    await watcher.sampleNow();
    host.kill('SIGKILL');
    await new Promise((r) => host.once('exit', r));
    watcher.hostKilled(host.pid!);
    await new Promise((r) => setTimeout(r, 1_000));
    await watcher.sampleNow();
    expect(watcher.orphans()).toMatchObject([{ task, pid: modulePid, hostPid: host.pid }]);
    expect(watcher.underKilledHosts()).toBe(1);
    // It saw, and would end, only its own hosts' modules.
    expect(watcher.seen().map((p) => p.task)).toEqual([task]);
    expect(await watcher.alive()).toEqual([modulePid]);
  } finally {
    await watcher.stop();
  }
}, 60_000);
