/**
 * The baseline of a `run` what-if: a scenario run with other settings, a memory fraction, another device size or
 * capacity is shown beside the same requests under PyTorch's defaults on the default device (the run a user gets
 * without those options).
 */
import { H100_TOTAL_GLOBAL_MEM } from '../allocator/constants.js';
import { formatSize } from '../allocator/format.js';
import { defaultConfig, type AllocatorConfig } from '../config/allocatorConfig.js';
import { sameBehaviour } from '../replay/replaySnapshot.js';
import { simulate } from '../replay/simulate.js';
import type { Workload } from '../replay/workload.js';
import { allocatorSettingsDict } from '../snapshot/allocatorSettings.js';
import type { DeviceSettings, RunBaseline } from './output.js';

/** Null when the run is the defaults' own (nothing to compare with). */
export function defaultsBaseline(
  workload: Workload, settings: DeviceSettings, config: AllocatorConfig, timeline: boolean,
): RunBaseline | null {
  const same = sameBehaviour(config, defaultConfig()) && (settings.fraction ?? null) === null &&
    (settings.deviceTotal === undefined || settings.deviceTotal === H100_TOTAL_GLOBAL_MEM) && (settings.capacity ?? null) === null;
  if (same) return null;
  const r = simulate(workload, { config: defaultConfig(), timeline });
  return {
    label: `the same requests under PyTorch defaults (no fraction, ${formatSize(H100_TOTAL_GLOBAL_MEM)} H100 device)`,
    stats: r.stats,
    timeline: r.timeline,
    json: { allocator_settings: allocatorSettingsDict(defaultConfig()), fraction: null, device_total_bytes: H100_TOTAL_GLOBAL_MEM },
  };
}
