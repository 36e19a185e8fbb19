// What an executor is handed for one attempt (TaskContext): its signal, work directory, artifacts and the reports it
// makes, which go to the attempt's reporter; the outputs and model registrations it asks for are kept here for the
// attempt's outcome. A class, its methods shared by every attempt: the dozen closures it was made of were held, copied
// and promoted with each of the attempts in flight (docs/performance.md, session 32).
import type { Delivery } from '../bus/types';
import type { ModelRegistrationRequest } from '../protocol';
import type { Executor, TaskContext, TaskMessage } from '../sdk';
import type { AttemptRuntime } from './attempt';
import { askClaim, Unclaimed } from './attempt-claim';
import type { Attempt } from './host-attempt';
import type { Reporter } from './reporter';

/** Model registrations one attempt may ask for; more are dropped (each costs the control plane a registration). */
const MAX_REGISTRATIONS = 20;

type Method = 'artifactPath' | 'objectPath' | 'log' | 'progress' | 'metric' | 'metricSeries' | 'output' | 'registerModel';

export class AttemptContext implements TaskContext {
  /** What `output` collected, by name. */
  outputs: Record<string, unknown> | undefined = undefined;
  /** What `registerModel` asked for, in order. */
  registrations: ModelRegistrationRequest[] | undefined = undefined;
  private artifact: Promise<string> | undefined = undefined;
  /** The methods as read off the context (see `bound`). */
  private readonly bound: Partial<Record<Method, unknown>> = {};

  constructor(
    private readonly rt: AttemptRuntime,
    private readonly attempt: Attempt,
    private readonly delivery: Delivery<TaskMessage>,
    private readonly executor: Executor,
    private readonly workdirPath: string | undefined,
    private readonly reporter: Reporter,
  ) {}

  get signal(): AbortSignal {
    return this.attempt.signal;
  }

  // From the attempt's state: reading `signal` would make its AbortController (~0.9 KB) for a check.
  get aborted(): boolean {
    return this.attempt.abortReason !== undefined;
  }

  get workdir(): string {
    if (this.workdirPath === undefined) throw new Error(`executor ${this.executor.name} declared workdir: false, so its attempts get no work directory`);
    return this.workdirPath;
  }

  get host(): string {
    return this.rt.host;
  }

  // Each method read off the context is its own function, bound once at its first read: an executor may pass one on
  // unbound (`const { log } = ctx`), as it could when the context was made of closures, and one it never reads costs
  // nothing. A no-op attempt reads two.
  get artifactPath(): TaskContext['artifactPath'] {
    return this.method('artifactPath', this.fetchArtifact);
  }
  get objectPath(): NonNullable<TaskContext['objectPath']> {
    return this.method('objectPath', this.fetchObject);
  }
  get log(): TaskContext['log'] {
    return this.method('log', this.appendLog);
  }
  get progress(): TaskContext['progress'] {
    return this.method('progress', this.reportProgress);
  }
  get metric(): TaskContext['metric'] {
    return this.method('metric', this.reportMetric);
  }
  get metricSeries(): NonNullable<TaskContext['metricSeries']> {
    return this.method('metricSeries', this.reportMetricSeries);
  }
  get output(): TaskContext['output'] {
    return this.method('output', this.keepOutput);
  }
  get registerModel(): NonNullable<TaskContext['registerModel']> {
    return this.method('registerModel', this.keepRegistration);
  }

  private method<F extends (this: AttemptContext, ...args: never[]) => unknown>(name: Method, fn: F): F {
    return (this.bound[name] ??= fn.bind(this)) as F;
  }

  private fetchArtifact(): Promise<string> {
    // A download can take long (it retries while a control plane restarts): the claim is asked again after it,
    // right before anything runs, so an attempt that finished meanwhile elsewhere is not run a second time.
    this.artifact ??= this.rt.artifacts.fetch(this.attempt.task.module.digest).then(async (file) => {
      const action = await askClaim(this.rt, this.delivery);
      if (action !== 'run') throw new Unclaimed(this.attempt.key, action);
      return file;
    });
    return this.artifact;
  }

  private fetchObject(digest: string): Promise<string> {
    const { tracking } = this.attempt.task;
    return this.rt.artifacts.fetch(digest, tracking ? { token: tracking.token } : undefined);
  }

  private appendLog(stream: 'stdout' | 'stderr', line: string) {
    this.reporter.log(stream, line);
  }

  private reportProgress(fraction: number | null, message?: string | null) {
    this.reporter.progress(fraction, message);
  }

  private reportMetric(metrics: Record<string, number>, step?: number | null) {
    this.reporter.metric(metrics, step);
  }

  private reportMetricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<number>) {
    this.reporter.metricSeries(name, steps, values);
  }

  private keepOutput(name: string, value: unknown) {
    if (!this.reporter.open) return;
    (this.outputs ??= {})[String(name)] = value;
  }

  private keepRegistration(request: ModelRegistrationRequest) {
    if (!this.reporter.open) return;
    const registrations = (this.registrations ??= []);
    if (registrations.length < MAX_REGISTRATIONS) registrations.push(request);
  }
}
