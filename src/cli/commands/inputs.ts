/**
 * What a sweep/fit/compare answer depends on, said the same way in the terminal, --json and the report: the
 * input's identity (file size and sha256 prefix), the memory fraction, capacity, device total and version.
 */
import { formatSize } from '../../allocator/format.js';
import type { RowInputs } from '../../sweep/index.js';

/** One line for the terminal and the report's header. */
export function describeInputs(i: RowInputs): string {
  return `input ${i.input} (${i.input_bytes} bytes, id ${i.input_id}); fraction ${i.fraction ?? 'none'}; ` +
    `capacity ${formatSize(i.capacity_bytes)} of a ${formatSize(i.device_total_bytes)} device; allocsim ${i.version}`;
}

/** The same for --json, in snake_case. */
export function inputsJson(i: RowInputs): Record<string, unknown> {
  return {
    input: { path: i.input, id: i.input_id, bytes: i.input_bytes },
    fraction: i.fraction,
    capacity_bytes: i.capacity_bytes,
    device_total_bytes: i.device_total_bytes,
    version: i.version,
  };
}
