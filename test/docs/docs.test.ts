// The docs as written: every code block of README.md, docs/*.md and examples/*/README.md that can be checked
// cheaply is checked against the product, so the docs cannot drift from it. GraphQL blocks parse and validate
// against the committed schema.graphql; every `atelier` command line parses with the CLI's real parser and runs the
// command it names; JSON blocks and curl bodies parse; workflow specs and module manifests are read by the
// readers the control plane uses. Synopsis lines ([--option], a|b, …) are left to the reader.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, type DocumentNode, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../../server/modules/manifest';
import { readWorkflowSpec } from '../../server/workflows/spec';
import { repoRoot } from '../harness/cli';
import { parsedCommand } from '../harness/cli-parse';

interface Block {
  where: string;
  lang: string;
  text: string;
}

const docFiles = [
  'README.md',
  ...readdirSync(path.join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  ...readdirSync(path.join(repoRoot, 'examples'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `examples/${d.name}/README.md`)
    .filter((f) => {
      try {
        readFileSync(path.join(repoRoot, f));
        return true;
      } catch {
        return false;
      }
    }),
];

function blocksOf(file: string): Block[] {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((m) => ({
    where: `${file}:${text.slice(0, m.index).split('\n').length}`,
    lang: m[1]!,
    text: m[2]!,
  }));
}

const blocks = docFiles.flatMap(blocksOf);
const ofLang = (...langs: string[]) => blocks.filter((b) => langs.includes(b.lang));

/** Lines joined across a trailing backslash, each with its line number in the block. */
function logicalLines(text: string): string[] {
  return text.replace(/\\\n\s*/g, ' ').split('\n');
}

/** A command line without its comment: `# …` in a shell block, or what follows three spaces or more elsewhere. */
function withoutComment(line: string, lang: string): string {
  const code = lang === 'sh' ? line.replace(/\s+#.*$/, '') : line.split(/\s{3,}/)[0]!;
  return code.trim();
}

/** A synopsis rather than a command: optional parts, alternatives or an ellipsis outside quotes. */
function isSynopsis(line: string): boolean {
  const unquoted = line.replace(/"[^"]*"|'[^']*'/g, '');
  return /[[|…]|\.\.\./.test(unquoted);
}

describe('the docs as written', () => {
  it('finds the blocks it checks (a renamed fence or folder would silently check nothing)', () => {
    expect(docFiles).toEqual(expect.arrayContaining(['README.md', 'docs/monitoring.md', 'examples/iris/README.md']));
    expect(ofLang('graphql').length).toBeGreaterThanOrEqual(5);
    expect(ofLang('json').length).toBeGreaterThanOrEqual(8);
  });

  it('validates every GraphQL operation against the committed schema', () => {
    const schema = buildSchema(readFileSync(path.join(repoRoot, 'schema.graphql'), 'utf8'));
    const problems: string[] = [];
    for (const block of ofLang('graphql')) {
      let document: DocumentNode;
      try {
        document = parse(block.text);
      } catch (error) {
        problems.push(`${block.where}: ${(error as Error).message}`);
        continue;
      }
      // Each operation alone: a block lists several anonymous ones side by side.
      for (const definition of document.definitions)
        for (const error of validate(schema, { ...document, definitions: [definition] }))
          problems.push(`${block.where}: ${error.message}\n  ${block.text.slice(definition.loc!.start, definition.loc!.end).split('\n')[0]}`);
    }
    expect(problems).toEqual([]);
  });

  it('parses every atelier command line with the CLI’s parser, as the command it names', async () => {
    const problems: string[] = [];
    let checked = 0;
    for (const block of blocks.filter((b) => ['sh', ''].includes(b.lang)))
      for (const raw of logicalLines(block.text)) {
        const line = withoutComment(raw, block.lang);
        if (!/^(\S+=\S+ )*(npx )?atelier /.test(line) || isSynopsis(line)) continue;
        checked++;
        await parsedCommand(line).catch((error: Error) => problems.push(`${block.where}: ${line}\n  ${error.message}`));
      }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(40);
  });

  it('parses every JSON block and every JSON body a curl line sends', () => {
    const problems: string[] = [];
    for (const block of ofLang('json')) {
      try {
        JSON.parse(block.text);
      } catch (error) {
        problems.push(`${block.where}: ${(error as Error).message}`);
      }
    }
    for (const block of ofLang('sh'))
      for (const line of logicalLines(block.text).filter((l) => /^curl /.test(l.trim()))) {
        const body = /(?:-d|--data) '([^']*)'/.exec(line)?.[1];
        if (body === undefined) continue;
        try {
          JSON.parse(body);
        } catch (error) {
          problems.push(`${block.where}: ${line}\n  ${(error as Error).message}`);
        }
      }
    expect(problems).toEqual([]);
  });

  it('reads every workflow spec and module manifest with the readers the control plane uses', async () => {
    const problems: string[] = [];
    for (const block of ofLang('yaml')) {
      // Another program's file (a Prometheus scrape config or rule) says so on its first line: `# (not an Atelier spec) …`.
      if (/^# \(not an Atelier spec\)/.test(block.text)) continue;
      const isManifest = /^entrypoint:/m.test(block.text);
      await (isManifest ? readManifest(block.text) : readWorkflowSpec(block.text)).catch((error: Error) =>
        problems.push(`${block.where} (${isManifest ? 'manifest' : 'workflow'}): ${error.message}`),
      );
    }
    expect(problems).toEqual([]);
  });
});
