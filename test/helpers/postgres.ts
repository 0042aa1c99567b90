import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** TEST_DATABASE_URL, when the machine has a Postgres for tests (CI sets it). */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL;

/**
 * A fresh, empty database on the test server, so a test that runs darkroom on Postgres sees only
 * its own jobs. `drop` removes it (and ends any connection left to it).
 */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!testDatabaseUrl) throw new Error('TEST_DATABASE_URL is not set');
  const name = `darkroom_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: testDatabaseUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: testDatabaseUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
