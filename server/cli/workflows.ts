// `atelier workflow`: create a workflow (or a new version of it) from a spec file, and list workflows.
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { CliError } from './errors';
import { connection } from './program-options';

export function workflowCommand(): Command {
  const workflow = new Command('workflow').description('create and inspect workflows');
  workflow
    .command('create <file>')
    .description('create a workflow, or a new version of it, from a YAML or JSON spec')
    .option('--team <name>', 'the team that owns a new workflow, whose members may publish its versions (default: your only team)')
    .action(async (file: string, opts: { team?: string }, command: Command) => {
      const { client } = connection(command);
      const spec = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
      });
      const { createWorkflow: r } = await client.request<{
        createWorkflow: { created: boolean; workflow: { name: string; domain: string; team: { name: string } | null }; version: { version: number } };
      }>(
        `mutation ($spec: String!, $team: String) { createWorkflow(spec: $spec, team: $team) { created workflow { name domain team { name } } version { version } } }`,
        { spec, team: opts.team ?? null },
      );
      console.log(
        r.created
          ? `created workflow ${r.workflow.name} version ${r.version.version} (${r.workflow.domain}${r.workflow.team ? `, team ${r.workflow.team.name}` : ''})`
          : `unchanged: workflow ${r.workflow.name} is already at version ${r.version.version} with this spec`,
      );
    });
  workflow
    .command('list')
    .description('list workflows')
    .action(async (_opts: unknown, command: Command) => {
      const { client } = connection(command);
      const { workflows } = await client.request<{ workflows: { name: string; domain: string; latestVersion: { version: number } }[] }>(
        `{ workflows { name domain latestVersion { version } } }`,
      );
      if (!workflows.length) console.log('no workflows yet: create one with `atelier workflow create FILE`');
      for (const w of workflows) console.log(`${w.name}  v${w.latestVersion.version}  ${w.domain}`);
    });
  return workflow;
}
