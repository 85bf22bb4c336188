/**
 * driver/: stand-ins for the CUDA driver behind the allocator's `Driver` interface: the recorded driver (answers
 * from a trace), the address model fitted to the captures, and the replaying driver of what-ifs (the recording's
 * answers while the calls correspond, then the model). Imports allocator/ and the stages below it.
 */
export { TraceDriver } from './traceDriver.js';
export {
  AddressModel, scoreAddressModel, reservationSpan,
  type AddressModelOptions, type AddressScore, type HoleOrder,
} from './addressModel.js';
export { ReplayingDriver, recordedDriverCalls } from './replayingDriver.js';
