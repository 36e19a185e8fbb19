// startRun's reads that follow the workflow's, sent with it (one round trip less on every start): its version's
// modules, read for the module references that the last start by the same reference found (the workflow's experiment
// comes with the workflow's own read). Only ever a shortcut: a start uses them only where it asks for exactly those
// references, and reads them again otherwise, as it did before.
import type { Tx } from '../db/client';
import { type ModuleReads, sendModuleReads } from '../workflows/module-refs';
import type { StartRunInput } from './orchestrator';

/** Reads sent ahead for one start, and what it learns for the next. */
export interface SentAhead {
  /** Handed to the plan: its module reads if sent, and the references it resolved once it has. */
  modules: ModuleReads;
}

/** How many references one control plane keeps a guess for (a few hundred bytes each). */
const MAX_GUESSES = 1000;

/** The last start's findings by the reference a start names (the workflow, by name or id, and the version asked for). */
export class StartGuesses {
  /** The module references the plan of the last start by each reference resolved. */
  private readonly held = new Map<string, string[]>();

  /** Sends the reads the last start by this reference needed after the workflow's (nothing on a first start). */
  sendAhead(tx: Tx, input: Pick<StartRunInput, 'workflow' | 'version'>): SentAhead {
    const refs = this.held.get(keyOf(input));
    return { modules: refs?.length ? sendModuleReads(tx, refs) : {} };
  }

  /** Kept after a start committed: what it found, for the next start by the same reference. */
  learn(input: Pick<StartRunInput, 'workflow' | 'version'>, ahead: SentAhead): void {
    if (!ahead.modules.asked) return;
    const key = keyOf(input);
    this.held.delete(key);
    this.held.set(key, ahead.modules.asked);
    if (this.held.size > MAX_GUESSES) this.held.delete(this.held.keys().next().value!);
  }
}

const keyOf = ({ workflow, version }: Pick<StartRunInput, 'workflow' | 'version'>) => `${version ?? 'latest'} ${workflow}`;
