import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { makeApi, ok, allPages, downloadTranscript, ApiError, type Message, type CustomerConversation } from '../api/client';
import { Socket, type CustomerEvent } from '../api/ws';

function applyCustomerEvent(c: CustomerConversation, ev: CustomerEvent): CustomerConversation {
  switch (ev.type) {
    case 'CustomerPicked': return { ...c, status: 'active', queue_position: null, agent: ev.agent };
    case 'ConversationTransferred': return { ...c, status: 'waiting', agent: null };
    case 'ConversationEnded': return { ...c, status: 'ended', ended_at: c.ended_at ?? ev.at };
    case 'ConversationReopened': return { ...c, status: 'active', ended_at: null };
    case 'HandoffAccepted': return { ...c, agent: ev.agent };
    default: return c;
  }
}
import { t } from '../i18n';
import { Messages, mergeMessages, uploadFile, messageFromEvent, fetchUntil } from '../Messages';
import { Composer } from '../console/Composer';
import { Call, callState } from '../Call';
import { LangSwitch, useLang } from '../LangSwitch';

const params = new URLSearchParams(location.search);
const queue = params.get('queue') ?? '';
const host = params.get('host');
const STORE = `jono.widget.${queue}`;
// `email`: what the pre-chat form was given, to offer the transcript there; `identity`: what the
// join said of the site's signed identity, when it brought one.
type Session = { conversation_id: string; customer_token: string; email?: string; identity?: string | null };
/** A returning customer's identity, signed by the host site (from the loader). */
type SignedIdentity = { user_id: string; name?: string; expires: number; signature?: string };

// Storage may be denied to a third-party frame: then the session lives in memory only.
const memory = new Map<string, string>();
const store = {
  get(k: string): string | null { try { return sessionStorage.getItem(k); } catch { return memory.get(k) ?? null; } },
  set(k: string, v: string) { try { sessionStorage.setItem(k, v); } catch { memory.set(k, v); } },
  del(k: string) { try { sessionStorage.removeItem(k); } catch { memory.delete(k); } },
};

/** The host page's origin, as the loader said and the referrer confirms; messages from elsewhere are ignored. */
/** When the widget page loaded: only messages after it count as new for the loader's launcher. */
const LOADED_AT = Date.now();

/** Tells the host page's loader something, on its origin only. */
function tellHost(data: { type: string }) {
  const origin = trustedHost();
  if (origin) window.parent.postMessage(data, origin);
}

function trustedHost(): string | null {
  if (!host || window.parent === window) return null;
  try {
    const h = new URL(host).origin;
    if (document.referrer && new URL(document.referrer).origin !== h) return null;
    return h;
  } catch { return null; }
}

/** Why the site's sign-in was not taken, in the customer's words. */
function identityReason(check: string): string {
  switch (check) {
    case 'expired': return t('identityExpired');
    case 'unsigned': return t('identityUnsigned');
    case 'bad_signature': return t('identityBadSignature');
    default: return t('identityNotChecked');
  }
}

