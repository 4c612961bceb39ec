/** Waiting for events in tests: poll a probe until it answers, with a safety deadline (never a bare sleep). */

/** A value for an error message: strings as they are, anything else as JSON, cut to a readable length. */
export function describeValue(value: unknown, maxChars = 2_000): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}… (${text.length - maxChars} more chars)`;
}

/**
 * Resolves once `probe` returns something other than undefined; polls every 20 ms until `timeoutMs`.
 * The deadline is a safety net for a hung test, not an expectation: pick it generously (a loaded machine
 * is slow, never wrong). At the deadline the error says what was awaited and, from `observe`, the last
 * state seen (e.g. the status that never turned "connected").
 */
export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  observe?: () => unknown,
): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const seen = observe === undefined ? "" : `; last observed: ${describeValue(await observe())}`;
      throw new Error(`timed out after ${Date.now() - started} ms waiting for ${what}${seen}`);
    }
    await Bun.sleep(20);
  }
}

/**
 * Like `until`, for a probe that fails until the event happened (a connection refused, a request that
 * errors): retries it, and at the deadline reports the last error it gave.
 */
export async function untilSucceeds<T>(what: string, attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  let lastError: unknown = "no attempt finished";
  return until(
    what,
    () =>
      attempt().then(
        (value) => ({ value }),
        (err: unknown) => {
          lastError = err;
          return undefined;
        },
      ),
    timeoutMs,
    () => lastError,
  ).then(({ value }) => value);
}
