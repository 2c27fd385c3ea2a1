/** What a person sees: throttled progress lines, a final table, the job summary and the step outputs. */
import * as core from '@actions/core';
import type { ProgressEvent, UploadOutcome, UploadResult } from '../engine/index.ts';
import type { CleanupResult } from './cleanup.ts';
import { OUTPUT } from './constants.ts';
import { finalState, headersUpdated } from './ledger.ts';
import { escapeText } from './log-line.ts';
import { formatBytes } from './size.ts';

/** Turns the engine's progress facts into at most one line per file every `intervalMs`, plus one at 100% for files that had one. */
export class ProgressReporter {
  private readonly last = new Map<
    string,
    { at: number; started: number; startBytes: number; wrote: boolean }
  >();
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly write: (line: string) => void;

  constructor(opts: { intervalMs?: number; now?: () => number; write?: (line: string) => void } = {}) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.now = opts.now ?? Date.now;
    this.write = opts.write ?? ((line) => core.info(line));
  }

  readonly onProgress = (e: ProgressEvent): void => {
    const t = this.now();
    let seen = this.last.get(e.key);
    if (!seen) {
      seen = { at: t, started: t, startBytes: e.bytesDone, wrote: false };
      this.last.set(e.key, seen);
      if (e.bytesResumed > 0) {
        this.write(
          `${e.key}: resumed ${formatBytes(e.bytesResumed)} of ${formatBytes(e.bytesTotal)} from checkpoint`,
        );
      }
      return;
    }
    const finished = e.bytesDone >= e.bytesTotal && e.partsDone >= e.partsTotal;
    if (finished) {
      this.last.delete(e.key);
      // a file that ended before its first progress line gets only its result line
      if (!seen.wrote) return;
    } else if (t - seen.at < this.intervalMs) return;
    seen.at = t;
    seen.wrote = true;
    this.write(progressLine(e, (t - seen.started) / 1000, e.bytesDone - seen.startBytes));
  };
}

/**
 * The one line that says how a file ended: `uploaded key (96.0 MiB in 0.8s, 52.0 MiB resumed, verified by crc64)`,
 * or `unchanged key (...)` when nothing had to be sent.
 */
export function resultLine(r: UploadResult): string {
  if (headersUpdated(r)) {
    return `headers updated ${r.key} (${formatBytes(r.size)}: same bytes, new headers; nothing re-sent)`;
  }
  if (r.unchanged) {
    return `unchanged ${r.key} (${formatBytes(r.size)}: same size and CRC-64 as the stored object; nothing sent)`;
  }
  const resumed = r.bytesResumed > 0 ? `, ${formatBytes(r.bytesResumed)} resumed` : '';
  return `uploaded ${r.key} (${formatBytes(r.size)} in ${r.seconds.toFixed(1)}s${resumed}, verified by ${r.verified})`;
}

/** `key: 42.0% 420.0 MiB / 1000.0 MiB, 83.1 MB/s, ETA 7s (resumed 100.0 MiB)` */
export function progressLine(e: ProgressEvent, seconds: number, bytesThisRun: number): string {
  const pct = e.bytesTotal === 0 ? 100 : (e.bytesDone / e.bytesTotal) * 100;
  // a retried request takes its bytes back, so this run's count can dip below where the line started
  const rate = seconds > 0 ? Math.max(0, bytesThisRun) / seconds : 0;
  const eta = rate > 0 ? `, ETA ${Math.ceil((e.bytesTotal - e.bytesDone) / rate)}s` : '';
  const resumed = e.bytesResumed > 0 ? ` (resumed ${formatBytes(e.bytesResumed)})` : '';
  return `${e.key}: ${pct.toFixed(1)}% ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}, ${(rate / 1e6).toFixed(1)} MB/s${eta}${resumed}`;
}

export interface Totals {
  uploaded: number;
  /** Already stored with the same size and CRC-64: nothing sent. */
  skipped: number;
  /** Same bytes already stored; only the headers were rewritten in place. */
  updated: number;
  failed: number;
  bytesUploaded: number;
  bytesResumed: number;
  keys: string[];
  urls: string[];
}

export function totals(outcomes: readonly UploadOutcome[], urlOf: (key: string) => string): Totals {
  const ok = outcomes.filter((o): o is Extract<UploadOutcome, { ok: true }> => o.ok);
  const count = (state: ReturnType<typeof finalState>): number =>
    ok.filter((o) => finalState(o) === state).length;
  return {
    uploaded: count('uploaded'),
    skipped: count('unchanged'),
    updated: count('headers updated'),
    failed: outcomes.length - ok.length,
    bytesUploaded: ok.reduce((s, o) => s + o.result.bytesSent, 0),
    bytesResumed: ok.reduce((s, o) => s + o.result.bytesResumed, 0),
    // every object the step stands behind, sent now or already there
    keys: ok.map((o) => o.result.key),
    urls: ok.map((o) => urlOf(o.result.key)),
  };
}

