// Parse-speed measurement, run by hand (not a test: CI has no captures):
//   npx tsc -p . && node test/snapshot/parse-speed.mjs [snapshot.pickle] [runs]
// Prints the cold (first) parse, as the CLI sees it, then the best of the warm ones, plus validation and
// pickle writing time. Default input: the 50 MB gpt-train-long capture.
import { readFileSync } from 'node:fs';
import { pickleSnapshot, unpickle, validateSnapshot } from '../../dist/src/snapshot/index.js';

const path = process.argv[2] ?? '/tmp/gt/gpt-train-long/default/snapshot.pickle';
const runs = Number(process.argv[3] ?? 5);
const bytes = readFileSync(path);
const mb = bytes.length / 1e6;

const timed = (fn) => {
  const t0 = performance.now();
  const value = fn();
  return [performance.now() - t0, value];
};
const rate = (ms) => `${ms.toFixed(0)} ms = ${(mb / (ms / 1000)).toFixed(0)} MB/s`;

const [cold, value] = timed(() => unpickle(bytes, path));
const entries = value.device_traces.reduce((n, t) => n + t.length, 0);
console.log(`${path}: ${mb.toFixed(1)} MB, ${entries} trace entries`);
console.log(`unpickle, cold: ${rate(cold)}`);
let best = Infinity;
for (let i = 1; i < runs; i++) best = Math.min(best, timed(() => unpickle(bytes, path))[0]);
if (runs > 1) console.log(`unpickle, best of ${runs - 1} warm: ${rate(best)}`);
const [validate] = timed(() => validateSnapshot(value, path));
console.log(`validateSnapshot: ${validate.toFixed(0)} ms`);
const [write, out] = timed(() => pickleSnapshot(value));
console.log(`pickleSnapshot: ${write.toFixed(0)} ms (${(out.length / 1e6).toFixed(1)} MB)`);
