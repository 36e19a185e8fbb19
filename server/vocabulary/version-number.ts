// A version number as a reference writes it (`ns/model@3`, `ns/model/3`, `ns/dataset/3`): digits alone, within the
// integer column every numbered version lives in. A number past it names no version (it is not one that was ever
// made); read as such, it is the reference's "no such version", where Postgres refused it and the caller saw a 500.

/** The largest number a version may have: Postgres `integer`. */
export const MAX_VERSION_NUMBER = 2_147_483_647;

/** `text` as a version number, or null when it is not digits alone or is past any version there can be. */
export function versionNumber(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_VERSION_NUMBER ? n : null;
}
