/**
 * Domain names and wildcard patterns, pure.
 *
 * `normaliseDomain` is the one definition of "the same name" for the allow-list and the proxy bypass
 * list: lowercase, one trailing dot removed, labels of 1–63 characters from letters, digits, hyphen and
 * underscore (underscore appears in real internal names, e.g. SRV-style hosts), at most 253 characters.
 * Refused, each for a reason:
 * - anything outside ASCII, checked before lowercasing, because `toLowerCase` maps some non-ASCII
 *   letters to ASCII (KELVIN SIGN U+212A becomes `k`) and would let a look-alike match a rule;
 *   internationalised names must arrive in their `xn--` form;
 * - a name whose last label is all digits or `0x…` hex (`127.1`, `010.0.0.1`, `0x7f000001`): the
 *   system resolver reads these as IPv4 addresses (inet_aton), so as "names" they would reach an
 *   address that no IP rule was asked about. No real top-level domain looks like that.
 *
 * `*.corp.example` matches names strictly below `corp.example` (`a.corp.example`,
 * `a.b.corp.example`), never `corp.example` itself, `xcorp.example` or `corp.example.evil.com`.
 */

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const NAME_CHARS = /^[A-Za-z0-9_.-]+$/;
const LABEL = /^[a-z0-9_-]+$/;
/** A last label a resolver would parse as a number (decimal, octal or hex part of an IPv4 address). */
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

/** The name in canonical form, or undefined when it is not a valid host name. */
export function normaliseDomain(input: string): string | undefined {
  if (input.length === 0 || input.length > MAX_NAME_LENGTH + 1 || !NAME_CHARS.test(input)) return undefined;
  const name = (input.endsWith(".") ? input.slice(0, -1) : input).toLowerCase();
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return undefined;
  const labels = name.split(".");
  for (const label of labels) {
    if (label.length === 0 || label.length > MAX_LABEL_LENGTH || !LABEL.test(label)) return undefined;
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) return undefined;
  return name;
}

/** An exact name, or every name strictly below `suffix`. Names are in `normaliseDomain` form. */
export type DomainPattern =
  | { readonly kind: "exact"; readonly name: string }
  | { readonly kind: "below"; readonly suffix: string };

/**
 * Parses `name` or `*.suffix` (and, when `allowLeadingDot`, `.suffix` as NO_PROXY lists write it).
 * Any other use of `*` is refused.
 */
export function parseDomainPattern(text: string, allowLeadingDot = false): DomainPattern | undefined {
  let rest: string | undefined;
  if (text.startsWith("*.")) rest = text.slice(2);
  else if (allowLeadingDot && text.startsWith(".")) rest = text.slice(1);
  if (rest !== undefined) {
    const suffix = normaliseDomain(rest);
    return suffix === undefined ? undefined : { kind: "below", suffix };
  }
  const name = normaliseDomain(text);
  return name === undefined ? undefined : { kind: "exact", name };
}

/** True when the normalised `name` matches `pattern`. */
export function domainMatches(pattern: DomainPattern, name: string): boolean {
  if (pattern.kind === "exact") return name === pattern.name;
  // The dot check makes `xcorp.example` miss `*.corp.example`; the length check excludes the suffix itself.
  return name.length > pattern.suffix.length + 1 && name.endsWith(`.${pattern.suffix}`);
}

/** The pattern as an operator would write it. */
export function formatDomainPattern(pattern: DomainPattern): string {
  return pattern.kind === "exact" ? pattern.name : `*.${pattern.suffix}`;
}
