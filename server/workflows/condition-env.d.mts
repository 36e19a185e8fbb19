import type { Environment } from '@marcbachmann/cel-js';

export declare const conditionEnvironment: Environment;
export declare function evaluateHere(text: string, context: Record<string, unknown>): { value: boolean } | { error: string };
export declare function firstLine(error: unknown): string;
