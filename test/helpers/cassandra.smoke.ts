// Smoke check for test/helpers/cassandra.ts (a script, not a test file):
//   node --import tsx test/helpers/cassandra.smoke.ts
// Starts a throwaway Cassandra node, does a keyspace/table/insert/select round trip, stops it.
import cassandra from 'cassandra-driver';
import { startCassandra } from './cassandra.ts';

const verbose = process.argv.includes('--verbose');
const t0 = Date.now();
const node = await startCassandra({ log: verbose ? (l) => console.error(l) : undefined });
const startSecs = (Date.now() - t0) / 1000;
console.log(`cassandra started in ${startSecs.toFixed(1)}s at ${node.contactPoints.join(',')} (dc ${node.localDataCenter})`);

const client = new cassandra.Client({ contactPoints: node.contactPoints, localDataCenter: node.localDataCenter });
try {
  await client.connect();
  const v = (await client.execute('SELECT release_version FROM system.local')).first().get('release_version');
  console.log(`release_version ${v}`);
  const t1 = Date.now();
  await client.execute("CREATE KEYSPACE IF NOT EXISTS smoke WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
  await client.execute('CREATE TABLE IF NOT EXISTS smoke.kv (k text PRIMARY KEY, v int, at timestamp)');
  console.log(`schema created in ${((Date.now() - t1) / 1000).toFixed(2)}s`);
  const now = new Date();
  await client.execute('INSERT INTO smoke.kv (k, v, at) VALUES (?, ?, ?)', ['hello', 42, now], { prepare: true });
  const row = (await client.execute('SELECT k, v, at FROM smoke.kv WHERE k = ?', ['hello'], { prepare: true })).first();
  if (row?.get('v') !== 42 || (row.get('at') as Date).getTime() !== now.getTime()) {
    throw new Error(`unexpected row: ${JSON.stringify(row)}`);
  }
  console.log(`round trip ok: k=${row.get('k')} v=${row.get('v')}`);
} finally {
  await client.shutdown();
  const t2 = Date.now();
  await node.stop();
  console.log(`stopped in ${((Date.now() - t2) / 1000).toFixed(1)}s; total ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}
