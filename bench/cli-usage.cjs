// Preloaded by bench/cli.ts (`node -r`): prints the process's CPU time (user + system, all threads) as it exits.
process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  require('node:fs').writeSync(2, `\n@@cpu ${(user + system) / 1000}\n`);
});
