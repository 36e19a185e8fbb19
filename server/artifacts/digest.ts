// Content digests of JSON values: the sha256 of their RFC 8785 canonical form, so equal contents get equal digests
// whatever their key order. Cache keys, workflow spec versions and dataset versions are all named this way.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export const canonicalJson = (value: unknown): string => canonicalize(value) ?? 'null';

export const digestOf = (value: unknown): string => `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
