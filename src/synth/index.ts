/**
 * synth/: synthetic workloads: scenario files, their generators and the discrete-event engine they run on. What
 * it builds is a replay/ Workload; imports replay/workload.ts, config/ and util/ only.
 */
export { Des, type DesOptions } from './des.js';
export { Rng } from './rng.js';
export { Fields } from './fields.js';
export type { Generator, GpuSpeed } from './generator.js';
export {
  GENERATORS,
  buildWorkload,
  estimateOps,
  runCostText,
  DEFAULT_MAX_OPS,
  type BuildOptions,
  generatorFor,
  loadScenario,
  parseScenario,
  scenarioSeed,
  workloadFacts,
  type Scenario,
  type WorkloadFacts,
} from './scenario.js';
