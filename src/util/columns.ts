/** Column-wise storage helpers shared by the trace recorder, the workload builder and the reader's trace columns. */

type Column = Uint8Array | Uint16Array | Int32Array | Float64Array;

/** A copy of `column` with room for `capacity` entries (the growth step of an append-only column). */
export function grown<T extends Column>(column: T, capacity: number): T {
  const next = new (column.constructor as new (n: number) => T)(capacity);
  next.set(column);
  return next;
}
