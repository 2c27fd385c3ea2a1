// The `shard` setting: each bad value is refused naming the input, the value and what is allowed; a sharded
// upload job may not clean up (every shard would delete what the others upload), only the cleanup step may.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refused, settings } from '../helpers/settings.ts';

test('shard reads i/n and cleanup; empty is no sharding', () => {
  assert.equal(settings({}).shard, undefined);
  assert.deepEqual(settings({ shard: '2/4' }).shard, { kind: 'upload', index: 2, count: 4 });
  assert.deepEqual(settings({ shard: ' 1 / 1 ' }).shard, { kind: 'upload', index: 1, count: 1 });
  assert.deepEqual(settings({ shard: '256/256' }).shard, { kind: 'upload', index: 256, count: 256 });
  assert.deepEqual(settings({ shard: 'cleanup' }).shard, { kind: 'cleanup', count: undefined });
  assert.deepEqual(settings({ shard: 'Cleanup/4' }).shard, { kind: 'cleanup', count: 4 });
});

test('a bad shard names the input, the value and what is allowed', () => {
  for (const bad of [
    '0/4',
    '5/4',
    '1/257',
    '1/0',
    'a/b',
    '2',
    '-1/4',
    '1.5/4',
    '2/4/8',
    'cleanup/0',
    'final',
  ]) {
    const r = refused({ shard: bad });
    assert.equal(r.input, 'shard', bad);
    assert.ok(r.message.includes(`input \`shard\`: got \`${bad}\``), r.message);
    assert.match(r.message, /allowed `i\/n` with whole numbers 1 ≤ i ≤ n ≤ 256/);
    assert.ok(r.cli.startsWith(`\`--shard\`: got \`${bad}\``), r.cli);
  }
});

test('an upload shard refuses delete-orphans and abort-stale-uploads, naming both; the cleanup step takes them', () => {
  for (const extra of [{ 'delete-orphans': 'true' }, { 'abort-stale-uploads': '24h' }] as Array<
    Record<string, string>
  >) {
    const r = refused({ shard: '3/4', ...extra });
    assert.match(r.message, /`delete-orphans` and `abort-stale-uploads`/);
    assert.equal(r.input, Object.keys(extra)[0]);
    assert.match(r.message, /\(`shard` is `3\/4`\)/);
    assert.match(r.message, /sets `shard` to `cleanup`/);
    assert.match(r.cli, /`--delete-orphans` and `--abort-stale-uploads`.*\(`--shard` is `3\/4`\)/);
  }
  const s = settings({ shard: 'cleanup', 'delete-orphans': 'true', 'abort-stale-uploads': '24h' });
  assert.equal(s.deleteOrphans, true);
  assert.equal(s.abortStaleUploadsMs, 86_400_000);
});
