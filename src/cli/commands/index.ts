import type { CommandModule } from 'yargs';
import { replayCommand } from './replay.js';
import { runCommand } from './run.js';
import { synthCommand } from './synth.js';
import { sweepCommand } from './sweep.js';
import { fitCommand } from './fit.js';
import { compareCommand } from './compare.js';
import { mergeCommand } from './merge.js';

/** Every CLI command; each module exports one yargs CommandModule. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  replayCommand,
  runCommand,
  synthCommand,
  sweepCommand,
  fitCommand,
  compareCommand,
  mergeCommand,
];
