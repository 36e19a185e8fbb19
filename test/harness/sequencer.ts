// Runs the longest test files first, so no worker (three on CI's two cores) is left running a long file alone at the end
// (longest-processing-time-first). A fresh clone has no vitest cache, and vitest's default then orders by file
// size, which put the 110 s chaos suite last. Durations: this machine's vitest cache when it has one, else
// test/durations.json (refresh it with `npm run test:durations` after a full run), else a middling guess.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const UNKNOWN_S = 10;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const committed = readCommitted(this.ctx.config.root);
    const seconds = (spec: TestSpecification) => {
      const file = path.relative(this.ctx.config.root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`);
      return cached ? cached.duration / 1000 : (committed[file] ?? UNKNOWN_S);
    };
    return [...files].sort((a, b) => seconds(b) - seconds(a));
  }
}

function readCommitted(root: string): Record<string, number> {
  try {
    return JSON.parse(readFileSync(path.join(root, 'test', 'durations.json'), 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}
