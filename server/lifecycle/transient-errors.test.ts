import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { isLostConnection } from './transient-errors';

const here = path.dirname(fileURLToPath(import.meta.url));

it('knows a lost connection by its code, also when wrapped', () => {
  expect(isLostConnection(Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' }))).toBe(true);
  expect(isLostConnection(new Error('outer', { cause: Object.assign(new Error('admin shutdown'), { code: '57P01' }) }))).toBe(true);
  expect(isLostConnection(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
  expect(isLostConnection(new TypeError('x is undefined'))).toBe(false);
  expect(isLostConnection('CONNECTION_CLOSED')).toBe(false);
});

async function runGuarded(rejection: string): Promise<{ code: number | null; out: string }> {
  const script = `
    const { surviveLostConnections } = await import(${JSON.stringify(path.join(here, 'transient-errors.ts'))});
    surviveLostConnections((m) => console.log('logged: ' + m.split('\\n')[0]));
    Promise.reject(${rejection});
    setTimeout(() => { console.log('still alive'); process.exit(0); }, 200);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: path.join(here, '..', '..') });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out };
}

it('keeps the process through a lost connection, and still stops on any other unhandled rejection', async () => {
  const lost = await runGuarded(`Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' })`);
  expect(lost.out).toContain('logged: a background step lost its connection');
  expect(lost.out).toContain('still alive');
  expect(lost.code).toBe(0);
  const bug = await runGuarded(`new TypeError('a real bug')`);
  expect(bug.out).toContain('a real bug');
  expect(bug.out).not.toContain('still alive');
  expect(bug.code).toBe(1);
}, 60_000);
