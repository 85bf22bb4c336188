#!/usr/bin/env node
/**
 * `npm run fidelity -- DIR`: replays every capture under DIR under its own settings and prints, per capture,
 * exact or the first difference. `--cross` compares what-if replays with real captures under other settings.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { listCaptures } from '../fidelity/captures.js';
import { checkCapture, formatCaptureCheck } from '../fidelity/checkCapture.js';
import { reportCliError } from './reportError.js';

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('fidelity')
    .usage('$0 DIR [--cross | --snapshots] [--json]\n\nDIR: ground-truth captures (e.g. ../shared/groundtruth/dev), or with --snapshots plain snapshot files.')
    .demandCommand(1, 'Name a directory of captures.')
    .option('cross', { type: 'boolean', default: false, describe: 'what-if fidelity: capture under default replayed under each other config vs the real capture under it' })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable results' })
    .option('only', { type: 'string', describe: 'only workloads whose name starts with this' })
    .option('snapshots', {
      type: 'boolean', default: false,
      describe: 'DIR holds plain snapshot files (no stats.json): check each device as replay --check does',
    })
    .strict()
    .help()
    .parseAsync();
  const dir = String(argv._[0]);
  if (argv.cross) {
    const { runCrossFidelity, formatCrossFidelity } = await import('../fidelity/crossFidelity.js');
    const rows = await runCrossFidelity(dir, { only: argv.only });
    process.stdout.write(argv.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatCrossFidelity(rows)}\n`);
    return;
  }
  if (argv.snapshots) {
    const { checkSnapshotDir, formatSnapshotCheck } = await import('../fidelity/checkSnapshots.js');
    const rows = checkSnapshotDir(dir);
    if (argv.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else for (const r of rows) process.stdout.write(`${formatSnapshotCheck(r)}\n`);
    const checked = rows.filter((r) => r.refused === null);
    const exact = checked.filter((r) => r.difference === null).length;
    process.stderr.write(`${exact} of ${checked.length} device replays exact (${rows.length - checked.length} files not snapshots)\n`);
    if (exact !== checked.length) process.exitCode = 1;
    return;
  }
  const captures = listCaptures(dir).filter((c) => !argv.only || c.workload.startsWith(argv.only));
  const results = [];
  let exact = 0;
  for (const ref of captures) {
    const { snapshot, stats } = ref.load();
    const check = checkCapture(`${ref.workload}/${ref.config}`, snapshot, stats);
    results.push(check);
    if (check.exact) exact++;
    if (!argv.json) process.stdout.write(`${formatCaptureCheck(check)}\n`);
  }
  if (argv.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  process.stderr.write(`${exact} of ${captures.length} captures exact\n`);
  if (exact !== captures.length) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.exitCode = reportCliError(err, false);
});
