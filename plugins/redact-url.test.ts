import { describe, expect, it } from 'vitest';
import { redactUrl, redactUrls } from './redact-url';

describe('redactUrl', () => {
  it('leaves out passwords, tokens and secret parameters, keeping where it points', () => {
    for (const [url, shown] of [
      ['postgres://atelier:s3cret@db.internal:5432/atelier', 'postgres://atelier:***@db.internal:5432/atelier'],
      ['postgresql://me@/atelier?host=/run/pg&password=s3cret', 'postgresql://me@/atelier?host=/run/pg&password=***'],
      ['postgres://u:p@ss/w@rd@db/x?sslpassword=s3cret&sslmode=require', 'postgres://u:***@db/x?sslpassword=***&sslmode=require'],
      ['nats://user:s3cret@a:4222,nats://tok3n@b:4222,nats://c:4222', 'nats://user:***@a:4222,nats://***@b:4222,nats://c:4222'],
      ['https://key:s3cret@minio.local:9000', 'https://key:***@minio.local:9000'],
      ['postgres://localhost/atelier', 'postgres://localhost/atelier'],
    ])
      expect(redactUrl(url!)).toBe(shown);
  });

  it('redacts the URLs inside a message', () => {
    expect(redactUrls('Request cannot be constructed from a URL that includes credentials: http://u:s3cret@h:1/graphql (x)')).toBe(
      'Request cannot be constructed from a URL that includes credentials: http://u:***@h:1/graphql (x)',
    );
  });
});
