/**
 * A value read from JSON (or a profile) as text: what String() gives for strings, numbers,
 * booleans and arrays (items joined with commas, null and undefined as empty), but an object as
 * its JSON rather than "[object Object]".
 */
export function plainText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (
    v === null ||
    v === undefined ||
    typeof v === 'number' ||
    typeof v === 'boolean' ||
    typeof v === 'bigint'
  ) {
    return String(v);
  }
  if (Array.isArray(v))
    return v.map((x: unknown) => (x === null || x === undefined ? '' : plainText(x))).join(',');
  return JSON.stringify(v) ?? '';
}
