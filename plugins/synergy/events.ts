/** What every synergy event carries (seed 000, "Synergy Bus": source jewel, target, payload). */
export interface EventBase {
  /** Always `"dgent"`: the jewel that emitted it. */
  readonly source: "dgent";
  /** Who should care: `"*"` (any jewel), as in the seed. */
  readonly target: string;
  /** The store's namespace. */
  readonly namespace: string;
  /** Epoch ms when it was emitted. */
  readonly at: number;
  /** The emitting process (`host/pid/random`). */
  readonly origin: string;
  /** True when it came from another process over the cross-process bus. */
  readonly remote: boolean;
}

export interface StoredEvent extends EventBase {
  readonly type: "stored";
  readonly id: string;
  /** The datum's metadata as the caller gave it (empty when it had to be cut to fit a NOTIFY). */
  readonly metadata: Readonly<Record<string, string>>;
  readonly tier: string;
}
export interface DeletedEvent extends EventBase {
  readonly type: "deleted";
  readonly id: string;
}
export interface PromotedEvent extends EventBase {
  readonly type: "promoted";
  readonly id: string;
  readonly from: string;
  readonly to: string;
}
export interface DegradedEvent extends EventBase {
  readonly type: "degraded";
  readonly tier: string;
  readonly rank: number;
  /** The tier writes land on now. */
  readonly landing?: string;
}
export interface RestoredEvent extends EventBase {
  readonly type: "restored";
  readonly tier: string;
  readonly rank: number;
}

export type SynergyEvent = StoredEvent | DeletedEvent | PromotedEvent | DegradedEvent | RestoredEvent;
export type SynergyEventType = SynergyEvent["type"];
export const EVENT_TYPES: readonly SynergyEventType[] = Object.freeze(["stored", "deleted", "promoted", "degraded", "restored"]);

/** The event of one type. */
export type EventOf<T extends SynergyEventType | "*"> = T extends SynergyEventType ? Extract<SynergyEvent, { type: T }> : SynergyEvent;

export type SynergyListener<T extends SynergyEventType | "*" = "*"> = (event: EventOf<T>) => void | Promise<void>;

/** True for a value shaped like a synergy event (used on payloads from other processes). */
export function isSynergyEvent(value: unknown): value is SynergyEvent {
  if (value === null || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return (
    v.source === "dgent" &&
    typeof v.type === "string" &&
    (EVENT_TYPES as readonly string[]).includes(v.type) &&
    typeof v.namespace === "string" &&
    typeof v.origin === "string" &&
    typeof v.at === "number"
  );
}
