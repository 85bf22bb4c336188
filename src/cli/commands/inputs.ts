/**
 * What a sweep/fit/compare answer depends on, said the same way in the terminal, --json and the report: the
 * input's identity (file size and sha256 prefix), the memory fraction, capacity, device total and version.
 */
import { formatSize } from '../../allocator/format.js';
import type { RowInputs } from '../../sweep/index.js';


/** What a trace that starts mid-run means for every figure of a sweep, fit or compare. */
export const RECORDED_START = 'the trace starts mid-run: every config starts from the state recorded at its first entry ' +
  '(the history before it cannot be replayed under other settings); peaks include the memory held then, counters cover the recorded window';

/** 'recorded' when any input's trace starts mid-run (the notes name which). */
export function anyRecordedStart(rows: readonly Pick<RowInputs, 'start_state'>[]): RowInputs['start_state'] {
  return rows.some((r) => r.start_state === 'recorded') ? 'recorded' : 'empty';
}

/**
 * The inputs of several rows said once: where each input ran under the fraction inferred from its own OOMs and
 * those differ, the fraction is per input (null with basis 'inferred'; the notes give each).
 */
export function commonInputs(first: RowInputs, rows: readonly Pick<RowInputs, 'fraction' | 'fraction_basis'>[]): RowInputs {
  const perInput = rows.some((r) => r.fraction_basis !== first.fraction_basis || r.fraction !== first.fraction);
  return perInput ? { ...first, fraction: null, fraction_basis: 'inferred' } : first;
}

const fractionText = (i: RowInputs): string => (i.fraction_basis !== 'inferred' ? `fraction ${i.fraction ?? 'none'}`
  : i.fraction === null ? 'fraction of each input inferred from its OOMs, where they need one (see the notes)'
    : `fraction ${i.fraction} (inferred from the trace's OOMs)`);

/** One line for the terminal and the report's header. */
export function describeInputs(i: RowInputs): string {
  return `input ${i.input} (${i.input_bytes} bytes, id ${i.input_id}); ${fractionText(i)}; ` +
    `capacity ${formatSize(i.capacity_bytes)} of a ${formatSize(i.device_total_bytes)} device; allocsim ${i.version}` +
    (i.start_state === 'recorded' ? `; ${RECORDED_START}` : '');
}

/** The same for --json, in snake_case. */
export function inputsJson(i: RowInputs): Record<string, unknown> {
  return {
    input: { path: i.input, id: i.input_id, bytes: i.input_bytes },
    fraction: i.fraction,
    fraction_basis: i.fraction_basis,
    capacity_bytes: i.capacity_bytes,
    device_total_bytes: i.device_total_bytes,
    start_state: { basis: i.start_state, ...(i.start_state === 'recorded' ? { note: RECORDED_START } : {}) },
    version: i.version,
  };
}