export function Widget() {
  useLang();
  const [pub, setPub] = useState<{ name: string; open: boolean; welcome_message: string | null; widget_position?: string; widget_color?: string | null; transcript_by_email?: boolean; leave_message?: boolean; reopen_window_seconds?: number | null } | null>(null);
  const [session, setSession] = useState<Session | null>(() => { try { return JSON.parse(store.get(STORE) || 'null'); } catch { return null; } });
  const [page, setPage] = useState<string | null>(null);
  const [identity, setIdentity] = useState<SignedIdentity | null>(null);
  const [err, setErr] = useState('');
  const anon = useMemo(() => makeApi(() => null), []);

  // Ready for the loader once the queue's look (corner, colour) is known, so its launcher
  // shows in that look from the start; an unknown queue's widget is ready in Jono's own.
  const tellReady = (look?: { widget_position?: string; widget_color?: string | null }) => {
    const origin = trustedHost();
    if (origin) window.parent.postMessage({ type: 'jono:ready', position: look?.widget_position ?? 'right', color: look?.widget_color ?? null }, origin);
  };
  const loadPub = () => ok(anon.GET('/v1/queues/{queue}/public', { params: { path: { queue } } })).then((found) => { setPub(found); return found; });
  useEffect(() => {
    if (!queue) return;
    loadPub()
      .then((found) => tellReady(found))
      .catch(() => { setErr(t('error', { detail: '404' })); tellReady(); });
  }, []);

  // Live metadata: the page of the host site, from the loader.
  useEffect(() => {
    const origin = trustedHost();
    if (!origin) return;
    const on = (e: MessageEvent) => {
      if (e.origin !== origin || e.source !== window.parent) return;
      if (e.data && e.data.type === 'jono:page' && typeof e.data.page === 'string' && /^https?:\/\//.test(e.data.page)) setPage(e.data.page);
      const id = e.data?.type === 'jono:identity' ? e.data.identity : null;
      if (id && typeof id.user_id === 'string' && typeof id.expires === 'number') {
        setIdentity({ user_id: id.user_id, name: typeof id.name === 'string' ? id.name : '', expires: id.expires, signature: typeof id.signature === 'string' ? id.signature : '' });
      }
    };
    window.addEventListener('message', on);
    return () => window.removeEventListener('message', on);
  }, []);

  const start = (s: Session) => { store.set(STORE, JSON.stringify(s)); setSession(s); };
  const reset = () => { store.del(STORE); setSession(null); };

  return (
    <div class="widget-box">
      <header class="widget-head"><h1>{pub?.name || t('widgetTitle')}</h1><LangSwitch /></header>
      <main class="widget-body">
        {err && <p class="error" role="alert">{err}</p>}
        {session ? <Chat session={session} page={page} onReset={reset} welcome={pub?.welcome_message ?? null} byEmail={!!pub?.transcript_by_email} reopenWithin={pub?.reopen_window_seconds ?? null} />
          : pub && (pub.leave_message || !pub.open) ? <>
            {!pub.open && <p class="notice">{t('queueClosed')}</p>}
            <LeaveMessage api={anon} />
          </>
          : pub && <PreChat onJoined={start} api={anon} identity={identity} onRefused={() => { loadPub().catch(() => {}); }} />}
      </main>
    </div>
  );
}

/** When nobody can answer: a short form whose message waits for the queue's agents, who answer by email. */
function LeaveMessage({ api }: { api: ReturnType<typeof makeApi> }) {
  const [f, setF] = useState({ name: '', email: '', text: '' });
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<{ byEmail: boolean; email: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      const r = await ok(api.POST('/v1/queues/{queue}/messages', { params: { path: { queue } }, body: { name: f.name, email: f.email, text: f.text } }));
      setDone({ byEmail: r.answer_by_email, email: f.email });
    } catch (e) {
      setErr(t('error', { detail: (e as Error).message }));
    } finally { setBusy(false); }
  };
  if (done) return <p class="notice left-thanks" role="status">{done.byEmail ? t('messageLeftThanks', { email: done.email }) : t('messageLeftReceived')}</p>;
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <form class="leave-message stack" onSubmit={submit}>
      <p>{t('leaveMessageIntro')}</p>
      <label>{t('name')}<input name="name" autocomplete="name" maxLength={200} value={f.name} onInput={set('name')} /></label>
      <label>{t('email')}<input name="email" type="email" required autocomplete="email" value={f.email} onInput={set('email')} /></label>
      <label>{t('yourMessage')}<textarea name="message" rows={4} required maxLength={10000} value={f.text} onInput={set('text')} /></label>
      {err && <p class="error" role="alert">{err}</p>}
      <button type="submit" class="primary" disabled={busy}>{t('sendLeftMessage')}</button>
    </form>
  );
}

