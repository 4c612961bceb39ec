/** The TunnelDialError a dial fails with; a dial that succeeds (or fails otherwise) fails the test. */
import { dialTunnel, type DialTunnelOptions } from "../../src/transport/dial-tunnel.ts";
import { TunnelDialError } from "../../src/transport/websocket/errors.ts";

export async function dialError(options: DialTunnelOptions): Promise<TunnelDialError> {
  try {
    const { transport } = await dialTunnel(options);
    transport.close();
  } catch (err) {
    if (err instanceof TunnelDialError) return err;
    throw err;
  }
  throw new Error("dial succeeded");
}
