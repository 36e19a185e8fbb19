// What the local deployer can honour of a revision's `resources` on this machine, with no cgroups: memory as a limit
// on the server's data segment (`prlimit --data`, RLIMIT_DATA: its heap and private writable mappings, inherited by
// its children; address space a runtime only reserves is not counted, so node, the JVM and Python start under it),
// beyond which its allocations fail (it crashes, and is restarted like any crash). CPU is not limited (nothing here
// can share cores out without cgroups): said in the revision's message. GPUs are refused unless this host has as many
// (`/dev/nvidiaN`), and then handed over by CUDA_VISIBLE_DEVICES, shared rather than reserved: said too.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { Revision } from '../../deployer-sdk';

export interface Placement {
  /** Prefix of the server's argv (inside the sandbox): the memory limit. */
  wrap: string[];
  env: Record<string, string>;
  /** What was not (or only loosely) placed, for status().message; null when everything was. */
  note: string | null;
}

/** GPUs this host has (NVIDIA device nodes). */
export function hostGpus(dev = '/dev'): number {
  try {
    return readdirSync(dev).filter((f) => /^nvidia\d+$/.test(f)).length;
  } catch {
    return 0;
  }
}

let prlimitWorks: boolean | undefined;
const havePrlimit = () => {
  prlimitWorks ??= spawnSync('prlimit', ['--data=1073741824', 'true'], { timeout: 5_000 }).status === 0;
  return prlimitWorks;
};

/**
 * How to run a revision within its resources, or a refusal (a sentence saying what to do) when it cannot be served
 * as asked: a GPU this host lacks, a memory limit with no `prlimit` to apply it, or a malformed request.
 */
export function place(resources: Revision['resources'], gpusHere = hostGpus()): Placement | { refused: string } {
  const { cpu, memoryMb, gpus } = resources ?? {};
  for (const [key, value] of Object.entries({ cpu, memoryMb, gpus }))
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0))
      return { refused: `resources.${key} must be a number ≥ 0, not ${JSON.stringify(value)}` };
  if (gpus !== undefined && !Number.isInteger(gpus)) return { refused: `resources.gpus must be a whole number, not ${gpus}` };
  const notes: string[] = [];
  const placement: Placement = { wrap: [], env: {}, note: null };
  if (gpus) {
    if (gpus > gpusHere)
      return {
        refused: `the revision asks for ${gpus} GPU${gpus === 1 ? '' : 's'} and this host has ${gpusHere}: deploy it with a deployer that places GPUs (kserve), or ask for gpus: 0`,
      };
    placement.env.CUDA_VISIBLE_DEVICES = Array.from({ length: gpus }, (_, i) => i).join(',');
    notes.push(`${gpus} GPU${gpus === 1 ? '' : 's'} shared with this host's other processes, not reserved`);
  }
  if (memoryMb) {
    if (!havePrlimit()) return { refused: `resources.memoryMb needs prlimit (util-linux) on this host to limit the server: install it, or leave memoryMb out` };
    placement.wrap = ['prlimit', `--data=${Math.ceil(memoryMb) * 1024 * 1024}`, '--'];
  }
  if (cpu) notes.push(`cpu ${cpu} not enforced (the local deployer has no CPU limits)`);
  placement.note = notes.length ? notes.join('; ') : null;
  return placement;
}
