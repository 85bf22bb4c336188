import type { CommandModule } from 'yargs';
import { COMMAND_SUMMARIES } from './summaries.js';

type AnyCommand = CommandModule<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every CLI command's module (each exports one yargs CommandModule), in the order --help lists them. */
const MODULES: Record<keyof typeof COMMAND_SUMMARIES, () => Promise<AnyCommand>> = {
  replay: async () => (await import('./replay.js')).replayCommand,
  run: async () => (await import('./run.js')).runCommand,
  synth: async () => (await import('./synth.js')).synthCommand,
  sweep: async () => (await import('./sweep.js')).sweepCommand,
  fit: async () => (await import('./fit.js')).fitCommand,
  compare: async () => (await import('./compare.js')).compareCommand,
  merge: async () => (await import('./merge.js')).mergeCommand,
};

/**
 * The commands for a command line: the one it names (its first argument that is not an option: the CLI has no
 * top-level option that takes a value) in full, the others as their summaries only, enough for --help, "did you
 * mean" and strict parsing. Loading every command's modules (reports, sweeps, scenario generators) cost a
 * replay about 100 ms.
 */
export async function commandsFor(args: readonly string[]): Promise<AnyCommand[]> {
  const named = args.find((a) => !a.startsWith('-'));
  return Promise.all(Object.entries(MODULES).map(async ([name, load]): Promise<AnyCommand> => {
    if (name === named) return load();
    return {
      ...COMMAND_SUMMARIES[name as keyof typeof COMMAND_SUMMARIES],
      handler: () => {
        throw new Error(`the ${name} command's module was not loaded`);
      },
    };
  }));
}

