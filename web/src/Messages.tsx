import { useEffect, useRef } from 'preact/hooks';
import type { Message } from './api/client';
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
              {/^image\/(png|jpeg|gif|webp)$/.test(a.content_type) && <img src={safeUrl(a.url)} alt={a.name} loading="lazy" />}
              <a href={safeUrl(a.url)} download={a.name} target="_blank" rel="noopener noreferrer">📎 {a.name}</a>
            </div>
          ))}
        </li>
      ))}
    </ol>
  );
}

/** Merges messages by seq, in order. */
export function mergeMessages(cur: Message[], add: Message[]): Message[] {
  const m = new Map(cur.map((x) => [x.seq, x]));
  for (const x of add) m.set(x.seq, x);
  return [...m.values()].sort((a, b) => a.seq - b.seq);
}

/** Uploads one file (multipart) and returns the attachment. */
export async function uploadFile(conversation: string, token: string, f: File) {
  const fd = new FormData();
  fd.append('file', f, f.name);
  const r = await fetch(`/v1/conversations/${encodeURIComponent(conversation)}/attachments`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Idempotency-Key': crypto.randomUUID() }, body: fd,
  });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.json()) as { attachment_id: string; name: string; url: string };
}
