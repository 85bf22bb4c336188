/** The `--report FILE.html` option shared by `replay`, `run` and `sweep`. */
import { writeFileAtomic } from '../util/atomicWrite.js';
import type { Argv } from 'yargs';
import { renderHtmlReport, type HtmlReportInput } from '../report/html.js';

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

/** Renders and writes the report atomically (temp file beside it, then renamed): no half-written report. */
export function writeReport(path: string, input: HtmlReportInput): void {
  writeFileAtomic(path, renderHtmlReport(input));
}
