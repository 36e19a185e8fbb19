// For modules run without a sandbox (ATELIER_MODULE_ISOLATION=none): a small node supervisor that leads the
// module's process group and holds a pipe from the executor host on its stdin. When the host dies, even by
// SIGKILL, the kernel closes that pipe; the supervisor sees end-of-file and kills the whole group, so no module
// outlives its host (a process that leaves the group on purpose, by setsid, escapes it: only the sandbox holds those). Otherwise it only mirrors the module's end: its exit code, or the signal that ended it.
// (Sandboxed modules need none of this: bwrap's --die-with-parent does it for them.)

const SUPERVISOR = `
const { spawn } = require('node:child_process');
const [command, ...args] = process.argv.slice(1);
const killGroup = () => { try { process.kill(0, 'SIGKILL'); } catch {} process.exit(137); };
process.stdin.on('end', killGroup);
process.stdin.on('error', killGroup);
process.stdin.resume();
// A signal to the group reaches the module too: the supervisor waits for the module's end and mirrors it.
for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(name, () => {});
const child = spawn(command, args, { stdio: ['ignore', 1, 2, 3] });
child.on('error', (err) => { process.stderr.write('cannot start ' + command + ': ' + err.message + '\\n'); process.exit(127); });
child.on('exit', (code, signal) => {
  process.stdin.removeAllListeners();
  if (signal) { process.removeAllListeners(signal); process.kill(process.pid, signal); }
  else process.exit(code);
});
`;

/** The command line that runs `command args` under the supervisor; spawn it with a pipe as stdin and keep it open. */
export function supervised(command: string, args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: ['-e', SUPERVISOR, '--', command, ...args] };
}
