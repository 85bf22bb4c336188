/**
 * PyTorch 2.11's `c10::CachingAllocator::ConfigTokenizer` (c10/core/AllocatorConfig.h), method for method, so
 * that every malformed string fails at the same token with the same text as in torch.
 *
 * Note `checkToken` only checks that the index exists: its boolean result is ignored by the parsers, so a wrong
 * separator is accepted (`max_split_size_mb,100` parses as `max_split_size_mb:100`; observed).
 */
import { stod, stoull } from './cstd.js';
import { internalAssertText, torchError, type ConfOrigin } from './allocConfError.js';

const SEPARATORS = new Set([',', ':', '[', ']']);
/** std::isspace in the C locale. */
const SPACE = /[ \t\n\v\f\r]/;

export class ConfigTokenizer {
  readonly tokens: string[] = [];

  constructor(
    conf: string,
    readonly origin: ConfOrigin,
  ) {
    let buffer = '';
    for (const ch of conf) {
      if (SEPARATORS.has(ch)) {
        if (buffer !== '') this.tokens.push(buffer);
        buffer = '';
        this.tokens.push(ch);
      } else if (!SPACE.test(ch)) {
        buffer += ch;
      }
    }
    if (buffer !== '') this.tokens.push(buffer);
  }

  get size(): number {
    return this.tokens.length;
  }

  /** `operator[]`. */
  at(i: number): string {
    if (i >= this.tokens.length) {
      throw this.assertFailed('i < config_.size()', 'c10/core/AllocatorConfig.h', 55, 'Index out of bounds in ConfigTokenizer');
    }
    return this.tokens[i];
  }

  checkToken(i: number, token: string): boolean {
    return this.checkIndex(i) === token;
  }

  toSizeT(i: number): bigint {
    return stoull(this.checkIndex(i), this.origin);
  }

  toDouble(i: number): number {
    return stod(this.checkIndex(i), this.origin);
  }

  toBool(i: number): boolean {
    const token = this.checkIndex(i);
    if (token === 'True') return true;
    if (token === 'False') return false;
    throw torchError('check_value', `Expected 'True' or 'False' at index ${i} in ConfigTokenizer but got '${token}'`, this.origin);
  }

  /** Skips a key's value (one token, or a bracketed list) and returns the index of its last token. */
  skipKey(i: number): number {
    this.checkToken(++i, ':');
    ++i;
    if (this.checkIndex(i) !== '[') return i;
    while (++i < this.tokens.length && this.tokens[i] !== ']') {
      // skip the list's contents
    }
    if (i >= this.tokens.length) {
      throw this.assertFailed(
        'i < config_.size()',
        'c10/core/AllocatorConfig.h', 115,
        "Expected closing bracket ']' in ConfigTokenizer but reached end of config",
      );
    }
    return i;
  }

  assertFailed(condition: string, file: string, line: number, message: string): Error {
    return torchError('internal_assert', internalAssertText(condition, file, line, message), this.origin);
  }

  private checkIndex(i: number): string {
    if (i >= this.tokens.length) {
      throw this.assertFailed('i < config_.size()', 'c10/core/AllocatorConfig.h', 124, 'Index out of bounds in ConfigTokenizer');
    }
    return this.tokens[i];
  }
}
