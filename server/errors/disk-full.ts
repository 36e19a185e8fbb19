// A write that found no space: the disk (or a quota) of the data directory or the local object store is full. A leaf,
// as server/errors is: the edges answer it as UNAVAILABLE, saying so and what to do, instead of as an unexpected error.
import { wrapsCode } from './chain';

/** Codes of a full disk or an exhausted quota. */
const FULL = new Set(['ENOSPC', 'EDQUOT']);

/** Whether `error` (or what it wraps) is a write that found no space. */
export const isDiskFull = (error: unknown): boolean => wrapsCode(error, FULL);
