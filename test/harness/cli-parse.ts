// The `atelier` CLI's real parser without running anything: the program the CLI runs, its actions replaced by a
// recorder and its errors thrown instead of exiting, and a line of documentation split as a shell would.
import type { Command } from 'commander';
import { buildProgram } from '../../server/cli/program';

/** The words of an example's command, as a shell splits them (quotes kept together), before its comment. */
export function words(line: string): string[] {
  const command = line.split(/\s{3,}/)[0]!;
  const out: string[] = [];
  for (const m of command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** The arguments after `atelier` (or `npx atelier`), past leading VAR=value assignments and a `$(…)` around it. */
export function atelierArgs(line: string): string[] {
  const all = words(line);
  const at = all.findIndex((w) => w === 'atelier' || w.endsWith('$(atelier'));
  if (at < 0) throw new Error(`no atelier command in "${line}"`);
  const args = all.slice(at + 1);
  if (all[at] !== 'atelier') args[args.length - 1] = args[args.length - 1]!.replace(/\)$/, '');
  return args;
}

export function commandsOf(command: Command, path: string[] = []): { command: Command; path: string }[] {
  return command.commands.flatMap((sub) => [{ command: sub, path: [...path, sub.name()].join(' ') }, ...commandsOf(sub, [...path, sub.name()])]);
}

/** The program with every action replaced: it records which command ran, and parse errors throw instead of exiting. */
export function parsingProgram(ran: string[]): Command {
  const program = buildProgram();
  const silence = (c: Command) => {
    c.exitOverride();
    c.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  };
  silence(program);
  for (const { command, path } of commandsOf(program)) {
    silence(command);
    command.action(() => {
      ran.push(path);
    });
  }
  return program;
}

/** The command path an `atelier …` line runs; throws the parser's error when it does not parse. */
export async function parsedCommand(line: string): Promise<string> {
  const ran: string[] = [];
  await parsingProgram(ran).parseAsync(atelierArgs(line), { from: 'user' });
  if (ran.length !== 1) throw new Error(`"${line}" runs no command`);
  return ran[0]!;
}
