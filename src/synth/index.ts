/** Synthetic workloads: scenario files, their generators and the discrete-event engine they run on. */
export { Des, type DesOptions } from './des.js';
export { Rng } from './rng.js';
export { Fields } from './fields.js';
export type { Generator, GpuSpeed } from './generator.js';
export {
  GENERATORS,
  buildWorkload,
  generatorFor,
  loadScenario,
  parseScenario,
  scenarioSeed,
  workloadFacts,
  type Scenario,
  type WorkloadFacts,
} from './scenario.js';
