// The adversarial suite is every test in test/security/ and the table in test/governance/adversarial.test.ts: each
// case is an attack (a leak, an oracle, a stall, a forged or refused action) with the answer that must hold. This
// reporter counts them across files at the end of a run and prints the suite's size and how many leaked (failed),
// so a run of `npm test` (or of those files alone) states both in one line.
import type { Reporter, TestModule } from 'vitest/node';

const ADVERSARIAL = [/(^|\/)test\/security\/[^/]+\.test\.ts$/, /(^|\/)test\/governance\/adversarial\.test\.ts$/];

export const isAdversarial = (moduleId: string) => ADVERSARIAL.some((pattern) => pattern.test(moduleId.replaceAll('\\', '/')));

export interface AdversarialTally {
  files: number;
  cases: number;
  passed: number;
  leaked: string[];
  skipped: number;
}

export function tally(modules: ReadonlyArray<TestModule>): AdversarialTally {
  const result: AdversarialTally = { files: 0, cases: 0, passed: 0, leaked: [], skipped: 0 };
  for (const module of modules) {
    if (!isAdversarial(module.moduleId)) continue;
    result.files += 1;
    // A file that crashed before its tests ran is a leak too: nothing it guards was shown to hold.
    if (module.state() === 'failed' && [...module.children.allTests()].length === 0) result.leaked.push(`${module.relativeModuleId} (did not run)`);
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'skipped' || state === 'pending') {
        result.skipped += 1;
        continue;
      }
      result.cases += 1;
      if (state === 'passed') result.passed += 1;
      else result.leaked.push(`${module.relativeModuleId} › ${test.fullName}`);
    }
  }
  return result;
}

export default class AdversarialReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const t = tally(modules);
    if (t.files === 0) return;
    const skipped = t.skipped ? `, ${t.skipped} skipped` : '';
    console.log(`\nadversarial suite: ${t.cases} cases in ${t.files} files${skipped}; ${t.leaked.length} leaked`);
    for (const name of t.leaked) console.log(`  leaked: ${name}`);
  }
}
