/**
 * report/: what a run means for a user: the summary, OOM facts, explanations and checked remedies
 * (oomRemedies.ts), curves and layouts, and the self-contained HTML report. Imports replay/, driver/ and the
 * stages below them; nothing of the CLI.
 */
export { summarize, formatSummary, type SummaryFigures } from './summary.js';
export { RunObserver } from './observer.js';
export { explainOom, type OomExplanation } from './oom.js';
export { renderHtmlReport, reportInputFromSimulation, type HtmlReportInput } from './html.js';
