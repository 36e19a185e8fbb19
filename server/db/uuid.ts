// Whether a value is a UUID, asked before it reaches a uuid column: Postgres refuses anything else (22P02), so a caller
// answers NOT_FOUND or BAD_USER_INPUT itself, or looks the reference up by name instead.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
