// The program built for a command line (server/cli/program.ts) has only the command the line names, and that command
// is the same as in the whole program: every subcommand's help (options, arguments, examples) reads the same. A line
// that names no command, asks the program itself for help, or names none that exists gets every command.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandNamed } from '../../server/cli/program';
import { commandsOf } from '../harness/cli-parse';

const help = (command: Command) => {
  let text = '';
  command.configureOutput({ writeOut: (t) => (text += t) });
  command.outputHelp();
  return text.replace(/"\d{4}-\d\d-\d\dT[^"]+"/g, 'TIME'); // examples that show a time written from now
};
const helps = (program: Command, top: string) =>
  new Map(
    commandsOf(program)
      .filter(({ path }) => path.split(' ')[0] === top)
      .map(({ command, path }) => [path, help(command)]),
  );

describe('the program built for a command line', () => {
  const whole = buildProgram();
  const names = whole.commands.map((c) => c.name());

  it('builds the command a line names as the whole program has it, and no command it does not name', () => {
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) {
      const program = buildProgram(['node', 'atelier', '--url', 'http://x', name, 'list']);
      expect(program.commands.map((c) => c.name())).toContain(name);
      expect(program.commands.length, name).toBeLessThan(names.length);
      expect(helps(program, name), name).toEqual(helps(whole, name));
    }
  });

  it('builds every command for the program’s own help and version, `help`, and a name that is no command', () => {
    for (const line of [[], ['--help'], ['--url', 'http://x', '-h', 'run'], ['-V'], ['help', 'run'], ['rnu', 'list'], ['--', 'run']]) {
      expect(
        buildProgram(['node', 'atelier', ...line]).commands.map((c) => c.name()),
        line.join(' '),
      ).toEqual(names);
    }
    expect(help(buildProgram(['node', 'atelier', '--help']))).toBe(help(whole));
  });

  it('finds the command past the program’s options and their values', () => {
    expect(commandNamed(['node', 'atelier', '--url', 'run', 'module', 'push'])).toBe('module');
    expect(commandNamed(['node', 'atelier', '--token', 'x', '--url=http://h', 'run', 'get', 'ID'])).toBe('run');
    expect(commandNamed(['node', 'atelier', '--token'])).toBeUndefined();
  });
});
