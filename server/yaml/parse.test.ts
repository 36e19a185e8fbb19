import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { turnsDuring } from '../../test/harness/event-loop';
import { INLINE_YAML_CHARS, parseYaml, YamlParseError } from './parse';

const bigYaml = (entries: number) => Array.from({ length: entries }, (_, i) => `key${i}: { value: ${i}, list: [a, "b ${i}", 3.5] }`).join('\n');

describe('parseYaml', () => {
  it('parses large text on a worker thread, leaving the event loop free, with the same result as inline', async () => {
    const text = bigYaml(600);
    expect(text.length).toBeGreaterThan(INLINE_YAML_CHARS);
    // A deadline no loaded machine reaches: this test is about where the parse runs, not how fast.
    const pending = parseYaml(text, 300_000);
    // The caller's loop keeps turning while the worker parses (it would be 0 for a parse on the loop).
    expect(await turnsDuring(pending)).toBeGreaterThan(0);
    expect(await pending).toEqual(parse(text));
  });

  it('parses small text inline', async () => {
    await expect(parseYaml('a: 1')).resolves.toEqual({ a: 1 });
  });

  it('rejects bad YAML with the parser message, inline and on the worker', async () => {
    for (const text of ['a: [1, 2', `${bigYaml(500)}\nbad: [1, 2`]) {
      const error = (await parseYaml(text, 300_000).catch((e) => e)) as YamlParseError;
      expect(error).toBeInstanceOf(YamlParseError);
      expect(error.message).toMatch(/flow sequence|Missing|expected/i);
      expect(error.exhausted).toBe(false);
    }
  });

  it('gives up a parse past its deadline, and the next parse gets a fresh thread', async () => {
    const error = (await parseYaml(bigYaml(20_000), 1).catch((e) => e)) as YamlParseError;
    expect(error).toBeInstanceOf(YamlParseError);
    expect(error.timedOut).toBe(true);
    await expect(parseYaml(bigYaml(200), 300_000)).resolves.toHaveProperty('key199.value', 199);
  });

  it('answers concurrent parses each with its own result', async () => {
    const texts = [bigYaml(300), bigYaml(400), bigYaml(500)];
    const results = await Promise.all(texts.map((t) => parseYaml(t, 300_000)));
    expect(results.map((r) => Object.keys(r as object).length)).toEqual([300, 400, 500]);
  });
});
