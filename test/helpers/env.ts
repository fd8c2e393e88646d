/**
 * The services `npm test` started (test/run.ts) or the operator gave. A suite that needs one
 * and finds it missing fails: it never skips.
 */
function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the suites through \`npm test\` (test/run.ts), which starts the services`);
  return v;
}

export const services = {
  databaseUrl: () => need('DATABASE_URL'),
  redisUrl: () => need('REDIS_URL'),
  stripeApiUrl: () => need('STRIPE_API_URL'),
  cassandraContactPoints: () => need('CASSANDRA_CONTACT_POINTS').split(','),
  cassandraLocalDc: () => process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
  /** SeaweedFS's S3 endpoint and the credentials it accepts (test/helpers/seaweedfs.ts). */
  s3: () => ({
    endpoint: need('TEST_S3_ENDPOINT'),
    accessKeyId: need('TEST_S3_ACCESS_KEY_ID'),
    secretAccessKey: need('TEST_S3_SECRET_ACCESS_KEY'),
  }),
};
