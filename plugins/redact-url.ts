// Connection URLs as they may be printed (start-up banners, configuration errors, "cannot reach" errors, a deployer's
// messages): their secrets left out. DATABASE_URL and NATS_URL carry credentials (`postgres://user:PASSWORD@host`,
// `?password=`, `nats://user:PASSWORD@host`, `nats://TOKEN@host`), a deployer's service URL may (`?token=`), and what
// the control plane prints goes to terminals, log files, CI logs and deployments' messages that more people read than
// may use those credentials. A leaf beside the plugin SDKs (their plugins use it too): imports nothing.

const SECRET_PARAMS =
  /([?&](?:password|passwd|pass|pwd|sslpassword|token|auth_token|access_token|api_key|apikey|key|secret|client_secret|sig|signature)=)[^&#]*/gi;

/** One URL, or a comma-separated list of them (NATS_URL), with every password, token and secret parameter `***`. */
export function redactUrl(text: string): string {
  return text
    .split(',')
    .map((one) => redactOne(one))
    .join(',');
}

function redactOne(url: string): string {
  const query = url.replace(SECRET_PARAMS, '$1***');
  // Up to the last "@": a password may hold an unencoded "@" (or "/"), and cutting too much only hides more.
  const m = /^([a-z][\w+.-]*:\/\/)(.*)@(.*)$/is.exec(query);
  if (!m) return query;
  const [, scheme, userinfo, rest] = m;
  const colon = userinfo!.indexOf(':');
  // A user name alone is shown for Postgres (its password is elsewhere, if any); elsewhere (nats://TOKEN@) it is the secret.
  const shown = colon >= 0 ? `${userinfo!.slice(0, colon)}:***` : /^postgres(?:ql)?:/i.test(scheme!) ? userinfo : '***';
  return `${scheme}${shown}@${rest}`;
}

/** `text` (a message) with every URL in it redacted as `redactUrl` does. */
export const redactUrls = (text: string): string => text.replace(/[a-z][\w+.-]*:\/\/[^\s'"()<>]+/gi, (url) => redactUrl(url));
