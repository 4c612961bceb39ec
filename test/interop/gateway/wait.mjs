// @ts-check
/**
 * Waiting for events, never for time: `until` re-evaluates `check` whenever `emitter` says something
 * changed, and fails with `what` at a generous deadline (a safety net, not a measurement).
 */
import { EventEmitter } from "node:events";

/**
 * The safety deadline of every wait on the connector (seconds of margin on a loaded CI machine); a
 * passing scenario never reaches it. Waits that include an enrollment use `ENROLL_DEADLINE_MS`.
 */
export const DEADLINE_MS = 30_000;
export const ENROLL_DEADLINE_MS = 60_000;

export class Changes extends EventEmitter {
  constructor() {
    super();
    this.setMaxListeners(0); // every waiting scenario listens
  }

  changed() {
    this.emit("change");
  }
}

/**
 * @template T
 * @param {Changes} changes
 * @param {string} what
 * @param {() => T | undefined | false} check  a truthy result resolves
 * @param {number} [timeoutMs]
 * @returns {Promise<T>}
 */
export function until(changes, what, check, timeoutMs = DEADLINE_MS) {
  return new Promise((resolve, reject) => {
    const done = () => {
      changes.off("change", onChange);
      clearTimeout(timer);
    };
    const onChange = () => {
      let value;
      try {
        value = check();
      } catch (err) {
        done();
        reject(err);
        return;
      }
      if (value) {
        done();
        resolve(/** @type {T} */ (value));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    changes.on("change", onChange);
    onChange();
  });
}
