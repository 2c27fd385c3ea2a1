/** Scripted faults: rules that pick requests by operation, key and part, and say what goes wrong. */
import type { OssOperation } from '../oss/operations.ts';

export type FaultAction =
  | { type: 'error'; status: number; code: string; message?: string }
  | { type: 'delay'; ms: number }
  | { type: 'reset'; afterBytes?: number }
  | { type: 'forgetUpload' }
  | { type: 'completeThen500' }
  | { type: 'badCrc' }
  | { type: 'skew' };

export interface FaultRule {
  operation?: OssOperation | OssOperation[];
  bucket?: string;
  key?: string;
  partNumber?: number;
  /** 1-based index among matching requests, counted from when the rule was added. @default 1 */
  nth?: number;
  /** How many matching requests from `nth` on get the fault (Infinity allowed). @default 1 */
  times?: number;
  action: FaultAction;
}

export interface FaultTarget {
  operation: OssOperation | 'Unknown';
  bucket?: string | undefined;
  key?: string | undefined;
  partNumber?: number | undefined;
}

interface ActiveRule {
  id: string;
  rule: FaultRule;
  seen: number;
}

export class Faults {
  private rules: ActiveRule[] = [];
  private nextId = 1;

  add(rule: FaultRule): string {
    const id = `fault-${this.nextId++}`;
    this.rules.push({ id, rule, seen: 0 });
    return id;
  }

  clear(): void {
    this.rules = [];
  }

  list(): FaultRule[] {
    return this.rules.map((r) => r.rule);
  }

  /** The action for this request, if a rule picks it; every matching rule counts the request. */
  pick(target: FaultTarget): FaultAction | undefined {
    let chosen: FaultAction | undefined;
    for (const active of this.rules) {
      const r = active.rule;
      const ops =
        r.operation === undefined ? undefined : Array.isArray(r.operation) ? r.operation : [r.operation];
      if (ops && !ops.includes(target.operation as OssOperation)) continue;
      if (r.bucket !== undefined && r.bucket !== target.bucket) continue;
      if (r.key !== undefined && r.key !== target.key) continue;
      if (r.partNumber !== undefined && r.partNumber !== target.partNumber) continue;
      active.seen++;
      const first = r.nth ?? 1;
      const times = r.times ?? 1;
      if (!chosen && active.seen >= first && active.seen < first + times) chosen = r.action;
    }
    return chosen;
  }
}
