// The Node SDK (@zilliz/milvus2-sdk-node) against `shoal run`, through its own API: a database,
// a collection with a schema and two vector fields, indexes, load, insert, search with a
// filter, query, get, delete, upsert, hybrid search, both iterators, partitions and aliases.
// Each step checks what a user would notice: counts, ids, ordered distances, filters honoured.
// Usage: SHOAL_ADDRESS=127.0.0.1:19530 node scenario.js   (prints "scenario ok" and exits 0)
'use strict';
const assert = require('node:assert/strict');
const { MilvusClient, DataType, RRFRanker } = require('@zilliz/milvus2-sdk-node');

const DIM = 8;
const ROWS = 200;
const NAME = 'films';

function ok(res, what) {
  const status = res && res.status ? res.status : res;
  assert.equal(status.error_code || 'Success', 'Success', `${what}: ${JSON.stringify(status)}`);
  return res;
}

function vec(i, salt) {
  return Array.from({ length: DIM }, (_, k) => Math.sin(i * 7.1 + k * 1.3 + salt));
}

const ids = (hits) => hits.map((h) => Number(h.id));

async function main() {
  const address = process.env.SHOAL_ADDRESS;
  const db = `node_${Date.now().toString(36)}`;
  const admin = new MilvusClient({ address });
  ok(await admin.createDatabase({ db_name: db }), 'createDatabase');
  assert.ok(ok(await admin.listDatabases(), 'listDatabases').db_names.includes(db));

  const c = new MilvusClient({ address, database: db });
  ok(await c.createCollection({
    collection_name: NAME,
    fields: [
      { name: 'id', data_type: DataType.Int64, is_primary_key: true },
      { name: 'year', data_type: DataType.Int64 },
      { name: 'title', data_type: DataType.VarChar, max_length: 64 },
      { name: 'v', data_type: DataType.FloatVector, dim: DIM },
      { name: 'w', data_type: DataType.FloatVector, dim: DIM },
    ],
  }), 'createCollection');
  const described = ok(await c.describeCollection({ collection_name: NAME }), 'describeCollection');
  assert.deepEqual(described.schema.fields.map((f) => f.name), ['id', 'year', 'title', 'v', 'w']);
  ok(await c.createIndex({ collection_name: NAME, field_name: 'v', index_type: 'HNSW', metric_type: 'L2',
    params: { M: 8, efConstruction: 64 } }), 'createIndex v');
  ok(await c.createIndex({ collection_name: NAME, field_name: 'w', index_type: 'FLAT', metric_type: 'IP' }),
    'createIndex w');
  ok(await c.createPartition({ collection_name: NAME, partition_name: 'old' }), 'createPartition');
  const parts = ok(await c.listPartitions({ collection_name: NAME }), 'listPartitions').partition_names;
  assert.ok(parts.includes('old') && parts.includes('_default'), `partitions ${parts}`);
  ok(await c.loadCollection({ collection_name: NAME }), 'loadCollection');

  const rows = Array.from({ length: ROWS }, (_, i) => ({
    id: i, year: 1950 + (i % 70), title: `film ${i}`, v: vec(i, 0), w: vec(i, 1),
  }));
  const ins = ok(await c.insert({ collection_name: NAME, data: rows }), 'insert');
  assert.equal(Number(ins.insert_cnt), ROWS);
  ok(await c.insert({ collection_name: NAME, partition_name: 'old',
    data: [{ id: 1000, year: 1920, title: 'silent', v: vec(1000, 0), w: vec(1000, 1) }] }), 'insert partition');

  // Like Milvus, a search returns the primary key as a field only when output_fields names it
  // (or '*'); this SDK builds each hit from the returned fields, so `id` is asked for.
  const found = ok(await c.search({ collection_name: NAME, data: [vec(7, 0)], anns_field: 'v', limit: 5,
    output_fields: ['id', 'title'] }), 'search').results;
  assert.equal(found.length, 5);
  assert.equal(found[0].id, '7');
  assert.equal(found[0].title, 'film 7');
  assert.ok(found[0].score < 1e-4, `self distance ${found[0].score}`);
  for (let i = 1; i < found.length; i++) assert.ok(found[i].score >= found[i - 1].score, 'L2 distances ascend');

  const filtered = ok(await c.search({ collection_name: NAME, data: [vec(7, 0)], anns_field: 'v', limit: 10,
    filter: 'year >= 2000', output_fields: ['id', 'year'] }), 'filtered search').results;
  assert.equal(filtered.length, 10);
  assert.ok(filtered.every((h) => Number(h.year) >= 2000), 'filter honoured');
  assert.ok(!ids(filtered).includes(7), 'row 7 (year 1957) excluded');

  const inOld = ok(await c.search({ collection_name: NAME, data: [vec(7, 0)], anns_field: 'v', limit: 3,
    partition_names: ['old'], output_fields: ['id'] }), 'search partition').results;
  assert.deepEqual(ids(inOld), [1000]);

  const q = ok(await c.query({ collection_name: NAME, filter: 'id < 5', output_fields: ['title'] }), 'query');
  assert.equal(q.data.length, 5);
  const got = ok(await c.get({ collection_name: NAME, ids: [3, 4], output_fields: ['title'] }), 'get');
  assert.deepEqual(got.data.map((r) => r.title).sort(), ['film 3', 'film 4']);

  const del = ok(await c.delete({ collection_name: NAME, filter: 'id in [0, 1]' }), 'delete');
  assert.equal(Number(del.delete_cnt), 2);
  const up = ok(await c.upsert({ collection_name: NAME,
    data: [{ id: 2, year: 2024, title: 'remade', v: vec(2, 0), w: vec(2, 1) }] }), 'upsert');
  assert.equal(Number(up.upsert_cnt), 1);
  const after = ok(await c.query({ collection_name: NAME, filter: 'id <= 2', output_fields: ['title'] }), 'query 2');
  assert.deepEqual(after.data.map((r) => r.title), ['remade']);
  const count = ok(await c.count({ collection_name: NAME }), 'count');
  assert.equal(Number(count.data), ROWS + 1 - 2);

  const hybrid = ok(await c.search({
    collection_name: NAME,
    data: [{ data: [vec(9, 0)], anns_field: 'v', params: {} }, { data: [vec(9, 1)], anns_field: 'w', params: {} }],
    rerank: RRFRanker(60), limit: 3, output_fields: ['id', 'title'],
  }), 'hybrid search').results;
  assert.equal(hybrid.length, 3);
  assert.equal(hybrid[0].id, '9');

  const seen = new Set();
  const qi = await c.queryIterator({ collection_name: NAME, batchSize: 40, expr: 'id >= 0', output_fields: ['id'] });
  for await (const batch of qi) {
    if (!batch) break;
    assert.ok(batch.length <= 40, `query iterator batch of ${batch.length}`);
    for (const r of batch) {
      assert.ok(!seen.has(String(r.id)), `id ${r.id} twice`);
      seen.add(String(r.id));
    }
  }
  assert.equal(seen.size, ROWS - 1);

  const hits = new Set();
  let last = -1;
  const si = await c.searchIterator({ collection_name: NAME, data: vec(5, 0), anns_field: 'v', batchSize: 30,
    limit: 90, output_fields: ['id'] });
  for await (const batch of si) {
    if (!batch) break;
    for (const h of batch) {
      assert.ok(!hits.has(String(h.id)), `search iterator id ${h.id} twice`);
      assert.ok(h.score >= last, `search iterator distance ${h.score} after ${last}`);
      hits.add(String(h.id));
      last = h.score;
    }
  }
  assert.equal(hits.size, 90);

  ok(await c.createAlias({ collection_name: NAME, alias: 'films_now' }), 'createAlias');
  const alias = ok(await c.describeAlias({ collection_name: NAME, alias: 'films_now' }), 'describeAlias');
  assert.equal(alias.collection, NAME);
  const viaAlias = ok(await c.search({ collection_name: 'films_now', data: [vec(7, 0)], anns_field: 'v', limit: 1,
    output_fields: ['id'] }), 'search alias').results;
  assert.deepEqual(ids(viaAlias), [7]);
  ok(await c.dropAlias({ alias: 'films_now' }), 'dropAlias');

  ok(await c.releaseCollection({ collection_name: NAME }), 'releaseCollection');
  ok(await c.dropPartition({ collection_name: NAME, partition_name: 'old' }), 'dropPartition');
  ok(await c.dropCollection({ collection_name: NAME }), 'dropCollection');
  ok(await admin.dropDatabase({ db_name: db }), 'dropDatabase');
  assert.ok(!ok(await admin.listDatabases(), 'listDatabases').db_names.includes(db));
  await c.closeConnection();
  await admin.closeConnection();
  console.log('scenario ok');
}

main().catch((e) => { console.error(e); process.exit(1); });
