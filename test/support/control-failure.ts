/** The ControlPlaneError a control-plane call rejects with; anything else (or a success) fails the test. */
import { ControlPlaneError } from "../../src/control/errors.ts";

export async function controlFailure(promise: Promise<unknown>): Promise<ControlPlaneError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ControlPlaneError) return err;
    throw err;
  }
  throw new Error("expected a ControlPlaneError");
}