/** Plain-text table for the log. */
export function resultTable(outcomes: readonly UploadOutcome[]): string {
  const rows = outcomes.map((o) =>
    o.ok
      ? [
          escapeText(o.result.key),
          formatBytes(o.result.size),
          `${o.result.seconds.toFixed(1)}s`,
          formatBytes(o.result.bytesResumed),
          finalState(o) === 'uploaded' ? `ok (${o.result.verified})` : finalState(o),
        ]
      : [escapeText(o.item.key), '', '', '', 'FAILED'],
  );
  const head = ['key', 'size', 'time', 'resumed', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** Outputs of the step. */
export function writeOutputs(t: Totals, cleanup: CleanupResult): void {
  core.setOutput(OUTPUT.uploadedCount, t.uploaded);
  core.setOutput(OUTPUT.skippedCount, t.skipped);
  core.setOutput(OUTPUT.updatedCount, t.updated);
  core.setOutput(OUTPUT.bytesUploaded, t.bytesUploaded);
  core.setOutput(OUTPUT.bytesResumed, t.bytesResumed);
  core.setOutput(OUTPUT.keys, JSON.stringify(t.keys));
  core.setOutput(OUTPUT.urls, JSON.stringify(t.urls));
  core.setOutput(OUTPUT.deletedCount, cleanup.deleted);
  core.setOutput(OUTPUT.orphans, JSON.stringify(cleanup.orphans));
  core.setOutput(OUTPUT.abortedUploads, cleanup.aborted);
}

/** What the cleanup did (or, with dry-run, would do), for the job summary. */
export function cleanupLines(c: CleanupResult): string[] {
  const lines: string[] = [];
  const would = c.dryRun ? 'would be ' : '';
  const listed = (keys: readonly string[]): string =>
    keys.length === 0
      ? ''
      : `: ${keys
          .slice(0, 20)
          .map((k) => `\`${k}\``)
          .join(', ')}${keys.length > 20 ? `, and ${keys.length - 20} more` : ''}`;
  if (c.orphansSkipped) lines.push(`Orphans not deleted: ${c.orphansSkipped}.`);
  else if (c.orphans.length > 0)
    lines.push(`${c.orphans.length} orphan(s) ${would}deleted${listed(c.orphans)}`);
  if (c.stale.length > 0)
    lines.push(
      `${c.stale.length} stale upload(s) ${would}aborted${listed(c.stale.map((u) => u.key))}${c.abortFailures.length ? ` (${c.abortFailures.length} could not be aborted)` : ''}`,
    );
  return lines;
}

/** The job summary: a table of file, key, size, time, resumed. */
export async function writeSummary(
  outcomes: readonly UploadOutcome[],
  t: Totals,
  cleanup: CleanupResult,
): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const rows = outcomes.map((o) =>
    (o.ok
      ? [
          o.item.file,
          o.result.key,
          formatBytes(o.result.size),
          `${o.result.seconds.toFixed(1)}s`,
          formatBytes(o.result.bytesResumed),
        ]
      : [o.item.file, o.item.key, '', '', 'failed']
    ).map(htmlText),
  );
  const summary = core.summary
    .addHeading('OSS upload', 3)
    .addRaw(
      `${t.uploaded} uploaded (${formatBytes(t.bytesUploaded)} sent, ${formatBytes(t.bytesResumed)} resumed from checkpoints)${t.skipped ? `, ${t.skipped} unchanged` : ''}${t.updated ? `, ${t.updated} with headers updated` : ''}${t.failed ? `, ${t.failed} failed` : ''}`,
      true,
    )
    .addTable([
      [
        { data: 'File', header: true },
        { data: 'Key', header: true },
        { data: 'Size', header: true },
        { data: 'Time', header: true },
        { data: 'Resumed', header: true },
      ],
      ...rows,
    ]);
  const lines = cleanupLines(cleanup);
  if (lines.length > 0) summary.addList(lines);
  await summary.write();
}

/** The summary is HTML: a file named `<img src=x>` is shown, never rendered. */
function htmlText(text: string): string {
  return escapeText(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** One line a person can act on: the OSS code, EC and request id come from the error's own message. */
export function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
