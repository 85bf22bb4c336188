#!/usr/bin/env node
/**
 * cli/: the `allocsim` command line, a thin yargs layer over the library: option parsing, outputs, one-line
 * errors. Each command lives in commands/. May import every stage.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';
import { reportCliError } from './reportError.js';

async function main(): Promise<void> {
  let cli = yargs(hideBin(process.argv))
    .scriptName('allocsim')
    .usage('$0 <command> [options]\n\nSimulate PyTorch\'s CUDA caching allocator: replay snapshots, run scenarios, ask what-if.')
    .strict()
    .demandCommand(1, 'Name a command (see --help).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(120, process.stdout.columns || 120))
    .fail((msg, err) => {
      // yargs' own validation errors (YError: an option without its value, ...) are usage errors too.
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(msg ?? err?.message);
    });
  for (const command of commands) cli = cli.command(command);
  await cli.parseAsync();
}

class UsageError extends Error {}

main().catch((err: unknown) => {
  process.exitCode = reportCliError(err, err instanceof UsageError);
});
