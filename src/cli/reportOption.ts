/** The `--report FILE.html` option shared by `replay`, `run` and `sweep`. */
import { writeFileAtomic } from '../util/atomicWrite.js';
import type { Argv } from 'yargs';
import type { HtmlReportInput, ReportMeta } from '../report/html.js';
import type { Observed } from '../report/observer.js';
import type { SimulationResult } from '../replay/simulate.js';

export interface ReportArgs {
  report?: string;
}

export function addReportOption<T>(y: Argv<T>): Argv<T & ReportArgs> {
  return y.option('report', {
    type: 'string', requiresArg: true,
    nargs: 1,
    describe: 'write a self-contained HTML report to FILE (curves, OOM explanations, segment layouts; opens offline)',
  }) as Argv<T & ReportArgs>;
}

/**
 * Renders and writes a report atomically (temp file beside it, then renamed): no half-written report. The
 * report's modules (its page script, curves) load only here: a run without --report does not read them.
 */
export async function writeReport(path: string, input: HtmlReportInput): Promise<void> {
  const { renderHtmlReport } = await import('../report/html.js');
  writeFileAtomic(path, renderHtmlReport(input));
}

/** writeReport of a run (reportInputFromSimulation). */
export async function writeRunReport(path: string, result: SimulationResult, meta: ReportMeta, observed?: Observed): Promise<void> {
  const { reportInputFromSimulation } = await import('../report/html.js');
  await writeReport(path, reportInputFromSimulation(result, meta, observed));
}
