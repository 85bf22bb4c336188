import { AllocsimInputError } from '../util/inputError.js';

/** The Python exception class PyTorch 2.11 raises for a config error (observed on 2.11.0+cu130). */
export type PythonErrorType = 'ValueError' | 'IndexError' | 'RuntimeError' | 'TypeError';

/** Which C++ failure produced the error; the Python class depends on it and on how the string reached torch. */
export type CppFailure =
  | 'check_value' // TORCH_CHECK_VALUE → c10::ValueError
  | 'internal_assert' // TORCH_INTERNAL_ASSERT → c10::Error
  | 'invalid_argument' // std::stoull / std::stod found no number
  | 'out_of_range'; // std::stoull / std::stod result out of range (ERANGE)

/** How the settings string reached PyTorch: `torch._C._accelerator_setAllocatorSettings` (and
 * `torch.cuda.memory._set_allocator_settings`) or the `PYTORCH_CUDA_ALLOC_CONF` environment variable. */
export type ConfOrigin = 'setter' | 'env';

/**
 * A settings string PyTorch would reject. `message` is PyTorch's own text; `pythonType` the exception class torch
 * raises for it, or null for allocsim's own refusals (things PyTorch accepts but allocsim does not model).
 */
export class AllocConfError extends AllocsimInputError {
  constructor(
    message: string,
    readonly pythonType: PythonErrorType | null,
  ) {
    super(message);
    this.name = 'AllocConfError';
  }
}

/** Python class for a C++ failure. The setter goes through pybind11, which maps std::invalid_argument to
 * ValueError and std::out_of_range to IndexError; at CUDA init (env var) torch's own handler turns every
 * std::exception into RuntimeError (observed for stoull). c10 errors keep their class either way. */
export function torchError(failure: CppFailure, message: string, origin: ConfOrigin): AllocConfError {
  let type: PythonErrorType;
  if (failure === 'check_value') type = 'ValueError';
  else if (failure === 'internal_assert' || origin === 'env') type = 'RuntimeError';
  else type = failure === 'invalid_argument' ? 'ValueError' : 'IndexError';
  return new AllocConfError(message, type);
}

/** The text of a failed TORCH_INTERNAL_ASSERT in the 2.11 wheel (its build paths and line numbers, observed). */
export function internalAssertText(condition: string, file: string, line: number, message: string): string {
  return `${condition} INTERNAL ASSERT FAILED at "/pytorch/${file}":${line}, please report a bug to PyTorch. ${message}`;
}
