// `atelier executor new NAME`: writes an executor skeleton (the plugin built with defineExecutor, its contract test
// and a README) that passes the testkit as written, so an author starts from green and swaps in a real backend.
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from './errors';

const nameRe = /^[a-z][a-z0-9-]{0,40}[a-z0-9]$/;
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `my-thing` → `MyThing`, for the factory and type names. */
const pascal = (name: string) => name.replace(/(^|-)([a-z0-9])/g, (_m, _d, c: string) => c.toUpperCase());

/** Writes the skeleton into `dir/NAME` (default: the repository's executors/); returns the files written. */
export async function scaffoldExecutor(name: string, dir?: string): Promise<string[]> {
  return writeScaffold({ kind: 'executor', name, dir, home: path.join(repoRoot, 'executors'), examples: 'slurm or ray-cluster' }, (type, plugins) => ({
    'index.ts': indexTs(name, type, plugins),
    [`${name}.test.ts`]: testTs(name, type, plugins),
    'README.md': readme(name, type),
  }));
}

/**
 * Writes a plugin skeleton into DIR/NAME (default: under `home`): refuses a bad name or a folder that exists, and hands
 * `files` the plugin's type name and the relative path to `plugins/` its imports use. Answers the paths written.
 */
export async function writeScaffold(
  plugin: { kind: 'executor' | 'deployer'; name: string; dir: string | undefined; home: string; examples: string },
  files: (type: string, plugins: string) => Record<string, string>,
): Promise<string[]> {
  const { kind, name } = plugin;
  if (!nameRe.test(name))
    throw new CliError(
      `${kind} name "${name}" must be lowercase letters, digits and dashes, 2 to 42 characters, starting with a letter (e.g. ${plugin.examples})`,
    );
  const target = path.resolve(plugin.dir ?? plugin.home, name);
  if (
    await access(target).then(
      () => true,
      () => false,
    )
  )
    throw new CliError(`${target} already exists: choose another NAME or --dir`);
  // Imports reach the SDK by a relative path, so the skeleton works wherever in (or beside) the repository it lands.
  let plugins = path.relative(target, path.join(repoRoot, 'plugins')).split(path.sep).join('/');
  if (!plugins.startsWith('.')) plugins = `./${plugins}`;
  const written = files(pascal(name), plugins);
  await mkdir(target, { recursive: true });
  for (const [file, text] of Object.entries(written)) await writeFile(path.join(target, file), text, { flag: 'wx' });
  return Object.keys(written).map((f) => path.join(target, f));
}

