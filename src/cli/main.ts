#!/usr/bin/env node
/**
 * cli/: the `allocsim` command line, a thin yargs layer over the library: option parsing, outputs, one-line
 * errors. Each command lives in commands/. May import every stage.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commandsFor } from './commands/index.js';
import { armInterrupt, breakOnSigint, EXIT_CODES_HELP, guardStdout, reportCliError, UsageError } from './reportError.js';
import { helpWidth, reflowConsoleHelp } from './helpText.js';
import { closest } from '../util/text.js';
import { addInput, beginOutputs, commitOutputs } from '../util/atomicWrite.js';
import { reportWrittenFiles } from './style.js';

/** " (did you mean --fraction?)" for yargs' "Unknown argument: fractoin". */
function unknownOptionHint(msg: string, known: string[]): string {
  const m = /^Unknown arguments?: ([^,\n]+)/.exec(msg);
  if (!m) return '';
  const near = closest(m[1]!.replace(/^-+/, ''), known.filter((k) => k.length > 1));
  return near === undefined ? '' : ` (did you mean --${near}?)`;
}

async function main(): Promise<void> {
  guardStdout();
  // The options yargs knows at the failure (the command's too); set once the parser exists.
  let knownOptions = (): string[] => [];
  reflowConsoleHelp(helpWidth());
  let cli = yargs(hideBin(process.argv))
    .scriptName('allocsim')
    .usage('$0 <command> [options]\n\nSimulate PyTorch\'s CUDA caching allocator: replay snapshots, run scenarios, ask what-if.')
    .strict()
    .demandCommand(1, 'Name a command (see --help).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .epilogue(EXIT_CODES_HELP)
    .wrap(null) // reflowed on word boundaries by helpText.ts
    .fail((msg, err) => {
      // yargs reports its own parse failures as msg, or as a YError (an option without its value, ...): usage
      // errors both; other errors are the commands'.
      if (msg || err?.name === 'YError') {
        const text = msg ?? err.message;
        throw new UsageError(text + unknownOptionHint(text, knownOptions()));
      }
      throw err;
    });
  for (const command of await commandsFor(hideBin(process.argv))) cli = cli.command(command);
  const parser = cli;
  // getOptions() is yargs API that @types/yargs does not declare.
  knownOptions = () => Object.keys((parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
  // An output naming the command's input (its positional) is refused.
  cli = cli.middleware((argv) => {
    for (const key of ['trace', 'scenario', 'input']) if (typeof argv[key] === 'string') addInput(argv[key] as string);
    // yargs turns `--seed abc` into NaN and `--top 1 --top 2` into a list: both refused, not run with.
    const numeric = (parser as unknown as { getOptions(): { number: string[] } }).getOptions().number;
    for (const key of numeric) {
      const v = argv[key];
      if (Array.isArray(v)) throw new UsageError(`--${key} was given ${v.length} times; give it once`);
      if (typeof v === 'number' && !Number.isFinite(v)) throw new UsageError(`--${key} needs a number`);
    }
  });
  // Every output of the run is staged and moved into place only once the command has succeeded.
  beginOutputs();
  armInterrupt();
  // The commands' synchronous work (up to their first await: reading and replaying) stops at once on Ctrl-C.
  // Not a sweep's: it yields between configs, so the SIGINT handler runs there, and once breakOnSigint's watchdog
  // has run, a Ctrl-C that arrives later (while the configs run) kills the process by the signal, skipping the
  // handler (seen on Node 20: exit by SIGINT, no line).
  await (YIELDING_COMMANDS.has(process.argv[2] ?? '') ? cli.parseAsync() : breakOnSigint(() => cli.parseAsync()));
  await commitOutputs();
  reportWrittenFiles();
}

/** Commands that let the event loop turn while they work (see main). */
const YIELDING_COMMANDS = new Set(['sweep']);

main().catch((err: unknown) => {
  process.exitCode = reportCliError(err, err instanceof UsageError);
});
