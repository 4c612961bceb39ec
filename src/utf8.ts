/** UTF-8 helpers shared by the tunnel protocol and the WebSocket layer (reasons in RESET, GO_AWAY, close frames). */

const encoder = new TextEncoder();

/** UTF-8 of `text`, cut back to a character boundary at most `max` bytes long. */
export function truncateUtf8(text: string, max: number): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length <= max) return bytes;
  let cut = max;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut);
}
