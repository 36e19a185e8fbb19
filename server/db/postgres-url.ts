// DATABASE_URL as libpq and psql read it, for the postgres-js driver: a Unix socket directory as the host
// (`postgresql:///atelier?host=/var/run/postgresql`, or percent-encoded in the host's place:
// `postgresql://%2Fvar%2Frun%2Fpostgresql/atelier`) and `host`/`port` in the query. postgres-js takes neither: it
// sent `host` to the server as a setting ("unrecognized configuration parameter "host"") and read an encoded path as a
// host name. Everything else in the URL goes to the driver as it came.

/** What postgres-js is given: the URL without the parameters taken out of it, and the options they became. */
export interface DriverTarget {
  url: string;
  options: { host?: string; port?: number; path?: string };
}

/** The URL's libpq parts the driver does not read, turned into its options (a socket's file under `path`). */
export function driverTarget(databaseUrl: string): DriverTarget {
  // Several hosts (`postgresql://a:5432,b:5432/atelier`, libpq's failover list) are no WHATWG URL; postgres-js reads
  // them itself, trying each in turn (reachability.ts's sockets keep its order).
  if (/^postgres(?:ql)?:\/\/(?:[^/?#@]*@)?[^/?#]*,/i.test(databaseUrl)) return { url: databaseUrl, options: {} };
  // A user with no host (`postgresql://me@/atelier?host=/tmp`) is libpq's and no WHATWG URL: parsed with a stand-in.
  const noHost = /^postgres(?:ql)?:\/\/[^/?#]*@(?=[/?#]|$)/i.exec(databaseUrl);
  const url = new URL(noHost ? `${noHost[0]}localhost${databaseUrl.slice(noHost[0].length)}` : databaseUrl);
  const queryHost = url.searchParams.get('host');
  const queryPort = url.searchParams.get('port');
  url.searchParams.delete('host');
  url.searchParams.delete('port');
  const host = queryHost || (noHost ? '' : decodeURIComponent(url.hostname));
  const portText = queryPort || url.port;
  const port = portText ? Number(portText) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
    throw new Error(`DATABASE_URL's port "${portText}" is not a port number: give one between 1 and 65535, or none for 5432.`);
  const options: DriverTarget['options'] = {};
  if (host.startsWith('/')) options.path = `${host.replace(/\/+$/, '')}/.s.PGSQL.${port ?? 5432}`;
  else if (queryHost) options.host = queryHost;
  if (port !== undefined && queryPort) options.port = port;
  if (!queryHost && !queryPort && !options.path) return { url: databaseUrl, options };
  // The driver reads the user, password and database from the URL, and connects to `path` when it has one: the host
  // left in the URL is then only a name.
  if (options.path) {
    url.hostname = 'localhost';
    url.port = '';
  }
  return { url: url.toString(), options };
}
