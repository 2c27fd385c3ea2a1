// The deploy settings a set of inputs gives, as the action reads them (with a site, a bucket and keys set).
import assert from 'node:assert/strict';
import { CLI_NAMES } from '../../src/cli/main.ts';
import { isSettingError } from '../../src/deploy/setting-error.ts';
import { readSettings } from '../../src/deploy/settings.ts';

export function settings(inputs: Record<string, string>) {
  return readSettings({
    get: (n) =>
      ({ path: 'site', bucket: 'test-bucket', region: 'cn-hangzhou', destination: 'web', ...inputs })[n] ??
      '',
    env: { OSS_ACCESS_KEY_ID: 'ak', OSS_ACCESS_KEY_SECRET: 'sk' },
    mask: () => undefined,
  });
}

/** How `inputs` are refused: the input named, the message, and the message as the command line words it. */
export function refused(inputs: Record<string, string>): { input: string; message: string; cli: string } {
  try {
    settings(inputs);
  } catch (e) {
    if (!isSettingError(e)) throw e;
    return { input: e.input, message: e.message, cli: e.phrase(CLI_NAMES) };
  }
  assert.fail(`accepted ${JSON.stringify(inputs)}`);
}
