/** Alibaba's Go SDK as a benchmark peer: built from bench/go when Go and Debian's SDK package are installed. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const GOPATH = '/usr/share/gocode';

/** The peer's binary in `dir`, or why there is none. */
export function buildGoPeer(dir: string): { binary?: string; why?: string } {
  if (!existsSync(join(GOPATH, 'src/github.com/aliyun/aliyun-oss-go-sdk/oss')))
    return { why: 'install the Debian packages golang-go and golang-github-aliyun-aliyun-oss-go-sdk-dev' };
  const binary = join(dir, 'go-upload');
  const built = spawnSync('go', ['build', '-o', binary, join(import.meta.dirname, 'go', 'upload.go')], {
    cwd: dir,
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'go-cache') },
    encoding: 'utf8',
  });
  if (built.error) return { why: `go is not installed (${built.error.message})` };
  if (built.status !== 0) return { why: `go build failed: ${built.stderr.trim()}` };
  return { binary };
}

/** The peer's flags from bench/client.ts-style `--name value` pairs. */
export function goArgs(common: string[]): string[] {
  const flag = (name: string): string => common[common.indexOf(`--${name}`) + 1]!;
  return [
    '-url',
    flag('url'),
    '-file',
    flag('file'),
    '-part-size',
    flag('part-size'),
    '-threads',
    flag('threads'),
  ];
}
