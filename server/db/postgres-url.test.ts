import { describe, expect, it } from 'vitest';
import { driverTarget } from './postgres-url';

describe('driverTarget: DATABASE_URL as libpq reads it', () => {
  it('leaves a plain URL as it is', () => {
    expect(driverTarget('postgres://u:p@127.0.0.1:5433/atelier?sslmode=require')).toEqual({
      url: 'postgres://u:p@127.0.0.1:5433/atelier?sslmode=require',
      options: {},
    });
  });

  it('hands a multi-host URL (a failover list) to the driver as it is', () => {
    for (const url of ['postgresql://u:p@a:5432,b:5433/atelier?target_session_attrs=read-write', 'postgres://a,b/atelier'])
      expect(driverTarget(url)).toEqual({ url, options: {} });
  });

  it('connects to a socket directory given as the host parameter, with its port naming the socket file', () => {
    expect(driverTarget('postgresql:///atelier?host=/var/run/postgresql')).toEqual({
      url: 'postgresql://localhost/atelier',
      options: { path: '/var/run/postgresql/.s.PGSQL.5432' },
    });
    expect(driverTarget('postgres://me:secret@/atelier?host=/tmp/pg/&port=5544&sslmode=disable')).toEqual({
      url: 'postgres://me:secret@localhost/atelier?sslmode=disable',
      options: { path: '/tmp/pg/.s.PGSQL.5544', port: 5544 },
    });
  });

  it('reads a percent-encoded directory in the host’s place as a socket directory', () => {
    expect(driverTarget('postgres://me@%2Ftmp%2Fpg:7000/atelier')).toEqual({
      url: 'postgres://me@localhost/atelier',
      options: { path: '/tmp/pg/.s.PGSQL.7000' },
    });
  });

  it('takes host and port parameters that name a server over TCP out of the settings sent to it', () => {
    expect(driverTarget('postgres://me@ignored/atelier?host=db.example&port=6000&application_name=x')).toEqual({
      url: 'postgres://me@ignored/atelier?application_name=x',
      options: { host: 'db.example', port: 6000 },
    });
  });

  it('refuses a port that is not one, saying what to give', () => {
    expect(() => driverTarget('postgresql:///atelier?host=/tmp&port=54x')).toThrow(/port "54x" is not a port number/);
    expect(() => driverTarget('postgresql:///atelier?host=/tmp&port=70000')).toThrow(/between 1 and 65535/);
  });
});
