// The `atelier` command line's entry: runs the program (program.ts); any error a command throws ends here, printed by
// errors.ts, as a non-zero exit status.
import { reportError } from './errors';
import { buildProgram } from './program';

/**
 * A reader that left (`atelier run logs ID -f | head`) ends the command at once and quietly, as SIGPIPE ends other
 * tools (status 141, 128 + SIGPIPE): Node ignores SIGPIPE, and its EPIPE would otherwise be an unhandled error's stack,
 * or, where console.log swallowed it, a command following a run for nobody until the run ends.
 */
export function exitWhenReaderLeaves(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(141);
    throw error;
  });
}

export async function main(argv = process.argv): Promise<void> {
  exitWhenReaderLeaves(process.stdout);
  exitWhenReaderLeaves(process.stderr);
  try {
    await buildProgram(argv).parseAsync(argv);
  } catch (error) {
    process.exitCode = reportError(error);
  }
}

await main();
