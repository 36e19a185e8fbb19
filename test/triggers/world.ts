// What the trigger tests share: polling a condition with a deadline, the firings of a trigger, and a signed hook.
import { signHook } from '../../server/triggers/hooks';
import type { TestApp } from '../harness/app';

export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const FIRINGS = `query ($id: String!) { trigger(id: $id) { firings(limit: 500) { outcome message signalType signalPayload run { id trigger parameters } } } }`;

export async function firings(t: TestApp, trigger: string): Promise<any[]> {
  return (await t.api.gql(FIRINGS, { id: trigger })).trigger.firings;
}

/** Waits until the trigger has `n` decided firings (none PENDING) and returns them, newest first. */
export async function decided(t: TestApp, trigger: string, n: number): Promise<any[]> {
  return until(`${n} decided firings of ${trigger}`, async () => {
    t.app.services.triggers.kick();
    const all = await firings(t, trigger);
    return all.length >= n && all.every((f) => f.outcome !== 'PENDING') ? all : null;
  });
}

export const CREATE_TRIGGER = `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { secret trigger { id name kind source hookPath overlap priority maxRunsPerMinute } } }`;

export async function postHook(
  t: TestApp,
  name: string,
  body: unknown,
  auth: { token?: string; secret?: string; delivery?: string; timestamp?: number },
): Promise<{ status: number; json: any }> {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (auth.delivery) headers['x-atelier-delivery'] = auth.delivery;
  if (auth.secret) {
    const ts = String(auth.timestamp ?? Math.floor(Date.now() / 1000));
    headers['x-atelier-timestamp'] = ts;
    headers['x-atelier-signature'] = signHook(auth.secret, ts, auth.delivery ?? '', text);
  }
  const res = await fetch(`${t.url}/hooks/trigger/${name}`, { method: 'POST', headers, body: text });
  return { status: res.status, json: await res.json() };
}
