// Starts a throwaway nats-server with JetStream for tests. Call stop() from afterAll: it kills the server and
// removes its storage even when tests failed; a hook on process exit kills it if the runner dies first.
// restart() stops it (SIGTERM or SIGKILL) and starts it again on the same port and store directory, so what
// JetStream had persisted is there again, as after an operator's restart.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitHandlersOnTermination } from './on-termination';
import { freePort } from './ports';

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** JetStream's store directory, kept across restarts. */
  storeDir: string;
  /**
   * Replaces the configuration `config` gave (an authorization block: users removed, passwords changed) and has the
   * running server reload it (SIGHUP), as an operator does; resolves once it has.
   */
  reconfigure(config: string): Promise<void>;
  /** Stops the server with `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash), waits `downMs`, starts it again. */
  restart(signal?: 'SIGTERM' | 'SIGKILL', downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
/** A restarted server first recovers its JetStream store, which takes longer the more it holds. */
const RESTART_TIMEOUT_MS = 90_000;
const START_TRIES = 3;

interface Launched {
  child: ChildProcess;
  exited: Promise<void>;
  /** Resolves once the server's output has `text` in it after this call. */
  logs(text: string): Promise<void>;
}

export interface NatsOptions {
  /** The server's max_payload (default: nats-server's own, 1 MiB): the largest message a client may publish. */
  maxPayloadBytes?: number;
  /** More of nats-server's configuration file (an `authorization { users = [...] }` block). */
  config?: string;
}

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), 'atelier-nats-'));
  const extra: string[] = [];
  const configFile = join(storeDir, 'nats.conf');
  // JetStream and its store in the file, not in flags: a reload (SIGHUP) of a file without them shuts JetStream down
  // (nats-server 2.9 keeps no -js across it), and one that adds store_dir beside -sd is refused.
  const configText = (config = '') =>
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }\n${options.maxPayloadBytes !== undefined ? `max_payload: ${options.maxPayloadBytes}\n` : ''}${config}\n`;
  if (options.maxPayloadBytes !== undefined || options.config !== undefined) {
    await writeFile(configFile, configText(options.config));
    extra.push('-c', configFile);
  }
  const failures: string[] = [];
  let port = 0;
  let current: Launched | undefined;
  const onExit = () => {
    current?.child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  exitHandlersOnTermination();
  for (let attempt = 0; attempt < START_TRIES && !current; attempt++) {
    port = await freePort();
    current = await launch(port, storeDir, START_TIMEOUT_MS, extra).catch((err: Error) => {
      failures.push(err.message);
      return undefined;
    });
  }
  if (!current) {
    process.removeListener('exit', onExit);
    await rm(storeDir, { recursive: true, force: true });
    throw new Error(`nats-server did not start:\n${failures.join('\n')}`);
  }

  let stopped: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async reconfigure(config) {
      if (!extra.length) throw new Error('startNats({ config }) first: this server reads no configuration file');
      await writeFile(configFile, configText(config));
      const reloaded = current!.logs('Reloaded server configuration');
      current!.child.kill('SIGHUP');
      await Promise.race([reloaded, timeout(START_TIMEOUT_MS, () => 'nats-server did not reload its configuration')]);
    },
    async restart(signal = 'SIGTERM', downMs = 0) {
      if (stopped) throw new Error('nats-server was stopped: it cannot be restarted');
      await kill(current!, signal);
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      // The port was ours a moment ago; a start can still fail while the old socket lingers, so try again.
      const errors: string[] = [];
      for (let i = 0; i < 5; i++) {
        const next = await launch(port, storeDir, RESTART_TIMEOUT_MS, extra).catch((err: Error) => {
          errors.push(err.message);
          return undefined;
        });
        if (next) {
          current = next;
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`nats-server did not start again on port ${port}:\n${errors.slice(-3).join('\n')}`);
    },
    stop() {
      stopped ??= (async () => {
        process.removeListener('exit', onExit);
        await kill(current!, 'SIGTERM');
        await rm(storeDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

function natsServerBinary(): string {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  // Debian installs it in /usr/sbin, which is not on every user's PATH.
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
}

async function launch(port: number, storeDir: string, startTimeoutMs = START_TIMEOUT_MS, extra: string[] = []): Promise<Launched> {
  // A configuration file (extra: -c FILE) names the store itself.
  const store = extra.length ? [] : ['-sd', storeDir];
  const child = spawn(natsServerBinary(), [...extra, '-js', '-a', '127.0.0.1', '-p', String(port), ...store], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let markReady!: () => void;
  // The server's own "ready" line, not a TCP probe: a probe could reach another process that won the port.
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const watching: { text: string; from: number; seen: () => void }[] = [];
  let written = 0;
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    written += text.length;
    output = (output + text).slice(-8_000);
    if (output.includes('Server is ready')) markReady();
    for (const w of [...watching])
      if (output.slice(Math.max(0, output.length - (written - w.from))).includes(w.text)) {
        watching.splice(watching.indexOf(w), 1);
        w.seen();
      }
  };
  const logs = (text: string) => new Promise<void>((seen) => watching.push({ text, from: written, seen }));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  const launched = { child, exited, logs };
  try {
    await Promise.race([
      ready.then(() => waitForPort(port, startTimeoutMs)),
      timeout(startTimeoutMs, () => `nats-server was not ready within ${startTimeoutMs} ms:\n${output}`),
      spawnFailed,
      exited.then(() => {
        throw new Error(`nats-server exited before accepting connections:\n${output}`);
      }),
    ]);
  } catch (err) {
    await kill(launched, 'SIGTERM');
    throw err;
  }
  return launched;
}

async function kill({ child, exited }: Launched, signal: 'SIGTERM' | 'SIGKILL') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
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
