import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ok, allPages, type Api, type Me, type Queue, type AgentConversation, type Canned, type Member } from '../api/client';
import { conversationOf, customerNameOf, organizationOf, queueOf, type MessageEvent, type Socket, type StoredEvent } from '../api/ws';
import { t, type Key } from '../i18n';
import { errText } from './errors';
import { Conversation } from './Conversation';
import { OrgPage, type QueueFocus } from './OrgPage';
import { CannedPage } from './CannedPage';
import { AccountPage } from './AccountPage';
import { HistoryPage } from './HistoryPage';
import { raise } from './alerts';
import { LangSwitch } from '../LangSwitch';

type Activity = { position: number; ev: StoredEvent; live: boolean; hot: boolean };
/** An open offer of auto routing: a waiting customer offered to `agent` until `expires` (ms). */
type Offer = { conversation: string; queue: string; agent: string; expires: number; name: string };
type View = 'chats' | 'history' | 'org' | 'canned' | 'account';

/** Where the console is, in its address: `#/ORG` (chats), `#/ORG/c/CONVERSATION`, `#/ORG/org`,
 * `#/ORG/history`, `#/ORG/canned`, `#/ORG/account`. A reload, the back button and a link all land there. */
type Route = { org: string | null; view: View; conv: string | null };

export function parseRoute(hash: string): Route {
  const [org, second, third] = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (second === 'c' && third) return { org: org ?? null, view: 'chats', conv: third };
  if (second === 'history' || second === 'org' || second === 'canned' || second === 'account') return { org: org ?? null, view: second, conv: null };
  return { org: org ?? null, view: 'chats', conv: null };
}

function routeHash(org: string, view: View, conv: string | null): string {
  const base = `#/${encodeURIComponent(org)}`;
  if (view !== 'chats') return `${base}/${view}`;
  return conv ? `${base}/c/${encodeURIComponent(conv)}` : base;
}

/** Calls fn at most once per `ms`, trailing; never after the component is gone (a logout: its
 * calls would carry the ended token). */
function useDebounced(fn: () => void, ms = 150) {
  const timer = useRef<number>();
  const f = useRef(fn);
  f.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return useMemo(() => () => { clearTimeout(timer.current); timer.current = window.setTimeout(() => f.current(), ms); }, [ms]);
}

