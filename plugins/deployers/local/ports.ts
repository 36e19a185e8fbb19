// The loopback ports a deployment may ask its router to listen on (`settings.port`): only the operator's range
// (ATELIER_LOCAL_DEPLOY_PORTS, default 8100-8199). Any port at all made PORT_IN_USE an oracle of what listens on the
// machine (the control plane's database, NATS, another tenant's server), and let a deployment take a port meant for
// something else the moment it was freed. A port the deployer picks itself is the kernel's free one and tells nothing.

export interface PortRange {
  from: number;
  to: number;
}

export const DEFAULT_DEPLOY_PORTS: PortRange = { from: 8100, to: 8199 };

export const formatPortRange = (range: PortRange) => `${range.from}-${range.to}`;

/** `FROM-TO` (or one port) as a range; throws saying what is wrong, naming `name` (the variable it came from). */
export function parsePortRange(text: string, name = 'ATELIER_LOCAL_DEPLOY_PORTS'): PortRange {
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(text);
  const from = m ? Number(m[1]) : NaN;
  const to = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(from >= 1 && to <= 65_535 && from <= to))
    throw new Error(`${name} must be a port range FROM-TO within 1-65535 (e.g. ${formatPortRange(DEFAULT_DEPLOY_PORTS)}), not "${text}".`);
  return { from, to };
}

/** Why `settings.port` is refused (not a port, or outside the operator's range), or null. */
export function settingsPortProblem(port: unknown, range: PortRange): string | null {
  if (port === undefined) return null;
  if (!(typeof port === 'number' && Number.isInteger(port) && port >= range.from && port <= range.to))
    return `settings.port must be a port from ${range.from} to ${range.to} (the range the operator opened to deployments, ATELIER_LOCAL_DEPLOY_PORTS), not ${JSON.stringify(port)}; leave it out to get a free port`;
  return null;
}
