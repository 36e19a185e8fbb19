// Starts a throwaway nats-server with JetStream for tests. Call stop() from afterAll: it kills the server and
// removes its storage even when tests failed; a hook on process exit kills it if the runner dies first.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  /** Kills the server with `signal` and, `downMs` later, starts it again on the same port and storage (a crash and its restart). */
  restart(signal?: NodeJS.Signals, downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const START_TRIES = 3;

export async function startNats(): Promise<NatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), 'atelier-nats-'));
  const failures: string[] = [];
  try {
    for (let attempt = 0; attempt < START_TRIES; attempt++) {
      const port = await freePort();
      const started = await launch(port, storeDir).catch((err: Error) => {
        failures.push(err.message);
        return undefined;
      });
      if (started) return started;
    }
  } catch (err) {
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  await rm(storeDir, { recursive: true, force: true });
  throw new Error(`nats-server did not start:\n${failures.join('\n')}`);
}

function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  // Debian installs it in /usr/sbin, which is not on every user's PATH.
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

async function launch(port: number, storeDir: string): Promise<NatsServer> {
  const child = spawn(natsServerBinary(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let markReady!: () => void;
  // The server's own "ready" line, not a TCP probe: a probe could reach another process that won the port.
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
    if (output.includes('Server is ready')) markReady();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));

  const onExit = () => {
    child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  try {
    await Promise.race([
      ready.then(() => waitForPort(port, START_TIMEOUT_MS)),
      timeout(START_TIMEOUT_MS, () => `nats-server was not ready within ${START_TIMEOUT_MS} ms:\n${output}`),
      spawnFailed,
      exited.then(() => {
        throw new Error(`nats-server exited before accepting connections:\n${output}`);
      }),
    ]);
  } catch (err) {
    await kill(child, exited);
    process.removeListener('exit', onExit);
    throw err;
  }

  let stopped: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    async restart(signal = 'SIGKILL', downMs = 0) {
      process.removeListener('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await kill(child, exited);
      await new Promise((resolve) => setTimeout(resolve, downMs));
      // The port was just freed; another process may take it meanwhile, so try a few times before giving up.
      let lastError: unknown;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          const next = await launch(port, storeDir);
          Object.assign(this, { restart: next.restart, stop: next.stop });
          return;
        } catch (error) {
          lastError = error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      throw lastError;
    },
    stop() {
      stopped ??= (async () => {
        process.removeListener('exit', onExit);
        await kill(child, exited);
        await rm(storeDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

async function kill(child: ChildProcess, exited: Promise<void>) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function timeout(ms: number, message: () => string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message())), ms).unref());
}

/** Resolves once the port accepts TCP connections. */
async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