export function Console({ api, socket, me, token, onLogout, reloadMe }: { api: Api; socket: Socket; me: Me; token: string; onLogout: () => void; reloadMe: () => void }) {
  const orgs = me.organizations;
  const initial = useMemo(() => parseRoute(location.hash), []);
  const routedOrg = orgs.some((o) => o.id === initial.org) ? initial.org : null;
  const [orgId, setOrgId] = useState<string>(() => {
    const saved = localStorage.getItem('jono.org');
    return routedOrg ?? orgs.find((o) => o.id === saved)?.id ?? orgs[0]?.id ?? '';
  });
  const org = orgs.find((o) => o.id === orgId);
  const isOperator = org?.role === 'owner' || org?.role === 'operator';
  const [queues, setQueues] = useState<Record<string, Queue[]>>({});
  // Service-level marks tick from times the console already has: when the queues were read
  // (their `oldest_wait_seconds` is as of then) and when each conversation began.
  const queuesReadAt = useRef(Date.now());
  const [now, setNow] = useState(Date.now());
  useEffect(() => { const timer = window.setInterval(() => setNow(Date.now()), 1000); return () => clearInterval(timer); }, []);
  // Conversations an agent answered since the list was read (the list itself says `answered_at`).
  const [answered, setAnswered] = useState<Record<string, true>>({});
  const [convs, setConvs] = useState<AgentConversation[]>([]);
  const [members, setMembers] = useState<Member[]>([]);
  const [canned, setCanned] = useState<Canned[]>([]);
  const [selected, setSelected] = useState<string | null>(routedOrg ? initial.conv : null);
  // The message a search result opens the conversation at.
  const [atSeq, setAtSeq] = useState<number | undefined>(undefined);
  const [activity, setActivity] = useState<Activity[]>([]);
  const [menu, setMenu] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const [online, setOnline] = useState(true);
  const [channelName, setChannelName] = useState('');
  const [view, setView] = useState<View>(routedOrg ? initial.view : 'chats');
  // Set by the queue menu's "Queue settings"/"Queue statistics": the organization page opens on that queue.
  const [focus, setFocus] = useState<QueueFocus | null>(null);

  // Another organization: its own chats, none open yet (unless the address named one).
  const shownOrg = useRef(orgId);
  useEffect(() => {
    localStorage.setItem('jono.org', orgId);
    if (shownOrg.current !== orgId) { shownOrg.current = orgId; setSelected(null); }
  }, [orgId]);
  // The address follows what is shown; the back button and a pasted link go the other way.
  useEffect(() => {
    if (!orgId) return;
    const hash = routeHash(orgId, view, selected);
    if (location.hash === hash) return;
    if (location.hash) history.pushState(null, '', hash); else history.replaceState(null, '', hash);
  }, [orgId, view, selected]);
  useEffect(() => {
    const follow = () => {
      const r = parseRoute(location.hash);
      if (r.org && orgs.some((o) => o.id === r.org)) { shownOrg.current = r.org; setOrgId(r.org); }
      setView(r.view);
      setSelected(r.conv);
    };
    window.addEventListener('popstate', follow);
    return () => window.removeEventListener('popstate', follow);
  }, [orgs]);
  // Back online after a disconnect: what was read while the server was away may have failed,
  // so the organization's lists are read again (the topics themselves resume with `after`).
  const wasOnline = useRef(true);
  useEffect(() => socket.onState((up) => {
    setOnline(up);
    if (up && !wasOnline.current) refreshOrgLater.current();
    wasOnline.current = up;
  }), [socket]);

  const loadQueues = async (o: string) => {
    try {
      const qs = await ok(api.GET('/v1/orgs/{org}/queues', { params: { path: { org: o } } }));
      queuesReadAt.current = Date.now();
      setQueues((cur) => ({ ...cur, [o]: qs }));
    } catch { /* shown elsewhere */ }
  };
  // The organization shown now: a list read for another one (chosen just before, answered
  // late) is dropped, not shown under this one.
  const orgRef = useRef(orgId);
  orgRef.current = orgId;
  const loadConvs = async () => {
    if (!orgId) return;
    const asked = orgId;
    const list = await allPages((after, limit) => ok(api.GET('/v1/orgs/{org}/conversations', { params: { path: { org: asked }, query: { after, limit } as any } })), (c) => c.id);
    if (orgRef.current !== asked) return;
    setConvs(list);
    // The server keeps each agent's unread counts; the one in front is being read.
    setUnread(Object.fromEntries(list.filter((c) => c.unread && c.id !== frontRef.current).map((c) => [c.id, c.unread as number])));
  };
  const loadCanned = async () => setCanned(await ok(api.GET('/v1/canned-responses')));
  const refreshOrg = useDebounced(() => { loadQueues(orgId); loadConvs().catch(() => {}); });
  const refreshOrgLater = useRef(refreshOrg);
  refreshOrgLater.current = refreshOrg;

  // Queues of every organization (the activity bar names them), members and conversations of this one.
  useEffect(() => { orgs.forEach((o) => loadQueues(o.id)); loadCanned().catch(() => {}); }, [me]);
  useEffect(() => {
    if (!orgId) return;
    setConvs([]);
    loadConvs().catch((e) => setErr(errText(e)));
    loadMembers();
  }, [orgId]);
  const loadMembers = () => {
    const asked = orgId;
    return ok(api.GET('/v1/orgs/{org}/members', { params: { path: { org: asked } } }))
      .then((list) => { if (orgRef.current === asked) setMembers(list); })
      .catch(() => {});
  };
  // Presence: online or away, as the agent declares it; teammates see it in the member list.
  const [presenceVersion, setPresenceVersion] = useState(0);
  const myStatus = members.find((m) => m.agent_id === me.agent_id)?.status;
  const setStatus = async (status: 'online' | 'away') => {
    try {
      await ok(api.PUT('/v1/me/status', { body: { status } }));
      setMembers((cur) => cur.map((m) => (m.agent_id === me.agent_id ? { ...m, status } : m)));
      setPresenceVersion((n) => n + 1);
      loadMembers();
    } catch (e) { setErr(errText(e)); }
  };

  // Live queue counts: the `queue:ID` topic of each queue of the selected organization. The same
  // topics carry auto routing's offers: the open ones are folded here (the topic replays the
  // queue from its beginning), and one made to this agent while it watches raises an alert.
  const [offers, setOffers] = useState<Record<string, Offer>>({});
  const queueIds = (queues[orgId] ?? []).map((q) => q.id).join(',');
  useEffect(() => {
    setOffers({});
    const names: Record<string, string> = {};
    const offs = (queueIds ? queueIds.split(',') : []).map((id) => {
      let live = false;
      return socket.subscribe(`queue:${id}`, {
        onSubscribed: () => { live = true; },
        onEvent: (ev) => {
          refreshOrg();
          const conversation = conversationOf(ev);
          if (!conversation) return;
          if (ev.type === 'CustomerJoinedQueue') names[conversation] = customerNameOf(ev);
          if (ev.type === 'CustomerOffered') {
            const offer = { conversation, queue: id, agent: ev.agent_id as string, expires: Date.parse(ev.expires_at as string), name: names[conversation] ?? '' };
            setOffers((cur) => ({ ...cur, [conversation]: offer }));
            if (live && offer.agent === me.agent_id) raise(t('alertOffer', { queue: queueNameRef.current(id) }), offer.name);
          } else if (['OfferAccepted', 'OfferDeclined', 'OfferExpired', 'CustomerPicked', 'CustomerLeftQueue'].includes(ev.type)) {
            setOffers((cur) => { if (!cur[conversation]) return cur; const next = { ...cur }; delete next[conversation]; return next; });
          }
        },
      });
    });
    return () => offs.forEach((f) => f());
  }, [queueIds, socket]);
  // An offer past its time is gone even before the router says so.
  const [, setTick] = useState(0);
  const myOffers = Object.values(offers).filter((o) => o.agent === me.agent_id && o.expires > Date.now());
  useEffect(() => {
    if (myOffers.length === 0) return;
    const timer = window.setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [myOffers.length]);
  // Conversations handed over to this agent and not yet answered (the list carries them, so a
  // console opened later sees them too).
  const myHandoffs = convs.filter((c) => c.handoff && c.handoff.to_agent_id === me.agent_id && Date.parse(c.handoff.expires_at) > Date.now());
  const answerHandoff = async (c: string, accept: boolean) => {
    try {
      const path = { params: { path: { c } } };
      if (accept) {
        await ok(api.POST('/v1/conversations/{c}/handoff/accept', path));
        setSelected(c);
        setView('chats');
      } else await ok(api.POST('/v1/conversations/{c}/handoff/decline', path));
      refreshOrg();
    } catch (e) { setErr(errText(e)); refreshOrg(); }
  };
  const answerOffer = async (o: Offer, accept: boolean) => {
    try {
      const path = { params: { path: { c: o.conversation } } };
      if (accept) {
        const r = await ok(api.POST('/v1/conversations/{c}/offer/accept', path));
        setSelected(r.conversation_id);
        setView('chats');
      } else await ok(api.POST('/v1/conversations/{c}/offer/decline', path));
      setOffers((cur) => { const next = { ...cur }; delete next[o.conversation]; return next; });
      refreshOrg();
    } catch (e) { setErr(errText(e)); }
  };

  // The activity bar: every organization of the agent's.
  useEffect(() => {
    let live = false;
    const refreshOther = new Map<string, () => void>();
    return socket.subscribe('activity', {
      onSubscribed: () => { live = true; },
      onEvent: (ev, position) => {
        const o = organizationOf(ev);
        if (o === orgRef.current) refreshOrg();
        else if (o && (ev.type.startsWith('Customer') || ev.type.startsWith('Queue'))) loadQueues(o);
        // Highlighted while the customer waits; a left message alerts, and waits in the list.
        const hot = live && ev.type === 'CustomerJoinedQueue';
        if ((hot || (live && ev.type === 'MessageLeft')) && handledByMe.current(queueOf(ev))) {
          const name = customerNameOf(ev);
          const queue = queueNameRef.current(queueOf(ev));
          raise(ev.type === 'MessageLeft' ? t('alertMessageLeft', { queue }) : t('alertCustomer', { queue }), name);
        }
        if (live && ev.type === 'MessageSent') onMessage.current(ev);
        if (live && ev.type === 'HandoffOffered' && ev.to_agent_id === me.agent_id) raise(t('alertHandoff'), ev.by.name);
        setActivity((cur) => {
          let next = cur;
          if (ev.type === 'CustomerPicked' || ev.type === 'CustomerLeftQueue' || ev.type === 'ConversationEnded') {
            next = cur.map((a) => (a.hot && conversationOf(a.ev) === conversationOf(ev) ? { ...a, hot: false } : a));
          }
          return [{ position, ev, live, hot }, ...next].slice(0, 50);
        });
        void refreshOther;
      },
    });
  }, [socket]);

  const queueName = (id?: string) => {
    for (const qs of Object.values(queues)) { const q = qs.find((q) => q.id === id); if (q) return q.name; }
    return '';
  };
  // Alerts (see alerts.ts): new customers in the queues this agent handles, and messages from
  // others in its conversations that are not open in front of it. The handlers run in socket
  // callbacks, so they read the current state through refs.
  const [unread, setUnread] = useState<Record<string, number>>({});
  // The conversation in front of the agent: selected, on the chats page.
  const front = view === 'chats' ? selected : null;
  const frontRef = useRef(front);
  frontRef.current = front;
  useEffect(() => { if (front) setUnread((cur) => (cur[front] ? { ...cur, [front]: 0 } : cur)); }, [front]);
  const queueNameRef = useRef(queueName);
  queueNameRef.current = queueName;
  const handledByMe = useRef<(q?: string) => boolean>(() => false);
  handledByMe.current = (q?: string) => Object.values(queues).some((qs) => qs.some((x) => x.id === q && x.handlers.includes(me.agent_id)));
  const onMessage = useRef((_ev: MessageEvent) => {});
  onMessage.current = (ev: MessageEvent) => {
    const author = ev.author;
    const conversation = ev.conversation_id;
    if (author.kind === 'agent' && author.id === me.agent_id) return;
    if (conversation === frontRef.current && !document.hidden) return;
    if (conversation !== frontRef.current) setUnread((cur) => ({ ...cur, [conversation]: (cur[conversation] ?? 0) + 1 }));
    const text = ev.text;
    raise(t('alertMessage', { name: author.name || t('customer') }), text.length > 80 ? `${text.slice(0, 80)}…` : text);
  };
  // The agent's own customer conversations: their messages do not come through `activity`.
  const mine = convs.filter((c) => c.kind === 'customer' && c.status === 'active' && c.agent_id === me.agent_id).map((c) => c.id).sort().join(',');
  useEffect(() => {
    if (!mine) return;
    const offs = mine.split(',').map((id) => {
      let live = false;
      return socket.subscribe(`conversation:${id}`, {
        onSubscribed: () => { live = true; },
        onEvent: (ev) => {
          if (live && ev.type === 'MessageSent') onMessage.current(ev);
          // Read on another device: the counts are the server's again.
          if (live && ev.type === 'ConversationRead' && ev.agent_id === me.agent_id) refreshOrg();
        },
      });
    });
    return () => offs.forEach((off) => off());
  }, [socket, mine]);
  const orgName = (id: string) => orgs.find((o) => o.id === id)?.name ?? '';
  // The queue menu works as a menu: it takes the focus when it opens, arrows, Home and End move
  // between its items, Escape closes it and gives the focus back to its queue; Tab or a press
  // outside closes it too.
  const menuBox = useRef<HTMLDivElement>(null);
  const menuItems = () => Array.from(menuBox.current?.querySelectorAll<HTMLButtonElement>('[role=menuitem]:not([disabled])') ?? []);
  const closeMenu = () => {
    const opened = menu;
    setMenu(null);
    if (opened) document.querySelector<HTMLButtonElement>(`[data-queue="${opened}"] .queue-name`)?.focus();
  };
  useEffect(() => {
    if (!menu) return;
    menuItems()[0]?.focus();
    // A press anywhere outside its queue (the menu and its toggle) closes it.
    const outside = (e: PointerEvent) => {
      if (!(e.target as Element | null)?.closest?.(`[data-queue="${menu}"]`)) setMenu(null);
    };
    document.addEventListener('pointerdown', outside);
    return () => document.removeEventListener('pointerdown', outside);
  }, [menu]);
  const menuKeys = (e: KeyboardEvent) => {
    const items = menuItems();
    const at = items.indexOf(document.activeElement as HTMLButtonElement);
    const go = (i: number) => { e.preventDefault(); items[(i + items.length) % items.length]?.focus(); };
    if (e.key === 'Escape') { e.preventDefault(); closeMenu(); }
    else if (e.key === 'ArrowDown') go(at + 1);
    else if (e.key === 'ArrowUp') go(at - 1);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(items.length - 1);
    else if (e.key === 'Tab') setMenu(null); // the focus leaves it: so does the menu
  };
  /** An activity line: who joined, and who wrote what (a preview), where the event says. */
  const activityText = (ev: StoredEvent): string => {
    const queue = queueName(queueOf(ev));
    const customer = customerNameOf(ev);
    if (ev.type === 'CustomerJoinedQueue' && customer) return t('evCustomerJoinedQueueNamed', { name: customer, queue });
    const author = ev.type === 'MessageSent' ? ev.author.name : '';
    if (ev.type === 'MessageSent' && author) {
      const text = ev.text;
      return t('evMessageSentFrom', { name: author, text: text.length > 60 ? `${text.slice(0, 60)}…` : text });
    }
    return t(`ev${ev.type}` as Key, { queue });
  };

  const pick = async (q: Queue) => {
    setMenu(null);
    try {
      const r = await ok(api.POST('/v1/queues/{queue}/pick', { params: { path: { queue: q.id } } }));
      setSelected(r.conversation_id);
      refreshOrg();
    } catch (e) { setErr(errText(e)); }
  };
  const openClose = async (q: Queue) => {
    setMenu(null);
    try {
      if (q.open) await ok(api.POST('/v1/queues/{queue}/close', { params: { path: { queue: q.id } } }));
      else await ok(api.POST('/v1/queues/{queue}/open', { params: { path: { queue: q.id } } }));
      loadQueues(orgId);
    } catch (e) { setErr(errText(e)); }
  };
  const showQueue = (q: Queue, part: QueueFocus['part']) => {
    setMenu(null);
    setFocus({ queue: q.id, part, n: (focus?.n ?? 0) + 1 });
    setView('org');
  };
  const startDirect = async (agent: string) => {
    if (!agent) return;
    try {
      const r = await ok(api.POST('/v1/orgs/{org}/directs', { params: { path: { org: orgId } }, body: { agent_id: agent } }));
      setSelected(r.conversation_id);
      loadConvs();
    } catch (e) { setErr(errText(e)); }
  };
  const createChannel = async (e: Event) => {
    e.preventDefault();
    if (!channelName.trim()) return;
    try {
      const r = await ok(api.POST('/v1/orgs/{org}/channels', { params: { path: { org: orgId } }, body: { name: channelName.trim() } }));
      setChannelName('');
      setSelected(r.conversation_id);
      loadConvs();
    } catch (e) { setErr(errText(e)); }
  };

  const memberName = (id: string | null | undefined) => members.find((m) => m.agent_id === id)?.name ?? '';
  const customers = convs.filter((c) => c.kind === 'customer' && c.status === 'active');
  // Messages left when nobody could answer, in the queues of this organization: waiting for an
  // answer, or answered and not yet ended.
  const leftMessages = convs.filter((c) => c.kind === 'left_message' && c.status !== 'ended');
  const channels = convs.filter((c) => c.kind === 'channel');
  const directs = convs.filter((c) => c.kind === 'direct');
  const customerLabel = (c: AgentConversation) => String((c.customer?.metadata as any)?.name || t('customer'));
  // A private chat is named for the other agent in it.
  const directLabel = (c: AgentConversation) =>
    memberName((c.participants ?? []).find((p) => p !== me.agent_id)) || c.name || t('directs');
  const allTags = useMemo(() => [...new Set(convs.flatMap((c) => c.tags ?? []))].sort(), [convs]);
  const orgCanned = canned.filter((c) => c.organization_id === null || c.organization_id === orgId)
    .sort((a, b) => (a.organization_id === null ? 0 : 1) - (b.organization_id === null ? 0 : 1));

  // Past the queue's target: a customer waiting longer than `target_wait_seconds` (the queue's
  // longest wait, ticking on), an active conversation unanswered by an agent for longer than
  // `target_first_response_seconds` since the join.
  const waitLate = (q: Queue) => q.target_wait_seconds != null && q.oldest_wait_seconds != null
    && q.oldest_wait_seconds + (now - queuesReadAt.current) / 1000 > q.target_wait_seconds;
  const awaitingLate = (c: AgentConversation) => {
    if (c.kind !== 'customer' || c.status === 'ended' || c.answered_at || answered[c.id]) return false;
    const target = (queues[orgId] ?? []).find((q) => q.id === c.queue_id)?.target_first_response_seconds;
    return target != null && now - new Date(c.created_at).getTime() > target * 1000;
  };
  const item = (c: AgentConversation, label: string) => (
    <li key={c.id}><button type="button" class={`conv ${selected === c.id ? 'selected' : ''}`} aria-current={selected === c.id} onClick={() => { setAtSeq(undefined); setSelected(c.id); }}>
      {label}{unread[c.id] ? <span class="unread" aria-label={t('unread', { n: unread[c.id] })}>{unread[c.id]}</span> : null}
      {awaitingLate(c) && <span class="badge late" data-late="first-response" title={t('lateFirstResponse')}>{t('lateFirstResponseShort')}</span>}
    </button></li>
  );

  return (
    <div class="console">
      <header class="topbar">
        <h1 class="brand">{t('appName')}</h1>
        <label class="org-switch"><span class="org-label">{t('organization')}</span>{' '}
          <select name="organization" value={orgId} onChange={(e) => setOrgId((e.target as HTMLSelectElement).value)}>
            {orgs.map((o) => <option key={o.id} value={o.id}>{o.name}</option>)}
          </select>
        </label>
        <nav class="nav-tabs" aria-label={t('sections')}>
          {(['chats', 'history', 'org', 'canned', 'account'] as const).map((v) => (
            <button type="button" key={v} aria-current={view === v ? 'page' : undefined} onClick={() => { setView(v); setFocus(null); }}>
              {v === 'chats' ? t('chats') : v === 'history' ? t('history') : v === 'org' ? t('orgSection') : v === 'canned' ? t('cannedPage') : t('account')}
            </button>
          ))}
        </nav>
        {!online && <span class="offline" role="status">{t('reconnecting')}</span>}
        <span class="grow" />
        <span class="who">{me.name}</span>
        <label class="my-status">
          <span class={`presence ${myStatus ?? 'offline'}`} aria-hidden="true">●</span>{' '}
          <select name="my-status" aria-label={t('myStatus')} value={myStatus === 'away' ? 'away' : 'online'}
            onChange={(e) => setStatus((e.target as HTMLSelectElement).value as 'online' | 'away')}>
            <option value="online">{t('presence_online')}</option>
            <option value="away">{t('presence_away')}</option>
          </select>
        </label>
        <LangSwitch />
        <button type="button" class="logout" onClick={onLogout}>{t('logout')}</button>
      </header>
      <section class="activity" aria-label={t('activity')}>
        <strong>{t('activity')}</strong>
        {activity.length === 0 && <span class="muted">{t('noActivity')}</span>}
        <ul>
          {activity.slice(0, 8).map((a) => (
            <li key={a.position} class={a.hot ? 'hot' : ''} data-type={a.ev.type}>
              <button type="button" class="link" onClick={() => { const o = organizationOf(a.ev); if (o) setOrgId(o); setView('chats'); }}>
                {activityText(a.ev)}
                {organizationOf(a.ev) !== orgId && <span class="org-tag"> · {orgName(organizationOf(a.ev) ?? '')}</span>}
              </button>
            </li>
          ))}
        </ul>
      </section>
      {err && <p class="error banner" role="alert" onClick={() => setErr('')}>{err}</p>}
      {myOffers.length > 0 && (
        <section class="offers banner" aria-label={t('alertOffer', { queue: '' })}>
          {myOffers.map((o) => (
            <p key={o.conversation} class="offer" data-offer={o.conversation}>
              <span>{t('offerFor', { name: o.name || t('customer'), queue: queueName(o.queue) })} ({Math.max(0, Math.ceil((o.expires - Date.now()) / 1000))} s)</span>
              {' '}<button type="button" class="accept-offer" onClick={() => answerOffer(o, true)}>{t('offerAccept')}</button>
              {' '}<button type="button" class="decline-offer" onClick={() => answerOffer(o, false)}>{t('offerDecline')}</button>
            </p>
          ))}
        </section>
      )}
      {myHandoffs.length > 0 && (
        <section class="offers handoffs banner" aria-label={t('alertHandoff')}>
          {myHandoffs.map((c) => (
            <p key={c.id} class="offer handoff" data-handoff={c.id}>
              <span>{t('handoffFor', { name: memberName(c.agent_id ?? '') })}: {String(c.customer.metadata.name ?? t('customer'))}</span>
              {' '}<button type="button" class="accept-handoff" onClick={() => answerHandoff(c.id, true)}>{t('offerAccept')}</button>
              {' '}<button type="button" class="decline-handoff" onClick={() => answerHandoff(c.id, false)}>{t('offerDecline')}</button>
            </p>
          ))}
        </section>
      )}
      {view === 'org' && org && <OrgPage api={api} me={me} orgId={orgId} role={org.role} queues={queues[orgId] ?? []} reloadQueues={() => loadQueues(orgId)} focus={focus} presenceVersion={presenceVersion} />}
      {view === 'history' && <HistoryPage api={api} orgId={orgId} queues={queues[orgId] ?? []} members={members}
        onOpen={(conversation, seq) => { setAtSeq(seq); setSelected(conversation); setView('chats'); }} />}
      {view === 'account' && <AccountPage api={api} me={me} reloadMe={reloadMe} />}
      {view === 'canned' && <CannedPage api={api} me={me} canned={canned} reload={loadCanned} />}
      <div class={`columns${selected ? ' has-conv' : ''}`} hidden={view !== 'chats'}>
        <nav class="sidebar" aria-label={t('sidebarNav')}>
          <h2 class="org-name">{org?.name}</h2>
          <h3>{t('queues')}</h3>
          <ul class="queues">
            {(queues[orgId] ?? []).map((q) => (
              <li key={q.id} class={`queue ${q.open ? 'is-open' : 'is-closed'}`} data-queue={q.id}>
                <button type="button" class="queue-name" aria-haspopup="menu" aria-expanded={menu === q.id} onClick={() => setMenu((cur) => (cur === q.id ? null : q.id))}>
                  {q.name}
                </button>
                <span class={`badge ${q.open ? 'open' : 'closed'}`}>{q.open ? t('open') : t('closed')}</span>
                {q.waiting > 0 && <span class="badge waiting">{t('waiting', { n: q.waiting })}</span>}
                {q.waiting > 0 && waitLate(q) && <span class="badge late" data-late="wait" title={t('lateWait')}>{t('lateWaitShort')}</span>}
                {menu === q.id && (
                  <div class="menu" role="menu" ref={menuBox} onKeyDown={menuKeys}>
                    <button type="button" role="menuitem" disabled={q.waiting === 0} onClick={() => pick(q)}>{t('pick')}</button>
                    <button type="button" role="menuitem" onClick={() => openClose(q)}>{q.open ? t('closeQueue') : t('openQueue')}</button>
                    {isOperator && <button type="button" role="menuitem" onClick={() => showQueue(q, 'settings')}>{t('queueSettings')}</button>}
                    {isOperator && <button type="button" role="menuitem" onClick={() => showQueue(q, 'stats')}>{t('stats')}</button>}
                  </div>
                )}
              </li>
            ))}
          </ul>
          <h3>{t('channels')}</h3>
          <ul>{channels.map((c) => item(c, `# ${c.name ?? ''}`))}</ul>
          {isOperator && (
            <form class="inline" onSubmit={createChannel}>
              <input name="channel" placeholder={t('newChannel')} aria-label={t('newChannel')} value={channelName} onInput={(e) => setChannelName((e.target as HTMLInputElement).value)} />
              <button type="submit">{t('create')}</button>
            </form>
          )}
          <h3>{t('customerConversations')}</h3>
          <ul>{customers.map((c) => item(c, customerLabel(c)))}</ul>
          {leftMessages.length > 0 && <>
            <h3>{t('leftMessages')}</h3>
            <ul class="left-messages">{leftMessages.map((c) => item(c, `${customerLabel(c)}${c.status === 'waiting' ? ` · ${t('unanswered')}` : ''}`))}</ul>
          </>}
          <h3>{t('directs')}</h3>
          <ul>{directs.map((c) => item(c, directLabel(c)))}</ul>
          <select name="direct" aria-label={t('startDirect')} value="" onChange={(e) => startDirect((e.target as HTMLSelectElement).value)}>
            <option value="">{t('startDirect')}</option>
            {members.filter((m) => m.agent_id !== me.agent_id).map((m) => <option key={m.agent_id} value={m.agent_id}>{m.name}</option>)}
          </select>
        </nav>
        {selected ? (
          <Conversation key={selected} id={selected} atSeq={atSeq} inFront={front === selected} api={api} socket={socket} me={me} token={token} orgId={orgId} canned={orgCanned}
            allTags={allTags} queues={queues[orgId] ?? []} isOperator={isOperator} reloadCanned={loadCanned} onChanged={refreshOrg} memberName={memberName} members={members}
            onAnswered={(c) => setAnswered((cur) => (cur[c] ? cur : { ...cur, [c]: true }))}
            onOpen={(c) => { setAtSeq(undefined); setSelected(c); }}
            onBack={() => setSelected(null)} />
        ) : (
          <main class="conversation empty"><p class="muted">{t('selectConversation')}</p></main>
        )}
      </div>
    </div>
  );
}
