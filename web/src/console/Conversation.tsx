import { useEffect, useRef, useState } from 'preact/hooks';
import { ok, allPages, downloadTranscript, type Api, type Me, type AgentConversation, type Message, type Note, type Canned, type Queue, type Member, ApiError } from '../api/client';
import type { Socket, StoredEvent } from '../api/ws';
import { t, fmtTime, type Key } from '../i18n';
import { Messages, mergeMessages, uploadFile, messageFromEvent, fetchUntil } from '../Messages';
import { Composer } from './Composer';
import { Call, callState } from '../Call';
import { errText } from './errors';

/** The fields Jono's widget asks for and sends, in the agent's language; any other key as it is. */
const KNOWN_FIELDS: Record<string, Key> = { name: 'name', email: 'email', question: 'customerQuestion', page: 'currentPage' };
function fieldName(key: string): string {
  const known = KNOWN_FIELDS[key];
  return known ? t(known) : key;
}

function Info({ title, data }: { title: string; data: Record<string, unknown> | undefined }) {
  const entries = Object.entries(data ?? {});
  return (
    <div class="info">
      <h3>{title}</h3>
      {entries.length === 0 ? <span class="muted">{t('noMetadata')}</span> : (
        <dl>{entries.map(([k, v]) => [<dt key={`k${k}`} data-key={k}>{fieldName(k)}</dt>, <dd key={`v${k}`}>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>])}</dl>
      )}
    </div>
  );
}

const drafts = new Map<string, string>();

/** The console's phone layout (style.css uses the same width): one column at a time. */
export const PHONE = '(max-width: 700px)';

/** One conversation event applied to the agent's view of it. */
export function applyEvent(c: AgentConversation, ev: StoredEvent): AgentConversation {
  switch (ev.type) {
    case 'TagAdded': return c.tags.includes(ev.tag) ? c : { ...c, tags: [...c.tags, ev.tag] };
    case 'TagRemoved': return { ...c, tags: c.tags.filter((x) => x !== ev.tag) };
    case 'LiveMetadataUpdated': return { ...c, customer: { ...c.customer, live: (ev.live ?? {}) as Record<string, unknown> } };
    case 'CustomerMetadataSet': return { ...c, customer: { ...c.customer, metadata: (ev.metadata ?? {}) as Record<string, unknown> } };
    case 'CustomerPicked': return { ...c, status: 'active', agent_id: ev.agent_id, queue_position: null, picked_at: c.picked_at ?? ev.at };
    case 'ConversationTransferred': return { ...c, status: 'waiting', agent_id: null, queue_id: ev.queue_id ?? c.queue_id };
    case 'ConversationEnded': return { ...c, status: 'ended', ended_at: c.ended_at ?? ev.at };
    case 'AgentAssigned': return { ...c, status: 'active', agent_id: ev.agent_id };
    case 'ConversationReopened': return { ...c, status: 'active', agent_id: ev.agent_id, ended_at: null };
    case 'HandoffOffered': return { ...c, handoff: { handoff_id: ev.handoff_id, to_agent_id: ev.to_agent_id, expires_at: ev.expires_at } };
    case 'HandoffAccepted': return { ...c, agent_id: ev.agent_id, handoff: null };
    case 'HandoffDeclined': case 'HandoffExpired': return { ...c, handoff: null };
    // Its customer's personal data is erased: none of it stays on screen.
    case 'CustomerErased': return { ...c, erased_at: c.erased_at ?? ev.at, customer: { ...c.customer, metadata: {}, live: {}, verified: null } };
    default: return c;
  }
}

function mergeNotes(base: Note[], evs: StoredEvent[]): Note[] {
  const out = [...base];
  for (const ev of evs) {
    if (ev.type === 'NoteAdded' && !out.some((n) => n.id === ev.note_id)) {
      out.push({ id: ev.note_id, text: ev.text, author: { id: ev.by?.id, name: ev.by?.name ?? '' }, created_at: ev.at });
    }
  }
  return out;
}

