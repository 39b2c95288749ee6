import { useEffect, useRef } from 'preact/hooks';
import type { Message } from './api/client';
import type { MessageEvent } from './api/ws';
import { t, fmtTime } from './i18n';

const safeUrl = (u: string) => (/^(https?:\/\/|\/)/i.test(u) ? u : '#');

/** The message list. Every user text is a text node: nothing is ever parsed as HTML. */
export function Messages({ messages, mine }: { messages: Message[]; mine: (m: Message) => boolean }) {
  const ref = useRef<HTMLOListElement>(null);
  useEffect(() => { const el = ref.current; if (el) el.scrollTop = el.scrollHeight; }, [messages.length]);
  return (
    <ol class="messages" ref={ref} aria-live="polite">
      {messages.map((m) => (
        <li key={m.seq} class={`msg ${m.author.kind} ${mine(m) ? 'mine' : ''}`} data-seq={m.seq}>
          <div class="meta">
            <span class="author">{m.author.kind === 'system' ? t('system') : m.author.name || (m.author.kind === 'customer' ? t('customer') : '')}</span>
            <time dateTime={m.sent_at}>{fmtTime(m.sent_at)}</time>
          </div>
          {m.text && <div class="text">{m.text}</div>}
          {m.attachments?.map((a) => (
            <div class="attachment" key={a.attachment_id}>
              {a.url && /^image\/(png|jpeg|gif|webp)$/.test(a.content_type) && <img src={safeUrl(a.url)} alt={a.name} />}
              {a.url ? <a href={safeUrl(a.url)} download={a.name} target="_blank" rel="noopener noreferrer">📎 {a.name}</a> : <span>📎 {a.name}</span>}
            </div>
          ))}
        </li>
      ))}
    </ol>
  );
}

const complete = (m: Message) => m.attachments.every((a) => a.url);

/** Merges messages by seq, in order; a message with attachment URLs is never replaced by one without. */
export function mergeMessages(cur: Message[], add: Message[]): Message[] {
  const m = new Map(cur.map((x) => [x.seq, x]));
  for (const x of add) {
    const old = m.get(x.seq);
    if (!old || complete(x) || !complete(old)) m.set(x.seq, x);
  }
  return [...m.values()].sort((a, b) => a.seq - b.seq);
}

/** A message as a live `MessageSent` event carries it (attachment URLs are signed at read time, so none yet). */
export function messageFromEvent(ev: MessageEvent): Message {
  return {
    seq: ev.seq, id: ev.message_id, author: ev.author, text: ev.text, sent_at: ev.at,
    attachments: ev.attachments.map((a) => ({ attachment_id: a.attachment_id, name: a.name, size: a.size, content_type: a.content_type, url: '' })),
  };
}

/**
 * Reads messages after `seq - 1` until message `seq` is there (the read model may lag the live
 * event by a moment); used to get the signed URLs of a new message's attachments.
 */
export async function fetchUntil(seq: number, page: (after: number) => Promise<Message[]>, merge: (ms: Message[]) => void) {
  for (let i = 0; i < 20; i++) {
    const got = await page(seq - 1).catch(() => [] as Message[]);
    if (got.length) merge(got);
    if (got.some((m) => m.seq === seq && complete(m))) return;
    await new Promise((r) => setTimeout(r, 250 + i * 100));
  }
}

/** Uploads one file (multipart) and returns the attachment. */
export async function uploadFile(conversation: string, token: string, f: File) {
  const fd = new FormData();
  fd.append('file', f, f.name);
  const r = await fetch(`/v1/conversations/${encodeURIComponent(conversation)}/attachments`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Idempotency-Key': crypto.randomUUID() }, body: fd,
  });
  if (!r.ok) {
    // The server's problem+json says why (too large, the conversation ended, …).
    const problem = await r.json().catch(() => null);
    throw new Error(problem?.detail || `HTTP ${r.status}`);
  }
  return (await r.json()) as { attachment_id: string; name: string; url: string };
}
