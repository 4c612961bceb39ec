/** True when `text` holds nothing a terminal or a log parser would act on (see src/peer-text.ts). */
export function isPrintable(text: string): boolean {
  return !/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u.test(text);
}

/** True when `text` holds no control character at all, not even tab or newline. */
export function isOneLine(text: string): boolean {
  return isPrintable(text) && !/[\t\n\r]/.test(text);
}