function PreChat({ api, onJoined, onRefused, identity }: { api: ReturnType<typeof makeApi>; onJoined: (s: Session) => void; onRefused: () => void; identity: SignedIdentity | null }) {
  const [f, setF] = useState({ name: '', email: '', question: '' });
  // The site's signed-in user's name fills the form's, until the customer types another.
  useEffect(() => { if (identity?.name) setF((cur) => (cur.name ? cur : { ...cur, name: identity.name ?? '' })); }, [identity]);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      const r = await ok(api.POST('/v1/queues/{queue}/join', { params: { path: { queue } }, body: { metadata: { name: f.name, email: f.email, question: f.question }, ...(identity ? { identity } : {}) } }));
      const s = { conversation_id: r.conversation_id, customer_token: r.customer_token, email: f.email, identity: r.identity ?? null };
      if (f.question.trim()) {
        const authed = makeApi(() => s.customer_token);
        await authed.POST('/v1/conversations/{c}/messages', { params: { path: { c: s.conversation_id } }, body: { text: f.question.trim() } }).catch(() => {});
      }
      onJoined(s);
    } catch (e) {
      setErr(t('error', { detail: (e as Error).message }));
      // Closed or full meanwhile: the public face says whether to offer a message instead.
      if (e instanceof ApiError && e.status === 409) onRefused();
    } finally { setBusy(false); }
  };
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <form class="prechat stack" onSubmit={submit}>
      <label>{t('name')}<input name="name" required autocomplete="name" value={f.name} onInput={set('name')} /></label>
      <label>{t('email')}<input name="email" type="email" required autocomplete="email" value={f.email} onInput={set('email')} /></label>
      <label>{t('question')}<textarea name="question" rows={3} value={f.question} onInput={set('question')} /></label>
      {err && <p class="error" role="alert">{err}</p>}
      <button type="submit" class="primary" disabled={busy}>{t('startChat')}</button>
    </form>
  );
}

