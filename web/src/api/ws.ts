// WebSocket client for /v1/ws. Remembers, per topic, the last position seen and
// re-subscribes with `after` = that position after any disconnect, so no event is
// missed or repeated.
import type { components } from './schema';
import type { Event } from './events';

export type ServerFrame = components['schemas']['WsServerFrame'];
export type EventFrame = Extract<ServerFrame, { type: 'event' }>;
/** An event as an agent's topic carries it: the stored event's fields, flat (their types are
 * generated from `schemas/events/`), with when it was stored and its place in the log (none
 * for an event the console applies itself before the server's arrives). */
export type StoredEvent = Event & { at: string; position?: number };
/** An event as a customer's topic carries it: API.md's allow-list of types and fields, as
 * the server declares it (`CustomerEvent` in `gateway/src/ws/customer.rs`). */
export type CustomerEvent = components['schemas']['CustomerEvent'];
/** A message as a live `MessageSent` carries it, to an agent or to its customer. */
export type MessageEvent = Extract<CustomerEvent, { type: 'MessageSent' }>;

/** The conversation, organization or queue an event is about, when it has one. */
export const conversationOf = (ev: StoredEvent): string | undefined => ('conversation_id' in ev ? ev.conversation_id : undefined);
export const organizationOf = (ev: StoredEvent): string | undefined => ('organization_id' in ev ? ev.organization_id : undefined);
export const queueOf = (ev: StoredEvent): string | undefined =>
  ('queue_id' in ev && ev.queue_id ? ev.queue_id : 'to_queue_id' in ev ? ev.to_queue_id : undefined) ?? undefined;
/** The customer's name, as the customer gave it when joining (its metadata's `name`). */
export const customerNameOf = (ev: StoredEvent): string =>
  (ev.type === 'CustomerJoinedQueue' || ev.type === 'CustomerMetadataSet') && ev.metadata && typeof ev.metadata === 'object'
    ? String((ev.metadata as { name?: unknown }).name ?? '').trim()
    : '';

type TopicHandler<E> = {
  onEvent: (ev: E, position: number) => void;
  onSubscribed?: (position: number) => void;
  onError?: (status: number, detail: string) => void;
};

export class Socket {
  private ws: WebSocket | null = null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each handler names its topic's event type
  private topics = new Map<string, { after: number | null; handlers: Set<TopicHandler<any>>; live: boolean }>();
  private frameListeners = new Set<(f: ServerFrame) => void>();
  private stateListeners = new Set<(up: boolean) => void>();
  private retry = 0;
  private closed = false;
  private timer: number | undefined;

  constructor(private token: string) {
    this.connect();
  }

  private url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/v1/ws?token=${encodeURIComponent(this.token)}`;
  }

  private connect() {
    if (this.closed) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.stateListeners.forEach((l) => l(true));
      for (const [topic, t] of this.topics) this.send({ type: 'subscribe', topic, after: t.after });
    };
    ws.onmessage = (m) => {
      let f: ServerFrame;
      try { f = JSON.parse(m.data); } catch { return; }
      if (f.type === 'event') {
        const t = this.topics.get(f.topic);
        if (!t) return;
        if (t.after !== null && f.position <= t.after) return; // never twice
        t.after = f.position;
        t.handlers.forEach((h) => h.onEvent({ ...f.event }, f.position));
      } else if (f.type === 'subscribed') {
        const t = this.topics.get(f.topic);
        if (!t) return;
        if (t.after === null || f.position > t.after) t.after = f.position;
        t.live = true;
        t.handlers.forEach((h) => h.onSubscribed?.(f.position));
      } else if (f.type === 'error' && f.topic) {
        this.topics.get(f.topic)?.handlers.forEach((h) => h.onError?.(f.status, f.detail));
      }
      this.frameListeners.forEach((l) => l(f));
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      this.stateListeners.forEach((l) => l(false));
      if (this.closed) return;
      const delay = Math.min(10000, 500 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  send(frame: object) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Subscribes to a topic; returns the unsubscribe function. `after` null = from the beginning. */
  subscribe<E = StoredEvent>(topic: string, handler: TopicHandler<E>, after: number | null = null): () => void {
    let t = this.topics.get(topic);
    if (!t) {
      t = { after, handlers: new Set(), live: false };
      this.topics.set(topic, t);
      this.send({ type: 'subscribe', topic, after });
    } else if (t.live) {
      // A second follower of a topic already live shares it from here on: it is told so at
      // once, as the first was when its replay ended.
      const at = t.after ?? 0;
      queueMicrotask(() => handler.onSubscribed?.(at));
    }
    t.handlers.add(handler);
    return () => {
      const cur = this.topics.get(topic);
      if (!cur) return;
      cur.handlers.delete(handler);
      if (cur.handlers.size === 0) {
        this.topics.delete(topic);
        this.send({ type: 'unsubscribe', topic });
      }
    };
  }

  onFrame(l: (f: ServerFrame) => void) { this.frameListeners.add(l); return () => this.frameListeners.delete(l); }
  onState(l: (up: boolean) => void) { this.stateListeners.add(l); return () => this.stateListeners.delete(l); }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