const indexTs = (
  name: string,
  type: string,
  plugins: string,
) => `// The \`${name}\` executor: runs a module as a job on a backend, follows it by polling, stops it on cancel.
// Scaffolded by \`npx atelier executor new ${name}\`. \`createInMemoryBackend\` stands in for your system so the
// contract (${name}.test.ts) passes from the start: write a \`${type}Backend\` for the real API and pass it in.
import { cancelled, defineExecutor, failed, succeeded, type Executor, type TaskContext, type TaskOutcome } from '${plugins}/sdk';

/** A job as the backend reports it. */
export interface JobStatus {
  phase: 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
  /** 0 to 1, or null when unknown. */
  progress: number | null;
  /** Every log line so far; the executor publishes the ones it has not seen. */
  logs: string[];
  outputs: Record<string, unknown>;
  /** For FAILED: why, and whether trying again could help. */
  error?: string;
  retryable?: boolean;
}

/** What the executor needs from the system that runs the work. */
export interface ${type}Backend {
  /** Starts a job. Idempotent on \`key\` (task id and attempt): a second call returns the job the first started. */
  start(key: string, request: { module: string; entrypoint: string; parameters: Record<string, unknown> }): Promise<{ jobId: string }>;
  /** The job's state; cheap, called every \`pollMs\`. */
  status(jobId: string): Promise<JobStatus>;
  /** Asks the job to stop; accepts a job that has ended or is gone. */
  stop(jobId: string): Promise<void>;
}

export interface ${type}ExecutorOptions {
  backend: ${type}Backend;
  /** Time between status polls. Default 1 s. */
  pollMs?: number;
}

/** Recorded by the control plane with the attempt: enough to find the job again after a host restart. */
export interface ${type}Handle {
  jobId: string;
}

export function create${type}Executor(options: ${type}ExecutorOptions): Executor<${type}Handle> {
  const { backend } = options;
  const pollMs = options.pollMs ?? 1_000;

  return defineExecutor<${type}Handle>({
    name: '${name}',

    async submit(task) {
      // The key makes a redelivered attempt adopt its job instead of starting a second one.
      return backend.start(\`\${task.taskId}:\${task.attempt}\`, { module: task.module.ref, entrypoint: task.module.entrypoint, parameters: task.parameters });
    },

    async wait(handle, _task, ctx): Promise<TaskOutcome> {
      let published = 0;
      let lastPhase: string | undefined;
      for (;;) {
        const job = await backend.status(handle.jobId);
        for (const line of job.logs.slice(published)) ctx.log('stdout', line);
        published = job.logs.length;
        if (job.phase !== lastPhase || job.progress !== null) ctx.progress(job.progress, job.phase.toLowerCase());
        lastPhase = job.phase;
        if (job.phase === 'SUCCEEDED') {
          for (const [name, value] of Object.entries(job.outputs)) ctx.output(name, value);
          return succeeded();
        }
        if (job.phase === 'FAILED') return failed('job-failed', job.error ?? \`job \${handle.jobId} failed\`, { retryable: job.retryable });
        if (job.phase === 'CANCELLED') return cancelled(undefined, \`job \${handle.jobId} stopped\`);
        // A host shutting down leaves the job running (see cancel): stop following it, the next host adopts it.
        if (ctx.signal.aborted && ctx.signal.reason === 'shutdown') return cancelled('shutdown');
        await sleep(pollMs, ctx);
      }
    },

    async cancel(handle, _task, reason) {
      if (reason === 'shutdown') return;
      await backend.stop(handle.jobId);
    },
  });
}

/** Sleeps \`ms\`, waking early when the attempt is aborted (the next poll then sees the job stopping). */
function sleep(ms: number, ctx: TaskContext): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    ctx.signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A backend in memory, for the contract test and as a model of the real one. \`parameters.scenario\` picks what a job
 * does: \`succeed\`, \`fail-permanent\`, \`fail-retryable\` or \`run-long\` (until stopped).
 */
export function createInMemoryBackend(): ${type}Backend & { jobsStarted(): number } {
  const jobs = new Map<string, { key: string; scenario: unknown; polls: number; stopped: boolean }>();
  const byKey = new Map<string, string>();
  return {
    async start(key, request) {
      const existing = byKey.get(key);
      if (existing) return { jobId: existing };
      const jobId = \`job-\${jobs.size + 1}\`;
      jobs.set(jobId, { key, scenario: request.parameters.scenario, polls: 0, stopped: false });
      byKey.set(key, jobId);
      return { jobId };
    },
    async status(jobId) {
      const job = jobs.get(jobId);
      if (!job) return { phase: 'FAILED', progress: null, logs: [], outputs: {}, error: \`job \${jobId} is gone\`, retryable: true };
      job.polls++;
      const logs = [\`job \${jobId} started (\${String(job.scenario)})\`];
      if (job.stopped) return { phase: 'CANCELLED', progress: null, logs, outputs: {} };
      if (job.polls < 2 || job.scenario === 'run-long') return { phase: 'RUNNING', progress: 0.1, logs, outputs: {} };
      if (job.scenario === 'fail-permanent') return { phase: 'FAILED', progress: null, logs, outputs: {}, error: 'the module exited with code 1', retryable: false };
      if (job.scenario === 'fail-retryable') return { phase: 'FAILED', progress: null, logs, outputs: {}, error: 'the machine running it went away', retryable: true };
      return { phase: 'SUCCEEDED', progress: 1, logs: [...logs, 'done'], outputs: { answer: 42 } };
    },
    async stop(jobId) {
      const job = jobs.get(jobId);
      if (job) job.stopped = true;
    },
    jobsStarted: () => jobs.size,
  };
}
`;

const testTs = (
  name: string,
  type: string,
  plugins: string,
) => `// The executor contract (plugins/testkit.ts) for \`${name}\`, against the in-memory backend. When you write the real
// backend, run the same contract against a stand-in of its API (see test/stand-ins/ for Databricks and Kubernetes).
import { executorContract } from '${plugins}/testkit';
import { createInMemoryBackend, create${type}Executor } from './index';

executorContract('${name}', () => {
  const backend = createInMemoryBackend();
  return {
    executor: create${type}Executor({ backend, pollMs: 20 }),
    scenario: (kind) => ({ parameters: { scenario: kind } }),
    submissions: () => backend.jobsStarted(),
    // The job outlives its host: a restarted host's submit finds it by key and follows it.
    reattach: 'adopt',
  };
});
`;

const readme = (name: string, type: string) => `# \`${name}\` executor

Scaffolded by \`npx atelier executor new ${name}\`. It already passes the executor contract against an in-memory
backend:

    npx vitest run ${name}.test.ts

Next steps (docs/executors.md walks through each):

1. Write a \`${type}Backend\` for your system (\`start\` idempotent on the task attempt's key, a cheap \`status\`, a
   \`stop\` that accepts a job already gone) and run the contract against a stand-in of its API.
2. Map your system's states onto \`TaskOutcome\`: \`retryable: true\` only for failures another try can fix,
   \`systemFailure: true\` when the platform failed rather than the module.
3. List \`create${type}Executor(...)\` in \`server/executors.ts\` (configured from the environment), and start a host
   serving its pool: \`npx atelier executor --pools ${name}\`.
4. Optional: \`startHotCluster\`/\`endHotCluster\` to keep compute warm, and \`provisioningMs\` in outcomes.
`;
