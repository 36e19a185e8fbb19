// startRun's reads that follow the workflow's, sent with it (one round trip less on every start): the workflow's
// experiment and its version's modules, read for the workflow and the module references that the last start by the same
// reference found. Only ever a shortcut: a start uses them only where it finds that same workflow and asks for exactly
// those references, and reads them again otherwise, as it did before.
import type { Tx } from '../db/client';
import type { Experiment } from '../db/tables/tracking';
import { sendWorkflowExperimentRead } from '../tracking/experiments';
import { type ModuleReads, sendModuleReads } from '../workflows/module-refs';
import type { StartRunInput } from './orchestrator';

/** What a start by one reference found: its workflow and the module references its plan resolved. */
interface StartGuess {
  workflowId: string;
  refs: string[];
}

/** Reads sent ahead for one start, and what it learns for the next. */
export interface SentAhead {
  /** The workflow whose experiment was read ahead (none on a first start). */
  workflowId: string | undefined;
  experiment: Promise<Experiment | undefined> | undefined;
  /** Handed to the plan: its module reads if sent, and the references it resolved once it has. */
  modules: ModuleReads;
}

/** How many references one control plane keeps a guess for (a few hundred bytes each). */
const MAX_GUESSES = 1000;

/** The last start's findings by the reference a start names (the workflow, by name or id, and the version asked for). */
export class StartGuesses {
  private readonly held = new Map<string, StartGuess>();

  /** Sends the reads the last start by this reference needed after the workflow's (nothing on a first start). */
  sendAhead(tx: Tx, input: Pick<StartRunInput, 'workflow' | 'version'>): SentAhead {
    const guess = this.held.get(keyOf(input));
    if (!guess) return { workflowId: undefined, experiment: undefined, modules: {} };
    return {
      workflowId: guess.workflowId,
      experiment: sendWorkflowExperimentRead(tx, guess.workflowId),
      modules: guess.refs.length ? sendModuleReads(tx, guess.refs) : {},
    };
  }

  /** Kept after a start committed: what it found, for the next start by the same reference. */
  learn(input: Pick<StartRunInput, 'workflow' | 'version'>, workflowId: string | null, ahead: SentAhead): void {
    if (!workflowId || !ahead.modules.asked) return;
    const key = keyOf(input);
    this.held.delete(key);
    this.held.set(key, { workflowId, refs: ahead.modules.asked });
    if (this.held.size > MAX_GUESSES) this.held.delete(this.held.keys().next().value!);
  }
}

const keyOf = ({ workflow, version }: Pick<StartRunInput, 'workflow' | 'version'>) => `${version ?? 'latest'} ${workflow}`;

/** The experiment read ahead, if it was read for this workflow. */
export const experimentReadAhead = (ahead: SentAhead | undefined, workflowId: string) => (ahead?.workflowId === workflowId ? ahead.experiment : undefined);
