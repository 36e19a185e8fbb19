// Examples printed under the --help of the commands a newcomer and a daily user type most, each a line that runs as
// written against the README's iris example (examples/iris) once it is pushed; keyed by the command's path.
import type { Command } from 'commander';

export const EXAMPLES: Record<string, string[]> = {
  '': [
    'atelier module push examples/iris/train     publish a module from its folder',
    'atelier workflow create examples/iris/workflow.yaml',
    'atelier run start iris --param epochs=200 --watch',
    'atelier run list --status failed',
  ],
  'module push': [
    'atelier module push examples/iris/train',
    'atelier module push examples/iris/train --run iris --watch   then run the workflow with this version',
    'atelier module push examples/iris/train --tag candidate',
  ],
  'module run': ['atelier module run examples/iris/prepare --param seed=7 --param testFraction=0.2'],
  'module tag': [
    'atelier module tag examples/iris-train latest 1 --reason "eval ok"',
    'atelier module tag examples/iris-train latest latestAlpha   promote what latestAlpha points at',
  ],
  'workflow create': ['atelier workflow create examples/iris/workflow.yaml     a new version when the spec changed'],
  'run start': [
    'atelier run start iris --watch',
    'atelier run start iris --param epochs=500 --param learningRate=0.1 --watch --logs',
    'atelier run start iris --version 1 -q     print only the new run id',
  ],
  'run list': [
    'atelier run list --workflow iris --status failed',
    'atelier run list --filter "metrics.accuracy > 0.9" --order-by "metrics.accuracy DESC" -n 5',
  ],
  'run get': ['atelier run get RUN_ID'],
  'run logs': ['atelier run logs RUN_ID --node evaluate', 'atelier run logs RUN_ID -f             follow until the run ends'],
  'run rerun': ['atelier run rerun RUN_ID --watch     execute again what failed, reuse the rest', 'atelier run rerun RUN_ID --from nodes --node train'],
  'run clone': ['atelier run clone RUN_ID --param epochs=1000 --watch'],
  'run search': ['atelier run search "params.learningRate < 0.5 and metrics.accuracy > 0.9" --order "metrics.accuracy DESC"'],
  'schedule create': ['atelier schedule create iris --cron "0 6 * * *" --tz Europe/Paris --param epochs=500'],
};

/** Adds each command's examples under its --help; throws when an example names a command that is not there. */
export function addExamples(program: Command): void {
  for (const [path, lines] of Object.entries(EXAMPLES)) {
    let command: Command | undefined = program;
    for (const name of path.split(' ').filter(Boolean)) command = command?.commands.find((c) => c.name() === name);
    if (!command) throw new Error(`examples for "atelier ${path}", which is no command`);
    command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}`);
  }
}
