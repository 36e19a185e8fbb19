// Every BAD_USER_INPUT the server writes (`badInput(…)`, `notImplemented(…)`, `new AtelierError('BAD_USER_INPUT', …)` in server/ and
// schema/) says what to do next or what a good value is: a command or API call, a verb telling the reader what to do,
// or the rule the value broke stated as a rule (must, at most, one of, e.g. …). Only saying what was wrong ("the path
// is not valid percent-encoding") leaves the caller guessing. Read from the source, as not-found-messages.test.ts
// reads NOT_FOUND ones, so a new message is held to it the day it is written. What this cannot judge is left out,
// and said so: a message built in a nested template (its problems listed at run time, each checked where it is made)
// and one that ends by quoting another's (`filter column 3: ${message}`, the parser's own, tested beside it).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'server', 'schema'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.ts$/.test(f) && !/\.test\.ts$/.test(f));

/** A next step: a command in backquotes, an API path, or a verb that tells the reader what to do or where to look. */
const NEXT_STEP =
  /\\`[^`]+\\`|\b[a-z-]+\/[a-z-]+\b|\b(lists?|shows?|create|publish|register|ask|start|upload|use|see|check|pick|name|give|pass|send|set|write|quote|leave|remove|drop|add(?! up)|encode|raise|try|retry|wait|choose|declare|split|swap|make|rename|omit|move|call|search|widen|shorten|say|log|classify|push|change|order by|filter on|compares? with)\b/i;
/** The rule a good value follows, stated as one: the caller reads from it what to send instead. */
const RULE =
  /\b(must|may not|may only|at most|at least|only|one of|expected|between|needs?|takes?|accepts?|allowed|required|limit|longer than|\d+ or more)\b|\be\.g\.|\d+[–-]\d+|\bis not <|\bis not runs:|\bover \$?\{?[A-Z0-9_]+\}? ?(bytes|kB)|\bare (strings|numbers|finite)/i;

// notImplemented: an MLflow call Atelier's registry refuses by design, BAD_USER_INPUT answered as NOT_IMPLEMENTED.
const CALL = /\b(?:badInput\(|notImplemented\(|new AtelierError\(\s*'BAD_USER_INPUT',)\s*(`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*')/g;

function badInputMessages(): { at: string; message: string }[] {
  const found: { at: string; message: string }[] = [];
  for (const file of files) {
    const source = readFileSync(path.join(root, file), 'utf8');
    for (const m of source.matchAll(CALL)) {
      const message = m[1]!;
      if (/(=>|\?) `$/.test(message)) continue; // a nested template: the message goes on past what this reads
      if (/: \$\{(\w+\.)?message\}`$/.test(message)) continue; // ends with another message, judged where that one is written
      found.push({ at: `${file}:${source.slice(0, m.index).split('\n').length}`, message });
    }
  }
  return found;
}

it('says in every BAD_USER_INPUT message what to do next or what a good value is', () => {
  const messages = badInputMessages();
  expect(messages.length).toBeGreaterThan(300);
  const bare = messages.filter((m) => !NEXT_STEP.test(m.message) && !RULE.test(m.message));
  expect(bare.map((m) => `${m.at}  ${m.message}`)).toEqual([]);
});

it('would catch a message that only says what was wrong', () => {
  for (const only of [
    "'The path is not valid percent-encoding.'",
    '`Param "${p.key}" is given twice with different values in one request.`',
    '`"${id}" is not a run id (a UUID).`',
    '`Run ${taskId} has no tag "${key}".`',
  ])
    expect(NEXT_STEP.test(only) || RULE.test(only), only).toBe(false);
});
