/**
 * The replaying driver: answers a what-if replay's driver calls with a recording's own segment addresses while
 * the calls correspond to the recorded ones, then hands over to the address model (addressModel.ts).
 */
import type { Driver } from '../allocator/driver.js';
import { columnsFromEntries, FrameTable, TraceColumns } from '../snapshot/traceColumns.js';
import type { TraceEntry } from '../snapshot/schema.js';
import { A } from '../allocator/traceRecorder.js';
import { AddressModel, CHUNK, reservationSpan, roundUp } from './addressModel.js';

const enum Call { RESERVE, MALLOC, FREE, MAP, UNMAP }

/**
 * The driver calls a recording implies, in order: [kind, address, size] triples. `held`: the expandable
 * reservations held before the first entry (a trace that starts mid-run), as [base, mapped bytes]: maps inside
 * them reserve nothing.
 */
export function recordedDriverCalls(
  recorded: TraceColumns | readonly TraceEntry[], deviceTotal: number, held: readonly (readonly [number, number])[] = [],
): Float64Array {
  const trace = recorded instanceof TraceColumns ? recorded : columnsFromEntries(recorded, 0, new FrameTable(false));
  const out: number[] = [];
  // A segment_map outside every live reservation starts a new one (its first page is the reservation base);
  // a reservation whose last mapped bytes are unmapped is destroyed (release_expandable_segment, spec §7.4),
  // so a later map there reserves again.
  const span = reservationSpan(deviceTotal);
  const reservations = held.map(([base, mapped]) => ({ base, mapped }));
  const at = (addr: number) => reservations.findIndex((r) => addr >= r.base && addr < r.base + span);
  for (let i = 0; i < trace.length; i++) {
    const addr = trace.addr[i] === trace.addr[i] ? trace.addr[i]! : 0; // NaN: no addr
    const size = trace.size[i]!;
    switch (trace.action[i]) {
      case A.segment_alloc: out.push(Call.MALLOC, addr, size); break;
      case A.segment_free: out.push(Call.FREE, addr, size); break;
      case A.segment_map: {
        let k = at(addr);
        if (k < 0) {
          k = reservations.push({ base: addr, mapped: 0 }) - 1;
          out.push(Call.RESERVE, addr, 0);
        }
        reservations[k].mapped += size;
        out.push(Call.MAP, addr, size);
        break;
      }
      case A.segment_unmap: {
        const k = at(addr);
        if (k >= 0 && (reservations[k].mapped -= size) <= 0) reservations.splice(k, 1);
        out.push(Call.UNMAP, addr, size);
        break;
      }
      default: break;
    }
  }
  return Float64Array.from(out);
}

/**
 * Answers from a recording while the target's driver calls correspond one to one with the recorded ones, then
 * from an address model that was told every placement so far.
 *
 * Correspondence: the same kind of call in the same order; a cudaMalloc whose size needs the same number of
 * 32 MiB driver chunks as the recorded one (other rounding settings change sizes a little, and the driver then
 * carves the same chunk); a cudaFree of the segment that answered the recorded call; expandable mappings of any
 * size (their addresses follow from the reservation). A recorded address that would overlap a live segment
 * (a neighbour grew) is replaced by the model's placement. Capacity applies throughout, so a what-if on a
 * smaller device fails where the recording did not.
 */
export class ReplayingDriver implements Driver {
  private pos = 0;
  /** Recorded address of each live segment answered while in correspondence (answered → recorded). */
  private recordedOf = new Map<number, number>();
  diverged = false;
  /** Every answer so far was the recorded one for a call of exactly the recorded size. */
  identical = true;
  recordedAnswers = 0;
  modelAnswers = 0;
  /** Set by the replay loop so the divergence point can be reported. */
  currentOp = 0;
  divergedAtOp: number | null = null;

  constructor(private readonly calls: Float64Array, readonly model: AddressModel) {}

  /**
   * Memory held before the first call (a rebuilt start state): the model must not hand it out, and a segment
   * there is at its recorded address (so a recorded cudaFree of it corresponds).
   */
  notePlaced(ptr: number, size: number): void {
    this.model.notePlaced(ptr, size);
    if (ptr >= 0) this.recordedOf.set(ptr, ptr);
  }

  /** Consumes the next recorded call if it is `kind`; otherwise the correspondence ends. */
  private next(kind: Call): number {
    const p = this.pos;
    if (!this.diverged && p < this.calls.length && this.calls[p] === kind) {
      this.pos += 3;
      return p;
    }
    this.diverge();
    return -1;
  }

  private diverge(): void {
    if (!this.diverged) {
      this.diverged = true;
      this.identical = false;
      this.divergedAtOp = this.currentOp;
    }
  }

  malloc(size: number): number {
    if (!this.diverged && this.model.used + size > this.model.capacity) this.diverge();
    const p = this.diverged ? -1 : this.next(Call.MALLOC);
    if (p >= 0) {
      const addr = this.calls[p + 1];
      const recordedSize = this.calls[p + 2];
      if (roundUp(recordedSize, CHUNK) !== roundUp(size, CHUNK)) {
        this.diverge();
      } else {
        const answer = this.model.isFree(addr, size) ? addr : this.model.predict(size);
        if (answer === addr && recordedSize === size) this.recordedAnswers++;
        else {
          this.identical = false;
          this.modelAnswers++;
        }
        this.recordedOf.set(answer, addr);
        this.model.notePlaced(answer, size);
        return answer;
      }
    }
    this.modelAnswers++;
    return this.model.malloc(size);
  }

  free(ptr: number, size: number): void {
    if (!this.diverged) {
      const p = this.next(Call.FREE);
      if (p >= 0 && this.recordedOf.get(ptr) !== this.calls[p + 1]) this.diverge();
      this.recordedOf.delete(ptr);
    }
    this.model.free(ptr, size);
  }

  reserve(size: number): number {
    const p = this.next(Call.RESERVE);
    if (p >= 0) {
      const base = this.calls[p + 1];
      this.recordedAnswers++;
      this.model.noteReserved(base, size);
      return base;
    }
    this.modelAnswers++;
    return this.model.reserve(size);
  }

  release(base: number): void {
    this.model.release(base);
  }

  map(bytes: number): boolean {
    if (!this.diverged && this.model.used + bytes > this.model.capacity) this.diverge();
    const p = this.diverged ? -1 : this.next(Call.MAP);
    if (p >= 0 && this.calls[p + 2] !== bytes) this.identical = false;
    return this.model.map(bytes);
  }

  unmap(bytes: number): void {
    const p = this.diverged ? -1 : this.next(Call.UNMAP);
    if (p >= 0 && this.calls[p + 2] !== bytes) this.identical = false;
    this.model.unmap(bytes);
  }

  memGetInfoFree(): number {
    return this.model.memGetInfoFree();
  }

  clone(): ReplayingDriver {
    const c = new ReplayingDriver(this.calls, this.model.clone());
    c.pos = this.pos;
    c.recordedOf = new Map(this.recordedOf);
    c.diverged = this.diverged;
    c.identical = this.identical;
    c.recordedAnswers = this.recordedAnswers;
    c.modelAnswers = this.modelAnswers;
    c.divergedAtOp = this.divergedAtOp;
    return c;
  }
}