function Chat({ session, page, onReset, welcome, byEmail, reopenWithin }: { session: Session; page: string | null; onReset: () => void; welcome: string | null; byEmail: boolean; reopenWithin: number | null }) {
  const c = session.conversation_id;
  const api = useMemo(() => makeApi(() => session.customer_token, onReset), [session]);
  const socket = useMemo(() => new Socket(session.customer_token), [session]);
  const [base, setConv] = useState<CustomerConversation | null>(null);
  const [evs, setEvs] = useState<CustomerEvent[]>([]);
  const conv = base && evs.reduce(applyCustomerEvent, base);
  const [messages, setMessages] = useState<Message[]>([]);
  const [pos, setPos] = useState<{ n: number; wait: number | null } | null>(null);
  const [text, setText] = useState('');
  const [rated, setRated] = useState(false);
  const [comment, setComment] = useState('');
  const [score, setScore] = useState(0);
  const [err, setErr] = useState('');
  const [typing, setTyping] = useState('');

  const loadConv = async () => setConv((await ok(api.GET('/v1/conversations/{c}', { params: { path: { c } } }))) as CustomerConversation);
  const loadMessages = async () => {
    const list = await allPages((after, limit) => ok(api.GET('/v1/conversations/{c}/messages', { params: { path: { c }, query: { after: after as any, limit } } })), (m) => String(m.seq));
    setMessages((cur) => mergeMessages(cur, list));
  };
  useEffect(() => {
    loadConv().catch(() => {});
    loadMessages().catch(() => {});
    const off = socket.subscribe<CustomerEvent>(`conversation:${c}`, {
      onEvent: (ev) => {
        if (ev.type === 'MessageSent') {
          setMessages((cur) => mergeMessages(cur, [messageFromEvent(ev)]));
          // The launcher counts what the agent writes while the widget is minimised.
          if (ev.author?.kind === 'agent' && Date.parse(ev.at) > LOADED_AT) tellHost({ type: 'jono:message' });
          if (ev.attachments?.length) {
            fetchUntil(ev.seq, (after) => ok(api.GET('/v1/conversations/{c}/messages', { params: { path: { c: c }, query: { after: String(after) as any } } })),
              (ms) => setMessages((cur) => mergeMessages(cur, ms)));
          }
          setTyping('');
        } else {
          // Live events lead the read model: they are applied on top of the snapshot.
          setEvs((cur) => [...cur, ev]);
          if (ev.type === 'ConversationTransferred') setPos(null);
        }
      },
    });
    const offF = socket.onFrame((f) => {
      if (f.type === 'queue' && f.conversation === c) setPos({ n: f.queue_position, wait: f.estimated_wait_seconds ?? null });
      if (f.type === 'typing' && f.conversation === c && f.author?.kind === 'agent') { setTyping(f.author.name); setTimeout(() => setTyping(''), 4000); }
    });
    return () => { off(); offF(); socket.close(); };
  }, [session]);

  // Live metadata: the host page the customer is on.
  const sentPage = useRef<string | null>(null);
  useEffect(() => {
    if (!page || page === sentPage.current || conv?.status === 'ended') return;
    sentPage.current = page;
    api.POST('/v1/conversations/{c}/live', { params: { path: { c } }, body: { page } as any }).catch(() => {});
  }, [page, conv?.status]);

  const send = async (body: string, atts: { attachment_id: string }[]) => {
    try { setErr(''); await ok(api.POST('/v1/conversations/{c}/messages', { params: { path: { c } }, body: { text: body, attachments: atts.map((a) => a.attachment_id) } })); }
    catch (e) { setErr(t('error', { detail: (e as Error).message })); throw e; }
  };
  const end = async () => { const r = await api.POST('/v1/conversations/{c}/end', { params: { path: { c } } }); if (r.response.ok) setEvs((cur) => [...cur, { type: 'ConversationEnded', at: new Date().toISOString(), conversation_id: c, reason: 'ended' }]); };
  const rate = async (e: Event) => {
    e.preventDefault();
    if (!score) return;
    const note = comment.trim();
    const r = await api.POST('/v1/conversations/{c}/rating', { params: { path: { c } }, body: { score, ...(note ? { comment: note } : {}) } });
    if (r.response.ok || r.response.status === 409) setRated(true);
  };
  const lastTyping = useRef(0);
  // Video call: started by the agent; the customer answers or declines, and may end it.
  const calls = callState(evs);
  const endCall = async (call: string) => {
    const r = await api.POST('/v1/conversations/{c}/calls/{call}/end', { params: { path: { c, call } } });
    if (r.response.ok || r.response.status === 409) setEvs((cur) => [...cur, { type: 'CallEnded', at: new Date().toISOString(), conversation_id: c, call_id: call, by: { kind: 'customer' } }]);
  };

  const status = conv?.status;
  // Whether an agent ever picked this customer (a transfer clears `agent`, not the service).
  const served = !!conv?.agent || evs.some((e) => e.type === 'CustomerPicked');
  const shown = welcome && !messages.some((m) => m.author.kind === 'system') ? [{ seq: 0, id: 'welcome', author: { kind: 'system' as const, id: '', name: '' }, text: welcome, attachments: [], sent_at: conv?.created_at ?? new Date().toISOString() }, ...messages] : messages;
  return (
    <div class="widget-chat">
      {status === 'waiting' && (
        <div class="queue-pos" role="status">
          {pos ? t('position', { n: pos.n }) : conv?.queue_position ? t('position', { n: conv.queue_position }) : t('connecting')}
          {pos?.wait != null && pos.wait > 0 && <> {t('estimatedWait', { m: Math.max(1, Math.round(pos.wait / 60)) })}</>}
        </div>
      )}
      {status === 'active' && conv?.agent && <div class="agent-joined" role="status">{t('agentJoined', { name: conv.agent.name })}</div>}
      {session.identity && session.identity !== 'verified' && (
        <p class="notice identity-ignored" role="note" data-identity={session.identity}>{t('identityIgnored')} {identityReason(session.identity)}</p>
      )}
      {calls.active && status !== 'ended' && (
        <Call key={calls.active.id} socket={socket} conversation={c} call={calls.active} onEnd={() => endCall(calls.active!.id)}
          role={calls.active.by.kind === 'customer' ? 'caller' : 'callee'} remoteName={calls.active.by.name || conv?.agent?.name || ''} />
      )}
      <Messages messages={shown} mine={(m) => m.author.kind === 'customer'} />
      {typing && status !== 'ended' && <p class="typing muted">{typing} …</p>}
      {calls.ended && !calls.active && <p class="muted call-ended" role="status">📹 {t('callEnded')}</p>}
      {err && <p class="error" role="alert">{err}</p>}
      {status === 'ended' && messages.length > 0 && (
        <p><button type="button" class="link transcript" onClick={() => downloadTranscript(c, session.customer_token).catch((e) => setErr(String(e.message ?? e)))}>{t('transcript')}</button></p>
      )}
      {status === 'ended' && messages.length > 0 && byEmail && <TranscriptByEmail api={api} c={c} given={session.email ?? ''} />}
      {status === 'ended' && served && reopenWithin && conv?.ended_at && Date.now() - Date.parse(conv.ended_at) < reopenWithin * 1000 && (
        <ContinueChat onSend={async (body) => {
          await ok(api.POST('/v1/conversations/{c}/messages', { params: { path: { c } }, body: { text: body } }));
          setEvs((cur) => [...cur, { type: 'ConversationReopened', at: new Date().toISOString(), conversation_id: c, status: 'active' }]);
          setRated(false);
        }} />
      )}
      {status === 'ended' ? (
        rated || !served ? (
          // Nobody served a customer who left the line: there is nothing to rate.
          <div class="rated"><p role="status">{rated ? t('ratingThanks') : t('leftQueue')}</p><button type="button" onClick={onReset}>{t('newChat')}</button></div>
        ) : (
          <form class="rating" onSubmit={rate}>
            <p>{t('ended')} {t('rateTitle')}</p>
            <div class="stars" role="radiogroup" aria-label={t('rateTitle')}>
              {[1, 2, 3, 4, 5].map((n) => (
                <label key={n} title={t('star', { n })}>
                  <input type="radio" name="score" value={n} checked={score === n} onChange={() => setScore(n)} />
                  <span aria-hidden="true">{n <= score ? '★' : '☆'}</span>
                  <span class="sr">{t('star', { n })}</span>
                </label>
              ))}
            </div>
            <textarea name="comment" rows={2} maxLength={2000} placeholder={t('ratingComment')} aria-label={t('ratingComment')} value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
            <button type="submit" class="primary" disabled={!score}>{t('rate')}</button>
          </form>
        )
      ) : (
        <Composer value={text} setValue={setText} canned={[]} onSend={send} placeholder={t('typeMessageCustomer')}
          onTyping={() => { const n = Date.now(); if (n - lastTyping.current > 2000) { lastTyping.current = n; socket.send({ type: 'typing', conversation: c }); } }}
          onUpload={async (f) => uploadFile(c, session.customer_token, f)}
          extra={<button type="button" class="danger" onClick={end}>{status === 'waiting' ? t('leaveQueue') : t('endConversation')}</button>} />
      )}
    </div>
  );
}

