// Proves durations parse the way the inputs document them and print back the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/deploy/duration.ts';

test('units d h m s, combined, or plain seconds; anything else is not a duration', () => {
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1d12h'), 129_600_000);
  assert.equal(parseDuration(' 90M '), 5_400_000);
  assert.equal(parseDuration('3600'), 3_600_000);
  for (const bad of ['', 'h', '1.5h', '24 hours', '-1h', '1w', '1h 30m'])
    assert.equal(parseDuration(bad), undefined, bad);
});

test('format gives the shortest text that parses back', () => {
  for (const text of ['1d12h', '1h', '15m', '45s', '2d3h4m5s'])
    assert.equal(formatDuration(parseDuration(text)!), text);
  assert.equal(formatDuration(0), '0s');
});
