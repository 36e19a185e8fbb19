// Module push benchmark on the embedded defaults: `atelier module push DIR` of a 1 MB directory of 200 files,
// timed from spawning the CLI to its exit (the version is recorded by then), for new content and for content
// already published (which must upload nothing). The floor, in the same run, is the same CLI doing no work
// (`atelier --version`): node start-up and module loading, which every push pays.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestApp } from '../test/harness/app';
import { percentile, type Row } from './lib';

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'server', 'cli', 'bin.js');
const FILES = 200;
const TOTAL_BYTES = 1024 * 1024;
const SAMPLES = 9;

/** Deterministic, incompressible bytes: gzip cannot shrink them, so the archive really is ~1 MB. */
function noise(seed: string, bytes: number): Buffer {
  const chunks: Buffer[] = [];
  for (let i = 0, n = 0; n < bytes; i++, n += 32) chunks.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(chunks).subarray(0, bytes);
}

function timed(args: string[], env: Record<string, string>): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve({ ms: performance.now() - started, stdout }) : reject(new Error(`atelier ${args.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
}

export async function modulesBench(): Promise<Row[]> {
  const t = await startTestApp();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-bench-push-'));
  try {
    await writeFile(path.join(dir, 'atelier.module.yaml'), 'namespace: bench\nname: big\nentrypoint: main.py\nruntime: python3\n');
    await writeFile(path.join(dir, 'main.py'), 'print("hi")\n');
    const per = Math.floor(TOTAL_BYTES / FILES);
    for (let i = 0; i < FILES - 2; i++) {
      const sub = path.join(dir, `pkg${i % 10}`);
      await mkdir(sub, { recursive: true });
      await writeFile(path.join(sub, `data${i}.bin`), noise(`f${i}`, per));
    }
    const env = { ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken };

    const idle: number[] = [];
    const fresh: number[] = [];
    const unchanged: number[] = [];
    let archiveNote = '';
    for (let i = 0; i < SAMPLES; i++) {
      idle.push((await timed(['--version'], env)).ms);
      // new content each time: one file changes, so the push packs, uploads and records a new version
      await writeFile(path.join(dir, 'pkg0', 'data0.bin'), noise(`changed${i}`, per));
      const pushed = await timed(['module', 'push', dir], env);
      if (!pushed.stdout.startsWith('published')) throw new Error(`expected a new version: ${pushed.stdout}`);
      archiveNote = /\(sha256:[^,]*, ([^;]*);/.exec(pushed.stdout)?.[1] ?? '';
      fresh.push(pushed.ms);
      const again = await timed(['module', 'push', dir], env);
      if (!/nothing uploaded/.test(again.stdout)) throw new Error(`expected no upload: ${again.stdout}`);
      unchanged.push(again.ms);
    }
    const floor = percentile(idle, 50);
    const median = percentile(fresh, 50);
    const same = percentile(unchanged, 50);
    return [
      {
        bench: 'modules',
        metric: 'push 1 MB / 200 files, CLI start → version recorded, p50',
        value: median,
        unit: 'ms',
        floor,
        ratio: median / floor,
        note: `${SAMPLES} pushes; ${archiveNote}; floor: \`atelier --version\``,
      },
      {
        bench: 'modules',
        metric: 'push 1 MB / 200 files, CLI start → version recorded, p90',
        value: percentile(fresh, 90),
        unit: 'ms',
        floor,
        ratio: percentile(fresh, 90) / floor,
      },
      {
        bench: 'modules',
        metric: 'push again unchanged (0 bytes uploaded), p50',
        value: same,
        unit: 'ms',
        floor,
        ratio: same / floor,
        note: 'existing version returned by digest',
      },
    ];
  } finally {
    await t.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
