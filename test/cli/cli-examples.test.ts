// The examples every command's --help shows (server/cli/examples.ts's EXAMPLES), each run as written with the real CLI
// against a control plane where the README's iris example is pushed, created and has run (./iris.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../server/cli/examples';
import { showCli } from '../harness/cli';
import { type IrisPlane, irisReady, startIrisPlane } from './iris';

let plane: IrisPlane;
const cli = (args: string[], env: Record<string, string> = {}, command?: string[]) => plane.cli(args, env, command);
const show = showCli;
// A run of iris that succeeded: what RUN_ID stands for.
let firstRunId = '';

beforeAll(async () => {
  plane = await startIrisPlane();
  firstRunId = await irisReady(plane);
});

afterAll(async () => {
  await plane?.stop();
});

describe('atelier CLI with the iris example', () => {
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
