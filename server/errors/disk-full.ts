// A write that found no space: the disk (or a quota) of the data directory or the local object store is full. A leaf,
// as server/errors is: the edges answer it as UNAVAILABLE, saying so and what to do, instead of as an unexpected error.
import { wrapsCode } from './chain';

/** Codes of a full disk or an exhausted quota. */
const FULL = new Set(['ENOSPC', 'EDQUOT']);

/** Postgres's SQLSTATE disk_full: the database's own disk is full (a data file it could not extend). */
export const DATABASE_DISK_FULL = '53100';

/** Whether `error` (or what it wraps) is a write that found no space. */
export const isDiskFull = (error: unknown): boolean => wrapsCode(error, FULL);

/** Whether `error` (or what it wraps) is the database refusing a write for want of space on its own disk. */
export const isDatabaseDiskFull = (error: unknown): boolean => wrapsCode(error, DATABASE_FULL);
const DATABASE_FULL = new Set([DATABASE_DISK_FULL]);
