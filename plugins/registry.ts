// The executor registry: the one list of executors a host runs, checked once at start-up (unique,
// non-empty names). Executors are passed in explicitly; nothing registers itself by being imported.
import type { Executor } from './sdk';

export interface ExecutorRegistry {
  /** The executor with this name; throws an Error listing the known names when there is none. */
  get(name: string): Executor;
  /** Known executor names, in the order given. */
  names(): string[];
}

export function createExecutorRegistry(executors: Executor[]): ExecutorRegistry {
  const byName = new Map<string, Executor>();
  executors.forEach((executor, index) => {
    const name = executor?.name;
    if (typeof name !== 'string' || name.trim() === '') {
      throw new Error(`executor #${index} has no name: every executor needs a non-empty, unique \`name\``);
    }
    if (byName.has(name)) {
      throw new Error(`executor name "${name}" is used twice: executor names must be unique`);
    }
    byName.set(name, executor);
  });
  const names = [...byName.keys()];

  return {
    get(name) {
      const executor = byName.get(name);
      if (!executor) {
        const known = names.length ? names.map((n) => `"${n}"`).join(', ') : 'none';
        throw new Error(`unknown executor "${name}" (known executors: ${known})`);
      }
      return executor;
    },
    names: () => [...names],
  };
}
