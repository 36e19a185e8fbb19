// Every command's --help shows at least one example, and every example parses as written with the real parser (the
// program the CLI runs, its actions replaced by a recorder): the command exists, its options are spelled as they are
// declared, required ones are given and each value passes its option's parser. cli.test.ts runs EXAMPLES for real.
import { describe, expect, it } from 'vitest';
import { EXAMPLES, examplesOf, REFERENCE_EXAMPLES } from '../../server/cli/examples';
import { buildProgram } from '../../server/cli/program';
import { atelierArgs, commandsOf, parsingProgram } from '../harness/cli-parse';

describe('the examples under --help', () => {
  it('shows at least one example under every command and group of commands', () => {
    const program = buildProgram();
    const without = commandsOf(program)
      .filter(({ command, path }) => !examplesOf(command, path).length)
      .map(({ path }) => path);
    expect(without).toEqual([]);
    for (const { command, path } of commandsOf(program)) {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text) });
      command.outputHelp();
      expect(help, path).toMatch(/\nExamples:\n {2}(\S+=\S+ )*(TOKEN=\$\()?atelier /);
    }
  });

  it('parses every example as written, running the command it names', async () => {
    const all = [...Object.entries(EXAMPLES), ...Object.entries(REFERENCE_EXAMPLES)].filter(([path]) => path !== '');
    for (const [path, lines] of all)
      for (const line of lines) {
        const ran: string[] = [];
        await expect(parsingProgram(ran).parseAsync(atelierArgs(line), { from: 'user' }), line).resolves.toBeDefined();
        expect(ran, line).toEqual([path]);
      }
    for (const line of EXAMPLES['']!) {
      const ran: string[] = [];
      await parsingProgram(ran).parseAsync(atelierArgs(line), { from: 'user' });
      expect(ran, line).toHaveLength(1);
    }
  });

  it('would catch an example that does not parse', async () => {
    for (const line of ['atelier run start', 'atelier run list --stauts failed', 'atelier trigger create iris x --on rain', 'atelier run rerun ID --from']) {
      await expect(parsingProgram([]).parseAsync(atelierArgs(line), { from: 'user' }), line).rejects.toThrow();
    }
  });
});
