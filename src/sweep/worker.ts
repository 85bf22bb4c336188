/** A sweep worker thread: evaluates the settings strings the main thread sends, one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import { evaluateConfig } from './evaluate.js';
import type { WorkerData, WorkerReply } from './pool.js';

const data = workerData as WorkerData;
const port = parentPort;
if (port === null) throw new Error('sweep worker started outside a worker thread');

port.on('message', (conf: string) => {
  let reply: WorkerReply;
  try {
    reply = { conf, row: evaluateConfig(data.input, conf, data.device, data.fit) };
  } catch (e) {
    reply = { conf, error: e instanceof Error ? e.stack ?? e.message : String(e) };
  }
  port.postMessage(reply);
});
