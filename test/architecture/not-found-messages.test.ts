// Every NOT_FOUND the server writes (`notFound(…)` in server/ and schema/) says what to do next, not only what is
// missing: a command or API call that lists or makes the thing (`atelier schedule list`, experiments/create), or a
// step to take. Read from the source, so a new message is held to it the day it is written. A message built from a
// nested template (its list of names made at run time) is left to its own test.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'server', 'schema'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.ts$/.test(f) && !/\.test\.ts$/.test(f));

/** A next step: a command in backquotes, an API path, or a verb that tells the reader what to do or where to look. */
const NEXT_STEP = /\\`[^`]+\\`|\b[a-z-]+\/[a-z-]+\b|\b(lists?|shows?|create|publish|register|ask|start|upload|use|see|check|pick|name|give|pass)\b/i;

function notFoundMessages(): { at: string; message: string }[] {
  const found: { at: string; message: string }[] = [];
  for (const file of files) {
    const source = readFileSync(path.join(root, file), 'utf8');
    for (const m of source.matchAll(/\bnotFound\(\s*(`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*')/g)) {
      if (m[1]!.endsWith('? `')) continue; // a nested template: the message goes on past what this reads
      found.push({ at: `${file}:${source.slice(0, m.index).split('\n').length}`, message: m[1]! });
    }
  }
  return found;
}

it('says in every NOT_FOUND message what to do next', () => {
  const messages = notFoundMessages();
  expect(messages.length).toBeGreaterThan(40);
  expect(messages.filter((m) => !NEXT_STEP.test(m.message)).map((m) => `${m.at}  ${m.message}`)).toEqual([]);
});

it('would catch a message that only says what is missing', () => {
  for (const bare of ['`No run ${id}.`', "'No such schedule.'", '`Dataset ${d} has no version ${v}.`']) expect(NEXT_STEP.test(bare), bare).toBe(false);
});