export function Conversation(p: {
  id: string; atSeq?: number; inFront: boolean; api: Api; socket: Socket; me: Me; token: string; orgId: string; canned: Canned[]; allTags: string[];
  queues: Queue[]; isOperator: boolean; reloadCanned: () => Promise<void>; onChanged: () => void; memberName: (id: string) => string; members: Member[];
  /** An agent wrote in the conversation (its first answer, for the service-level marks). */
  onAnswered?: (conversation: string) => void;
  /** Opens another conversation (a returning customer's earlier one). */
  onOpen?: (conversation: string) => void;
  onBack?: () => void;
}) {
  const { id, api } = p;
  const [messages, setMessages] = useState<Message[]>([]);
  const [text, setTextState] = useState(drafts.get(id) ?? '');
  const setText = (v: string) => { drafts.set(id, v); setTextState(v); };
  // On a phone the chat sidebar covers the conversation's lower part: it starts closed there.
  const [side, setSide] = useState(() => !window.matchMedia(PHONE).matches);
  const [note, setNote] = useState('');
  const [tag, setTag] = useState('');
  const [err, setErr] = useState('');
  const [typing, setTyping] = useState('');
  const [nc, setNc] = useState({ key: '', text: '', org: false });
  const [target, setTarget] = useState('');
  const lastTyping = useRef(0);

  // The view is the GET snapshot with every event of the topic applied on top, in order.
  // Read models may lag the live events, so the events are the source of truth here; the
  // changes below are idempotent, so applying an event the snapshot already holds is harmless.
  const [base, setBase] = useState<AgentConversation | null>(null);
  const [evs, setEvs] = useState<StoredEvent[]>([]);
  const [baseNotes, setBaseNotes] = useState<Note[]>([]);
  const conv = base && evs.reduce(applyEvent, base);
  const notes = mergeNotes(baseNotes, evs);

  // A verified returning customer's other conversations (its site signed its identity).
  const [earlier, setEarlier] = useState<AgentConversation[] | null>(null);
  const verifiedRef = base?.customer?.verified?.customer_ref;
  useEffect(() => {
    if (!verifiedRef) { setEarlier(null); return; }
    ok(api.GET('/v1/conversations/{c}/same-customer', { params: { path: { c: id } } })).then(setEarlier).catch(() => setEarlier([]));
  }, [id, verifiedRef]);
  const loadConv = async () => setBase((await ok(api.GET('/v1/conversations/{c}', { params: { path: { c: id } } }))) as AgentConversation);
  const loadNotes = async () => setBaseNotes(await ok(api.GET('/v1/conversations/{c}/notes', { params: { path: { c: id } } })));
  const maxSeq = useRef(0);
  const loadMessages = async () => {
    const list = await allPages(
      (after, limit) => ok(api.GET('/v1/conversations/{c}/messages', { params: { path: { c: id }, query: { after: (after ?? String(maxSeq.current)) as any, limit } } })),
      (m) => String(m.seq));
    setMessages((cur) => mergeMessages(cur, list));
  };
  useEffect(() => { maxSeq.current = messages.length ? messages[messages.length - 1].seq : 0; }, [messages]);
  // Read markers are the server's (`POST …/read`), so the unread counts follow the agent to a
  // reload and another device: what is on screen, in front of the agent, is read.
  const marked = useRef(0);
  useEffect(() => {
    const mark = () => {
      const seq = messages.length ? messages[messages.length - 1].seq : 0;
      if (!p.inFront || document.hidden || seq <= marked.current) return;
      marked.current = seq;
      ok(api.POST('/v1/conversations/{c}/read', { params: { path: { c: id } }, body: { seq } })).catch(() => { marked.current = 0; });
    };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  }, [messages, p.inFront]);
  // Opened from a search result: show that message, once it is there (after the list's own
  // scroll to the newest).
  const shownHit = useRef(false);
  useEffect(() => {
    if (p.atSeq === undefined || shownHit.current) return;
    const hit = document.querySelector<HTMLElement>(`main.conversation .messages [data-seq="${p.atSeq}"]`);
    if (!hit) return;
    shownHit.current = true;
    requestAnimationFrame(() => { hit.classList.add('hit'); hit.scrollIntoView({ block: 'center' }); });
  }, [messages, p.atSeq]);

  useEffect(() => {
    loadConv().catch((e) => setErr(errText(e)));
    loadMessages().catch(() => {});
    loadNotes().catch(() => {});
    const off = p.socket.subscribe(`conversation:${id}`, {
      onEvent: (ev) => {
        if (ev.type === 'MessageSent') {
          setMessages((cur) => mergeMessages(cur, [messageFromEvent(ev)]));
          if ((ev.author as { kind?: string } | undefined)?.kind === 'agent') p.onAnswered?.(id);
          if (ev.attachments?.length) {
            fetchUntil(ev.seq, (after) => ok(api.GET('/v1/conversations/{c}/messages', { params: { path: { c: id }, query: { after: String(after) as any } } })),
              (ms) => setMessages((cur) => mergeMessages(cur, ms)));
          }
          setTyping('');
        } else {
          setEvs((cur) => [...cur, ev]);
          if (['ConversationEnded', 'CustomerPicked', 'ConversationTransferred', 'ConversationReopened', 'AgentAssigned', 'HandoffAccepted', 'HandoffDeclined', 'HandoffExpired'].includes(ev.type)) p.onChanged();
        }
      },
      onError: (_s, d) => setErr(errText(d)),
    });
    const offFrames = p.socket.onFrame((f) => {
      if (f.type === 'typing' && f.conversation === id && f.author?.id !== p.me.agent_id) {
        setTyping(f.author?.name || t('customer'));
        window.setTimeout(() => setTyping(''), 4000);
      }
    });
    return () => { off(); offFrames(); };
  }, [id]);

  const act = async (f: () => Promise<unknown>) => { try { setErr(''); await f(); } catch (e) { setErr(errText(e)); } };
  // A failed send throws on, so that the composer keeps the draft.
  const send = async (body: string, atts: { attachment_id: string }[]) => {
    try {
      setErr('');
      await ok(api.POST('/v1/conversations/{c}/messages', { params: { path: { c: id } }, body: { text: body, attachments: atts.map((a) => a.attachment_id) } }));
    } catch (e) { setErr(errText(e)); throw e; }
  };
  const addTag = (e: Event) => { e.preventDefault(); const v = tag.trim(); if (!v) return; act(async () => { await ok(api.POST('/v1/conversations/{c}/tags', { params: { path: { c: id } }, body: { tag: v } })); setTag(''); }); };
  const removeTag = (v: string) => act(async () => { await ok(api.DELETE('/v1/conversations/{c}/tags/{tag}', { params: { path: { c: id, tag: v } } })); });
  const addNote = (e: Event) => { e.preventDefault(); const v = note.trim(); if (!v) return; act(async () => { await ok(api.POST('/v1/conversations/{c}/notes', { params: { path: { c: id } }, body: { text: v } })); setNote(''); }); };
  const end = () => act(async () => { await ok(api.POST('/v1/conversations/{c}/end', { params: { path: { c: id } } })); });
  // An ended conversation (or left message) goes on: the caller becomes its agent.
  const reopen = () => act(async () => { await ok(api.POST('/v1/conversations/{c}/reopen', { params: { path: { c: id } } })); p.onChanged(); });
  // Block: the conversation ends and the visitor may not start another until the block runs out.
  const [blockForm, setBlockForm] = useState({ minutes: '1440', reason: '' });
  const [blocked, setBlocked] = useState('');
  const blockVisitor = (e: Event) => {
    e.preventDefault();
    act(async () => {
      const reason = blockForm.reason.trim();
      const r = await ok(api.POST('/v1/conversations/{c}/block', { params: { path: { c: id } }, body: { minutes: Number(blockForm.minutes), ...(reason ? { reason } : {}) } }));
      setBlocked(t('blockedUntil', { until: new Date(r.until).toLocaleString() }));
      setBlockForm({ minutes: '1440', reason: '' });
      await loadConv();
    });
  };
  // Erase (operators): the customer's personal data is gone for good; everything is read again.
  const eraseCustomer = () => {
    if (!window.confirm(t('eraseConfirm'))) return;
    act(async () => {
      await ok(api.POST('/v1/orgs/{org}/erasures', { params: { path: { org: p.orgId } }, body: { conversation_id: id } }));
      setEvs([]);
      maxSeq.current = 0;
      setMessages([]);
      await Promise.all([loadConv(), loadMessages(), loadNotes()]);
      p.onChanged();
    });
  };
  // Transfer: the customer waits again, first in line, in another queue of the organization.
  const transfer = (e: Event) => {
    e.preventDefault();
    if (!target) return;
    setErr('');
    ok(api.POST('/v1/conversations/{c}/transfer', { params: { path: { c: id } }, body: { queue_id: target } }))
      .then(() => { setTarget(''); return loadConv(); })
      .catch((x) => setErr(t('transferFailed', { detail: x instanceof ApiError ? x.message : String(x?.message ?? x) })));
  };
  // Hand over: a teammate is offered the conversation, and takes it when it accepts.
  const [handTo, setHandTo] = useState('');
  const handOver = (e: Event) => {
    e.preventDefault();
    if (!handTo) return;
    act(async () => {
      await ok(api.POST('/v1/conversations/{c}/handoff', { params: { path: { c: id } }, body: { agent_id: handTo } }));
      setHandTo('');
      await loadConv();
    });
  };
  // Video call: the agent starts it; the customer's widget answers. Both sides end it.
  const calls = callState(evs);
  const startCall = () => act(async () => {
    const r = await ok(api.POST('/v1/conversations/{c}/calls', { params: { path: { c: id } } }));
    setEvs((cur) => [...cur, { type: 'CallStarted', at: new Date().toISOString(), conversation_id: id, organization_id: p.orgId, call_id: r.call_id, by: { kind: 'agent', id: p.me.agent_id, name: p.me.name } }]);
  });
  const endCall = (call: string) => act(async () => {
    await ok(api.POST('/v1/conversations/{c}/calls/{call}/end', { params: { path: { c: id, call } } }));
    setEvs((cur) => [...cur, { type: 'CallEnded', at: new Date().toISOString(), conversation_id: id, organization_id: p.orgId, call_id: call, by: { kind: 'agent', id: p.me.agent_id, name: p.me.name } }]);
  });
  const createCanned = (e: Event) => {
    e.preventDefault();
    act(async () => {
      await ok(api.POST('/v1/canned-responses', { body: { key: nc.key.trim(), text: nc.text, organization_id: nc.org ? p.orgId : null } }));
      setNc({ key: '', text: '', org: false });
      await p.reloadCanned();
    });
  };
  const deleteCanned = (c: Canned) => act(async () => { await ok(api.DELETE('/v1/canned-responses/{id}', { params: { path: { id: c.id } } })); await p.reloadCanned(); });
  const onTyping = () => { const n = Date.now(); if (n - lastTyping.current > 2000) { lastTyping.current = n; p.socket.send({ type: 'typing', conversation: id }); } };

  const ended = conv?.status === 'ended';
  const queueName = p.queues.find((q) => q.id === conv?.queue_id)?.name ?? '';
  // The organization's other queues; a closed one stays listed, and the server's 409 says why it cannot be chosen.
  const others = p.queues.filter((q) => q.id !== conv?.queue_id);
  const isCustomer = conv?.kind === 'customer';
  // A message left when nobody could answer: answered here (by email, when set up), never in a line.
  const isLeft = conv?.kind === 'left_message';
  const facesCustomer = isCustomer || isLeft;
  const leftBy = String((conv?.customer?.metadata as any)?.email ?? '');
  const title = !conv ? '' : conv.kind === 'channel' ? `# ${conv.name ?? ''}` : conv.kind === 'direct' ? (p.memberName((conv.participants ?? []).find((a) => a !== p.me.agent_id) ?? '') || conv.name || t('directs'))
    : String((conv.customer?.metadata as any)?.name || t('customer'));

  return (
    <>
      <main class="conversation" aria-label={title}>
        <header class="conv-head">
          {p.onBack && <button type="button" class="back" onClick={p.onBack}><span aria-hidden="true">←</span> {t('backToList')}</button>}
          <h2>{title}</h2>
          {conv && isCustomer && (
            <span class={`badge ${conv.status}`} data-status={conv.status}>
              {conv.status === 'waiting' && queueName ? t('waitingIn', { queue: queueName }) : t(`status_${conv.status}` as Key)}
            </span>
          )}
          {conv && isLeft && (
            <span class={`badge ${conv.status} left-message`} data-status={conv.status}>
              {conv.status === 'waiting' ? t('leftMessageIn', { queue: queueName }) : t(`status_${conv.status}` as Key)}
            </span>
          )}
          <span class="grow" />
          {isCustomer && !ended && others.length > 0 && (
            <form class="inline transfer" onSubmit={transfer}>
              <select name="transfer-queue" aria-label={t('transferTo')} value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
                <option value="">{t('transferTo')}…</option>
                {others.map((q) => <option key={q.id} value={q.id}>{q.name}{q.open ? '' : ` (${t('closed')})`}</option>)}
              </select>
              <button type="submit" disabled={!target}>{t('transfer')}</button>
            </form>
          )}
          {isCustomer && conv?.status === 'active' && (conv.agent_id === p.me.agent_id || p.isOperator) && (
            <form class="inline handoff" onSubmit={handOver}>
              <select name="handoff-agent" aria-label={t('handOverTo')} value={handTo} onChange={(e) => setHandTo((e.target as HTMLSelectElement).value)}>
                <option value="">{t('handOverTo')}</option>
                {p.members.filter((m) => m.agent_id !== conv.agent_id).map((m) => <option key={m.agent_id} value={m.agent_id}>{m.name}</option>)}
              </select>
              <button type="submit" disabled={!handTo}>{t('handOver')}</button>
            </form>
          )}
          {conv?.erased_at && <span class="badge erased" data-erased={conv.erased_at}>{t('erasedBadge')}</span>}
          {conv?.handoff && <span class="badge handing-over" data-handoff={conv.handoff.to_agent_id}>{t('handingOverTo', { name: p.memberName(conv.handoff.to_agent_id) })}</span>}
          {facesCustomer && !ended && <button type="button" class="danger" onClick={end}>{t('endConversation')}</button>}
          {facesCustomer && ended && !conv?.erased_at && <button type="button" class="reopen" onClick={reopen}>{t('reopen')}</button>}
          {facesCustomer && p.isOperator && conv && !conv.erased_at && <button type="button" class="danger erase-customer" onClick={eraseCustomer}>{t('eraseCustomer')}</button>}
          <button type="button" onClick={() => downloadTranscript(id, p.token).catch((e) => setErr(errText(e)))}>{t('transcript')}</button>
          <button type="button" aria-pressed={side} title={t('toggleSidebar')} onClick={() => setSide(!side)}>☰ {t('toggleSidebar')}</button>
        </header>
        {facesCustomer && conv && (
          <section class="customer-info" aria-label={t('customerInfo')}>
            <Info title={t('customerInfo')} data={conv.customer?.metadata as Record<string, unknown>} />
            {conv.customer?.verified && (
              <div class="info verified-customer">
                <h3>{t('verifiedCustomer')}</h3>
                <dl><dt>{t('name')}</dt><dd>{conv.customer.verified.name ?? '–'}</dd><dt>ID</dt><dd data-key="user_id">{conv.customer.verified.user_id}</dd></dl>
              </div>
            )}
            <Info title={t('liveInfo')} data={conv.customer?.live as Record<string, unknown>} />
          </section>
        )}
        {err && <p class="error" role="alert">{err}</p>}
        {calls.active && !ended && (
          <Call key={calls.active.id} socket={p.socket} conversation={id} call={calls.active} onEnd={() => endCall(calls.active!.id)}
            role={calls.active.by.kind === 'agent' && calls.active.by.id === p.me.agent_id ? 'caller' : 'callee'}
            remoteName={calls.active.by.name ?? ''} />
        )}
        <Messages messages={messages} mine={(m) => m.author.kind === 'agent' && m.author.id === p.me.agent_id} />
        {typing && !ended && <p class="typing muted">{typing} …</p>}
        {calls.ended && !calls.active && <p class="muted call-ended" role="status">📹 {t('callEnded')}</p>}
        {isLeft && !ended && leftBy && <p class="muted answer-by-email">{t('answerByEmail', { email: leftBy })}</p>}
        {ended ? <p class="muted ended">{t('ended')}</p> : (
          <Composer value={text} setValue={setText} canned={p.canned} onSend={send} onTyping={onTyping}
            onUpload={async (f) => { const a = await uploadFile(id, p.token, f); return a; }}
            extra={isCustomer && conv?.status === 'active' && !calls.active
              ? <button type="button" class="start-call" title={t('startCall')} aria-label={t('startCall')} onClick={startCall}><span aria-hidden="true">📹</span> {t('video')}</button> : undefined} />
        )}
      </main>
      {side && (
        <aside class="chat-sidebar">
          {conv?.kind !== 'direct' && conv?.kind !== 'channel' && (
            <section>
              <h3>{t('notes')}</h3>
              <ul class="notes">{notes.map((n) => <li key={n.id}><div class="text">{n.text}</div><small class="muted">{n.author.name} · {fmtTime(n.created_at)}</small></li>)}</ul>
              <form onSubmit={addNote}>
                <textarea name="note" rows={2} placeholder={t('notePlaceholder')} aria-label={t('addNote')} value={note} onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
                <button type="submit">{t('addNote')}</button>
              </form>
            </section>
          )}
          <section>
            <h3>{t('canned')}</h3>
            <p class="muted small">{t('cannedHint')}</p>
            <ul class="canned">
              {p.canned.map((c) => (
                <li key={c.id}>
                  <button type="button" class="canned-item" onClick={() => setText(text ? `${text} ${c.text}` : c.text)}>
                    <code>/{c.key}</code> {c.text}
                  </button>
                  {(c.organization_id === null || p.isOperator) && <button type="button" class="link" aria-label={`${t('remove')} /${c.key}`} onClick={() => deleteCanned(c)}>×</button>}
                </li>
              ))}
            </ul>
            <details>
              <summary>{t('newCanned')}</summary>
              <form onSubmit={createCanned} class="stack">
                <input name="canned-key" required maxLength={32} placeholder={t('key')} aria-label={t('key')} value={nc.key} onInput={(e) => setNc({ ...nc, key: (e.target as HTMLInputElement).value })} />
                <textarea name="canned-text" required rows={2} placeholder={t('text')} aria-label={t('text')} value={nc.text} onInput={(e) => setNc({ ...nc, text: (e.target as HTMLTextAreaElement).value })} />
                {p.isOperator && (
                  <label><input type="checkbox" checked={nc.org} onChange={(e) => setNc({ ...nc, org: (e.target as HTMLInputElement).checked })} /> {t('organization')}</label>
                )}
                <button type="submit">{t('save')}</button>
              </form>
            </details>
          </section>
          {isCustomer && earlier && (
            <section class="earlier-conversations" aria-label={t('earlierConversations')}>
              <h3>{t('earlierConversations')}</h3>
              {earlier.length === 0 ? <p class="muted small">{t('noEarlierConversations')}</p> : (
                <ul>
                  {earlier.map((c) => (
                    <li key={c.id}>
                      <button type="button" class="link" data-conversation={c.id} onClick={() => p.onOpen?.(c.id)}>
                        {fmtTime(c.created_at)} · {t(`status_${c.status}` as Key)}{c.agent_id ? ` · ${p.memberName(c.agent_id)}` : ''}
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          )}
          {facesCustomer && conv && (
            <section>
              <h3>{t('tags')}</h3>
              <ul class="tags">{conv.tags.map((g) => <li key={g} class="tag">{g} <button type="button" class="link" aria-label={`${t('remove')} ${g}`} onClick={() => removeTag(g)}>×</button></li>)}</ul>
              <form onSubmit={addTag} class="inline">
                <input name="tag" list="tag-suggestions" maxLength={64} placeholder={t('addTag')} aria-label={t('addTag')} value={tag} onInput={(e) => setTag((e.target as HTMLInputElement).value)} />
                <datalist id="tag-suggestions">{p.allTags.map((g) => <option key={g} value={g} />)}</datalist>
                <button type="submit" aria-label={t('addTag')}>+</button>
              </form>
            </section>
          )}
          {facesCustomer && conv && (
            <section class="block-visitor">
              <details>
                <summary>{t('blockVisitor')}</summary>
                <p class="muted small">{t('blockHint')}</p>
                <form onSubmit={blockVisitor} class="stack">
                  <select name="block-minutes" aria-label={t('blockFor')} value={blockForm.minutes} onChange={(e) => setBlockForm({ ...blockForm, minutes: (e.target as HTMLSelectElement).value })}>
                    <option value="60">{t('blockHour')}</option>
                    <option value="1440">{t('blockDay')}</option>
                    <option value="10080">{t('blockWeek')}</option>
                    <option value="43200">{t('blockMonth')}</option>
                  </select>
                  <input name="block-reason" maxLength={500} placeholder={t('blockReason')} aria-label={t('blockReason')} value={blockForm.reason} onInput={(e) => setBlockForm({ ...blockForm, reason: (e.target as HTMLInputElement).value })} />
                  <button type="submit" class="danger">{t('block')}</button>
                </form>
              </details>
              {blocked && <p role="status" class="blocked-note">{blocked}</p>}
            </section>
          )}
        </aside>
      )}
    </>
  );
}
