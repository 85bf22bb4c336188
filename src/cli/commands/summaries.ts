/**
 * What the top-level --help lists of each command (its usage line and one sentence), apart from the command
 * modules, so that a run loads only the module of its own command (index.ts).
 */
export const COMMAND_SUMMARIES = {
  replay: {
    command: 'replay <trace> [more..]',
    describe: 'Replay a memory snapshot (_dump_snapshot pickle or JSON): exactly, or as a what-if; several (a directory or glob of per-rank snapshots, --device all) side by side',
  },
  run: {
    command: 'run <scenario>',
    describe: 'Simulate a synthetic workload from a scenario file (see scenarios/)',
  },
  synth: {
    command: 'synth <scenario>',
    describe: 'Write a scenario\'s run as a snapshot pickle for replay, sweep and memory_viz',
  },
  sweep: {
    command: 'sweep <inputs..>',
    describe: 'Replay under every combination of --grid settings; rank them, recommend one (many snapshots: by the worst)',
  },
  fit: {
    command: 'fit <inputs..>',
    describe: 'Smallest device memory (bytes and fraction) without OOM, per config',
  },
  compare: {
    command: 'compare <inputs..>',
    describe: 'Runs side by side: two or more snapshots (a directory of per-rank snapshots), or one under several --conf',
  },
  merge: {
    command: 'merge <files..>',
    describe: 'Combine the result files of a sharded sweep: checked, ranked and recommended as one unsharded run',
  },
} as const;
