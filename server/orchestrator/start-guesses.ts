// What the last start by each workflow reference read, kept for the next one (issue 21). A start whose reads are all
// kept is sent in one round trip: its writes are built from them, behind a guard (server/db/guess-guard.ts) that aborts
// its transaction unless the workflow's latest version and domain, its experiment and each module tag it used are
// still as read; it is then made again by reading. A start with only its module references kept sends their reads
// with the workflow's (one round trip less than reading them after it). Only ever a shortcut: a start uses the reads
// kept only where it asks for exactly those references, and reads them again otherwise, as it did before.
import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { expectGuess } from '../db/guess-guard';
import { sqlOnce } from '../db/prepared';
import type { Workflow, WorkflowVersion } from '../db/tables/workflows';
import { guessedModuleReads, type ModuleRead, type ModuleReads, sendModuleReads } from '../workflows/module-refs';
import type { StartRunInput } from './orchestrator';

/** Reads sent ahead for one start, and what it learns for the next. */
export interface SentAhead {
  /** Handed to the plan: its module reads if sent, and the references it resolved once it has. */
  modules: ModuleReads;
}

/** What a start found by reading the workflow, which the next start by the same reference guesses. */
export interface StartFound {
  workflow: Workflow;
  version: WorkflowVersion;
  /** The workflow's own experiment. */
  experimentId: string;
}

/** A start's guess: what it would read, and the guard that aborts its transaction if that is not so. */
export interface StartGuess {
  found: StartFound;
  modules: ModuleReads;
  /** Sends the guard: a statement that aborts the transaction unless the guess holds. */
  guard: (tx: Tx) => Promise<unknown>;
}

/** How many references one control plane keeps a guess for. */
const MAX_GUESSES = 1000;
/** How many bytes of specs and manifests the guesses keep at most (a start's larger than a tenth of it is not kept). */
const MAX_GUESSED_BYTES = 8 << 20;
/** The most tasks a spec kept as a guess has: a larger one is not weighed (a 10,000-task start saves no round trip worth it). */
const MAX_GUESSED_TASKS = 500;

interface Held {
  refs: string[];
  /** The workflow's read and its modules', when the start that found them resolved every reference. */
  found?: StartFound;
  reads?: ModuleRead[];
  /** What they weigh (JSON), counted against MAX_GUESSED_BYTES. */
  bytes: number;
}

/** The last start's findings by the reference a start names (the workflow, by name or id, and the version asked for). */
export class StartGuesses {
  private readonly held = new Map<string, Held>();
  private bytes = 0;

  /** The guess for a start by this reference, when the last one's reads are all kept. */
  guess(input: Pick<StartRunInput, 'workflow' | 'version'>): StartGuess | undefined {
    const held = this.held.get(keyOf(input));
    if (!held?.found || !held.reads) return undefined;
    return { found: held.found, modules: guessedModuleReads(held.refs, held.reads), guard: guardOf(held.found, held.reads, input.version === undefined) };
  }

  /** Sends the reads the last start by this reference needed after the workflow's (nothing on a first start). */
  sendAhead(tx: Tx, input: Pick<StartRunInput, 'workflow' | 'version'>): SentAhead {
    const refs = this.held.get(keyOf(input))?.refs;
    return { modules: refs?.length ? sendModuleReads(tx, refs) : {} };
  }

  /** Kept after a start committed: what it found, for the next start by the same reference. */
  learn(input: Pick<StartRunInput, 'workflow' | 'version'>, ahead: SentAhead, found: StartFound | undefined): void {
    const { asked, read } = ahead.modules;
    if (!asked) return;
    const key = keyOf(input);
    const before = this.held.get(key);
    // A guessed start that planned from the guess found nothing new: kept as it is (no weighing again).
    if (before && before.found === found && before.reads === read) return;
    this.drop(key);
    const held: Held = { refs: asked, bytes: 0 };
    if (found && read && found.version.spec.tasks.length <= MAX_GUESSED_TASKS) {
      const bytes = JSON.stringify(found.version.spec).length + read.reduce((n, r) => n + versionsBytes(r), 0);
      if (bytes <= MAX_GUESSED_BYTES / 10) Object.assign(held, { found, reads: read, bytes });
    }
    this.held.set(key, held);
    this.bytes += held.bytes;
    while (this.held.size > MAX_GUESSES || this.bytes > MAX_GUESSED_BYTES) this.drop(this.held.keys().next().value!);
  }

  /** A guess that did not hold: the next start by this reference reads (and learns again). */
  missed(input: Pick<StartRunInput, 'workflow' | 'version'>): void {
    const held = this.held.get(keyOf(input));
    if (!held) return;
    this.bytes -= held.bytes;
    this.held.set(keyOf(input), { refs: held.refs, bytes: 0 });
  }

  private drop(key: string): void {
    this.bytes -= this.held.get(key)?.bytes ?? 0;
    this.held.delete(key);
  }
}

const keyOf = ({ workflow, version }: Pick<StartRunInput, 'workflow' | 'version'>) => `${version ?? 'latest'} ${workflow}`;

const versionsBytes = (read: ModuleRead) =>
  [...read.tagRows.map((t) => t.version), ...read.versionRows].reduce((n, v) => n + JSON.stringify(v.manifest).length, 0);

/** The row set `startGuard` checks the module tags by: each selector the start used, and the version its tag picked (null: none). */
type TagPick = { module_id: string; tag: string; version_id: string | null };

/**
 * Holds when what a start reads is still what `found` and `reads` say: the workflow's domain and (for its latest)
 * latest version, its experiment, and where each tag the start used points (a selector read as a version number:
 * still no tag of that name). Versions, of workflows and of modules, never change once published, nor does a module's
 * or a workflow's id for its name. One statement whatever the modules (a row set as one parameter), kept prepared.
 */
const startGuard = sqlOnce<{ workflowId: string; domain: string; latest: number | null; experimentId: string; picks: string }>()(() =>
  expectGuess(
    sql`exists (select 1 from workflows where id = ${sql.placeholder('workflowId')}::uuid and domain = ${sql.placeholder('domain')}::text
        and latest_version = coalesce(${sql.placeholder('latest')}::int, latest_version))
      and (select id from experiments where workflow_id = ${sql.placeholder('workflowId')}::uuid) = ${sql.placeholder('experimentId')}::uuid
      and not exists (select 1 from json_to_recordset(${sql.placeholder('picks')}::json) as g(module_id uuid, tag text, version_id uuid)
        left join module_tags t on t.module_id = g.module_id and t.tag = g.tag where t.version_id is distinct from g.version_id)`,
    "the start's: the workflow's latest version and domain, its experiment, its modules' tags",
  ),
);

function guardOf(found: StartFound, reads: ModuleRead[], latest: boolean): (tx: Tx) => Promise<unknown> {
  const picks: TagPick[] = reads.flatMap((read) =>
    [...read.selectors].map((tag) => ({ module_id: read.mod!.id, tag, version_id: read.tagRows.find((t) => t.tag === tag)?.version.id ?? null })),
  );
  const { workflow } = found;
  const values = {
    workflowId: workflow.id,
    domain: workflow.domain,
    latest: latest ? workflow.latestVersion : null,
    experimentId: found.experimentId,
    picks: JSON.stringify(picks),
  };
  return (tx) => startGuard(tx, values);
}
