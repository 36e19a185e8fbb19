// What NATS_URL gives a NATS connection: its servers, and the credentials written in it (`nats://USER:PASSWORD@host`,
// or `nats://TOKEN@host`), which nats.js does not read from a URL itself: without this, every process connected
// anonymously, so no NATS could require credentials of Atelier's processes, and no executor host could have a NATS
// user of its own for an operator to remove. Shared by the bus (server/bus/jetstream.ts) and the object store's.

export interface NatsConnectOptions {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** The servers of a NATS_URL (comma-separated) without their userinfo, and the first server's credentials. */
export function natsConnectOptions(url: string): NatsConnectOptions {
  let credentials: Omit<NatsConnectOptions, 'servers'> | undefined;
  const servers = url.split(',').map((one) => {
    const m = /^([a-z][\w+.-]*:\/\/)(.*)@([^@]*)$/is.exec(one.trim());
    if (!m) return one.trim();
    const [, scheme, userinfo, rest] = m as unknown as [string, string, string, string];
    const colon = userinfo.indexOf(':');
    credentials ??=
      colon >= 0
        ? { user: decodeURIComponent(userinfo.slice(0, colon)), pass: decodeURIComponent(userinfo.slice(colon + 1)) }
        : { token: decodeURIComponent(userinfo) };
    return `${scheme}${rest}`;
  });
  return { servers, ...credentials };
}

/** A "cannot connect" error in the operator's terms: credentials refused, or nothing listening. */
export function natsConnectError(error: Error, where: string): Error {
  if (/authori[sz]ation|authentication/i.test(error.message))
    return new Error(
      `NATS at ${where} refused this process's credentials (${error.message}): write the user and password nats-server's authorization lists into the URL (nats://USER:PASSWORD@host:4222, or nats://TOKEN@host:4222).`,
    );
  return new Error(`Cannot reach NATS at ${where} (${error.message}). Is nats-server running there, with JetStream on (nats-server -js)?`);
}
