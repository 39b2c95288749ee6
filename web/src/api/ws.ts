// WebSocket client for /v1/ws. Remembers, per topic, the last position seen and
// re-subscribes with `after` = that position after any disconnect, so no event is
// missed or repeated.
import type { components } from './schema';

export type ServerFrame = components['schemas']['WsServerFrame'];
export type EventFrame = Extract<ServerFrame, { type: 'event' }>;
// The stored event's fields, flat.
export type StoredEvent = { type: string; at: string; [k: string]: any };

type TopicHandler = {
  onEvent: (ev: StoredEvent, position: number) => void;
  onSubscribed?: (position: number) => void;
  onError?: (status: number, detail: string) => void;
};

export class Socket {
  private ws: WebSocket | null = null;
  private topics = new Map<string, { after: number | null; handlers: Set<TopicHandler>; live: boolean }>();
  private frameListeners = new Set<(f: any) => void>();
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
      let f: any;
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
  subscribe(topic: string, handler: TopicHandler, after: number | null = null): () => void {
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

  onFrame(l: (f: any) => void) { this.frameListeners.add(l); return () => this.frameListeners.delete(l); }
  onState(l: (up: boolean) => void) { this.stateListeners.add(l); return () => this.stateListeners.delete(l); }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