/** Writing again after the end, within the queue's window: the same conversation goes on with its agent. */
function ContinueChat({ onSend }: { onSend: (text: string) => Promise<void> }) {
  const [text, setText] = useState('');
  const [err, setErr] = useState('');
  const send = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return;
    try { setErr(''); await onSend(text.trim()); setText(''); } catch { setErr(t('cannotContinue')); }
  };
  return (
    <form class="continue-chat inline" onSubmit={send}>
      <input name="continue" aria-label={t('writeAgain')} placeholder={t('writeAgain')} value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
      <button type="submit">{t('continueChat')}</button>
      {err && <p class="error" role="alert">{err}</p>}
    </form>
  );
}

/** The transcript to the customer's address, when the deployment sends email: messages only. */
function TranscriptByEmail({ api, c, given }: { api: ReturnType<typeof makeApi>; c: string; given: string }) {
  const [email, setEmail] = useState(given);
  const [state, setState] = useState('');
  const send = async (e: Event) => {
    e.preventDefault();
    const r = await api.POST('/v1/conversations/{c}/transcript/email', { params: { path: { c } }, body: { email } });
    setState(r.response.ok ? t('transcriptSent', { email }) : (r.error as { detail?: string } | undefined)?.detail ?? String(r.response.status));
  };
  return (
    <div class="transcript-email">
      <form class="inline" onSubmit={send}>
        <input name="transcript-email" type="email" required placeholder={t('email')} aria-label={t('transcriptByEmail')} value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
        <button type="submit">{t('transcriptByEmail')}</button>
      </form>
      {state && <p role="status">{state}</p>}
    </div>
  );
}
