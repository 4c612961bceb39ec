/**
 * `Secret` holds a value that must never reach a log line, an error message or status output.
 * String conversion, JSON and `util.inspect` all print `[redacted]`; only `reveal()` gives the value,
 * so every place that uses a secret is greppable.
 */
const REDACTED = "[redacted]";

export class Secret<T = string> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}
