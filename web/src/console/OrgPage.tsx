import { useEffect, useRef, useState } from 'preact/hooks';
import { ok, type Api, type Me, type Member, type Queue, type Schemas } from '../api/client';
import { t, type Key } from '../i18n';
import { errText } from './errors';
import { AuditLog } from './AuditLog';

type Role = Schemas['Role'];
const ROLES: Role[] = ['agent', 'operator', 'owner'];

/** A queue to show opened on the organization page (from the queue menu); `n` makes each request new. */
export type QueueFocus = { queue: string; part: 'settings' | 'stats'; n: number };

/** The organization section: members and roles, invitations, queues (settings, handlers, statistics). */
export function OrgPage({ api, me, orgId, role, queues, reloadQueues, focus = null, presenceVersion = 0 }: { api: Api; me: Me; orgId: string; role: Role; queues: Queue[]; reloadQueues: () => void; focus?: QueueFocus | null; presenceVersion?: number }) {
  const isOperator = role === 'owner' || role === 'operator';
  const [members, setMembers] = useState<Member[]>([]);
  const [err, setErr] = useState('');
  const [inv, setInv] = useState({ email: '', role: 'agent' as Role });
  const [link, setLink] = useState<{ email: string; url: string; emailed: boolean } | null>(null);
  const [queueName, setQueueName] = useState('');
  const loadMembers = () => ok(api.GET('/v1/orgs/{org}/members', { params: { path: { org: orgId } } })).then(setMembers).catch((e) => setErr(errText(e)));
  useEffect(() => { loadMembers(); }, [orgId, presenceVersion]);
  // Presence has no events: the member list is read again every 30 seconds while shown.
  useEffect(() => { const i = window.setInterval(loadMembers, 30_000); return () => clearInterval(i); }, [orgId]);
  const act = async (f: () => Promise<unknown>) => { try { setErr(''); await f(); } catch (e) { setErr(errText(e)); } };

  const changeRole = (m: Member, r: Role) => act(async () => { await ok(api.PUT('/v1/orgs/{org}/members/{agent}', { params: { path: { org: orgId, agent: m.agent_id } }, body: { role: r } })); await loadMembers(); });
  const isOwner = role === 'owner';
  const endSessions = (m: Member) => act(async () => { await ok(api.DELETE('/v1/orgs/{org}/members/{agent}/sessions', { params: { path: { org: orgId, agent: m.agent_id } } })); });
  // The organization's sign-in rules (owners change them).
  const [security, setSecurity] = useState<Schemas['OrgSecurity'] | null>(null);
  useEffect(() => { ok(api.GET('/v1/orgs/{org}/security', { params: { path: { org: orgId } } })).then(setSecurity).catch(() => setSecurity(null)); }, [orgId]);
  const setRequire = (on: boolean) => act(async () => { setSecurity(await ok(api.PUT('/v1/orgs/{org}/security', { params: { path: { org: orgId } }, body: { require_two_factor: on } }))); });
  const removeMember = (m: Member) => act(async () => { await ok(api.DELETE('/v1/orgs/{org}/members/{agent}', { params: { path: { org: orgId, agent: m.agent_id } } })); await loadMembers(); });
  // Invitations still open, for operators to review and withdraw.
  const [pending, setPending] = useState<Schemas['InvitationView'][]>([]);
  const loadPending = () => { if (isOperator) ok(api.GET('/v1/orgs/{org}/invitations', { params: { path: { org: orgId } } })).then(setPending).catch((e) => setErr(errText(e))); };
  useEffect(() => { loadPending(); }, [orgId, isOperator]);
  const withdraw = (i: Schemas['InvitationView']) => act(async () => { await ok(api.DELETE('/v1/orgs/{org}/invitations/{invitation}', { params: { path: { org: orgId, invitation: i.invitation_id } } })); loadPending(); });
  const invite = (e: Event) => { e.preventDefault(); act(async () => {
    const r = await ok(api.POST('/v1/orgs/{org}/invitations', { params: { path: { org: orgId } }, body: { email: inv.email, role: inv.role } }));
    setLink({ email: inv.email, url: `${location.origin}/invite/${encodeURIComponent(r.token)}`, emailed: r.emailed });
    setInv({ email: '', role: 'agent' });
    loadPending();
  }); };
  // Blocks of abusive visitors, for operators to review and lift.
  const [blocks, setBlocks] = useState<Schemas['BlockView'][]>([]);
  const loadBlocks = () => { if (isOperator) ok(api.GET('/v1/orgs/{org}/blocks', { params: { path: { org: orgId } } })).then(setBlocks).catch((e) => setErr(errText(e))); };
  useEffect(() => { loadBlocks(); }, [orgId, isOperator]);
  const lift = (b: Schemas['BlockView']) => act(async () => { await ok(api.DELETE('/v1/orgs/{org}/blocks/{block}', { params: { path: { org: orgId, block: b.id } } })); loadBlocks(); });
  const nameOf = (agent: string) => members.find((m) => m.agent_id === agent)?.name ?? agent;
  const createQueue = (e: Event) => { e.preventDefault(); if (!queueName.trim()) return; act(async () => {
    await ok(api.POST('/v1/orgs/{org}/queues', { params: { path: { org: orgId } }, body: { name: queueName.trim() } }));
    setQueueName('');
    reloadQueues();
  }); };

  return (
    <main class="page">
      {err && <p class="error" role="alert">{err}</p>}
      <section>
        <h2>{t('members')}</h2>
        <table class="table">
          <thead><tr><th>{t('name')}</th><th>{t('role')}</th><th>{t('presence')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.agent_id}>
                <td>{m.name}{m.agent_id === me.agent_id ? ` (${t('you')})` : ''}</td>
                <td>
                  {isOperator ? (
                    <select aria-label={`${t('role')}: ${m.name}`} value={m.role} onChange={(e) => changeRole(m, (e.target as HTMLSelectElement).value as Role)}>
                      {ROLES.map((r) => <option key={r} value={r}>{t(`role_${r}` as Key)}</option>)}
                    </select>
                  ) : t(`role_${m.role}` as Key)}
                </td>
                <td class="member-status" data-status={m.status}><span class={`presence ${m.status}`} aria-hidden="true">●</span> {t(`presence_${m.status}` as Key)}</td>
                <td>
                  {isOperator && m.agent_id !== me.agent_id && <button type="button" class="danger" onClick={() => removeMember(m)}>{t('remove')}</button>}
                  {isOwner && m.agent_id !== me.agent_id && <button type="button" aria-label={`${t('endSessions')}: ${m.name}`} onClick={() => endSessions(m)}>{t('endSessions')}</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {security && (
        <section class="sign-in-rules">
          <h2>{t('signInRules')}</h2>
          <label><input type="checkbox" name="require-two-factor" checked={security.require_two_factor} disabled={!isOwner} onChange={(e) => setRequire((e.target as HTMLInputElement).checked)} /> {t('requireTwoFactor')}</label>
          <p class="hint">{t('requireTwoFactorHint')}</p>
          <SsoSettings api={api} orgId={orgId} isOwner={isOwner} onError={setErr} />
        </section>
      )}
      {isOperator && (
        <section>
          <h2>{t('invitations')}</h2>
          <form class="inline" onSubmit={invite}>
            <input name="invite-email" type="email" required placeholder={t('email')} aria-label={t('email')} value={inv.email} onInput={(e) => setInv({ ...inv, email: (e.target as HTMLInputElement).value })} />
            <select name="invite-role" aria-label={t('role')} value={inv.role} onChange={(e) => setInv({ ...inv, role: (e.target as HTMLSelectElement).value as Role })}>
              {ROLES.map((r) => <option key={r} value={r}>{t(`role_${r}` as Key)}</option>)}
            </select>
            <button type="submit">{t('invite')}</button>
          </form>
          {link && <p role="status">{link.emailed ? t('invitationEmailed', { email: link.email }) : t('invitationLink', { email: link.email })} <input class="link-out" readOnly value={link.url} aria-label={t('invitationLink', { email: link.email })} onFocus={(e) => (e.target as HTMLInputElement).select()} /></p>}
          {pending.length > 0 && (
            <table class="table pending-invitations">
              <thead><tr><th>{t('email')}</th><th>{t('role')}</th><th>{t('expires')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
              <tbody>
                {pending.map((i) => (
                  <tr key={i.invitation_id}>
                    <td>{i.email}</td>
                    <td>{t(`role_${i.role}` as Key)}</td>
                    <td>{new Date(i.expires_at).toLocaleDateString()}</td>
                    <td><button type="button" class="danger" aria-label={`${t('withdraw')}: ${i.email}`} onClick={() => withdraw(i)}>{t('withdraw')}</button></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      {isOperator && (
        <section class="blocks">
          <h2>{t('blocks')}</h2>
          {blocks.length === 0 ? <p class="muted">{t('noBlocks')}</p> : (
            <table class="table">
              <thead><tr><th>{t('until')}</th><th>{t('blockedBy')}</th><th>{t('reason')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
              <tbody>
                {blocks.map((b) => (
                  <tr key={b.id}>
                    <td>{new Date(b.until).toLocaleString()}</td>
                    <td>{nameOf(b.blocked_by)}</td>
                    <td>{b.reason ?? ''} {b.by_address ? '' : <span class="muted">{t('tokenOnly')}</span>}</td>
                    <td><button type="button" onClick={() => lift(b)}>{t('lift')}</button></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
      <RetentionSetting api={api} orgId={orgId} isOperator={isOperator} onError={setErr} />
      {isOperator && <Webhooks api={api} orgId={orgId} onError={setErr} />}
      {isOperator && <AuditLog api={api} orgId={orgId} members={members} />}
      <section>
        <h2>{t('queues')}</h2>
        {isOperator && (
          <form class="inline" onSubmit={createQueue}>
            <input name="queue-name" required placeholder={t('newQueue')} aria-label={t('newQueue')} value={queueName} onInput={(e) => setQueueName((e.target as HTMLInputElement).value)} />
            <button type="submit">{t('create')}</button>
          </form>
        )}
        {queues.map((q) => <QueueAdmin key={q.id} api={api} queue={q} members={members} isOperator={isOperator} reload={reloadQueues}
          focus={focus?.queue === q.id ? focus : null} />)}
      </section>
    </main>
  );
}

function QueueAdmin({ api, queue, members, isOperator, reload, focus }: { api: Api; queue: Queue; members: Member[]; isOperator: boolean; reload: () => void; focus: QueueFocus | null }) {
  const [full, setFull] = useState<Queue | null>(null);
  const [f, setF] = useState({ name: queue.name, welcome: '', max: '', cap: '', origins: '', side: 'right', color: '', routing: 'manual', offerTimeout: '30', offline: false, reopen: '', targetWait: '', targetFirst: '' });
  // The settings form shows once the queue's stored settings are in it (see SsoSettings).
  const [loaded, setLoaded] = useState(false);
  const [msg, setMsg] = useState('');
  const [showStats, setShowStats] = useState(false);
  const box = useRef<HTMLDetailsElement>(null);
  const settingsRef = useRef<HTMLHeadingElement>(null);
  const statsRef = useRef<HTMLDivElement>(null);
  // Opened from the queue menu: unfold this queue and bring the asked part into view. The
  // statistics come first in the box and are scrolled to once their figures are there (scrolled
  // to before, they would grow below the fold).
  const bringStats = useRef(false);
  const bringSettings = useRef(false);
  const bring = (target: HTMLElement | null) => {
    target?.scrollIntoView({ block: 'start' });
    target?.focus({ preventScroll: true });
  };
  useEffect(() => {
    if (!focus || !box.current) return;
    box.current.open = true;
    if (focus.part === 'stats') { bringStats.current = true; setShowStats(true); }
    else bringSettings.current = true;
  }, [focus?.n]);
  // The settings are brought into view once their form shows (after they have loaded).
  useEffect(() => {
    if (!loaded || !bringSettings.current) return;
    bringSettings.current = false;
    requestAnimationFrame(() => bring(settingsRef.current ?? box.current));
  }, [loaded, focus?.n]);
  const statsShown = () => {
    if (!bringStats.current) return;
    bringStats.current = false;
    requestAnimationFrame(() => bring(statsRef.current));
  };
  useEffect(() => {
    ok(api.GET('/v1/queues/{queue}', { params: { path: { queue: queue.id } } })).then((q) => {
      setFull(q);
      const s = q.settings;
      setF({ name: q.name, welcome: s?.welcome_message ?? '', max: String(s?.max_waiting ?? q.max_waiting ?? ''), cap: String(s?.capacity_per_agent ?? q.capacity_per_agent ?? ''), origins: (s?.allowed_origins ?? q.allowed_origins ?? []).join('\n'), side: q.widget_position ?? 'right', color: q.widget_color ?? '', routing: q.routing ?? 'manual', offerTimeout: String(q.offer_timeout_seconds ?? 30), offline: !!q.leave_message_when_offline, reopen: String(q.reopen_window_seconds ?? ''), targetWait: String(q.target_wait_seconds ?? ''), targetFirst: String(q.target_first_response_seconds ?? '') });
    }).catch(() => {}).finally(() => setLoaded(true));
  }, [queue.id]);
  const act = async (fn: () => Promise<unknown>, done = '') => { try { setMsg(''); await fn(); setMsg(done); } catch (e) { setMsg(errText(e)); } };
  const num = (v: string) => (v.trim() === '' ? null : Number(v));
  const save = (e: Event) => { e.preventDefault(); act(async () => {
    const saved = await ok(api.PUT('/v1/queues/{queue}/settings', { params: { path: { queue: queue.id } }, body: {
      name: f.name.trim(), welcome_message: f.welcome.trim() || null, max_waiting: num(f.max), capacity_per_agent: num(f.cap),
      allowed_origins: f.origins.split(/\s+/).filter(Boolean),
      widget_position: f.side === 'left' ? 'left' : 'right', widget_color: f.color.trim() || null,
      routing: f.routing === 'auto' ? 'auto' : 'manual', offer_timeout_seconds: num(f.offerTimeout),
      leave_message_when_offline: f.offline, reopen_window_seconds: num(f.reopen),
      target_wait_seconds: num(f.targetWait), target_first_response_seconds: num(f.targetFirst),
    } }));
    setFull(saved);
    reload();
  }, t('saved')); };
  const handlers = full?.handlers ?? queue.handlers;
  const toggleHandler = (m: Member, on: boolean) => {
    const before = full ?? queue;
    setFull({ ...before, handlers: on ? [...handlers, m.agent_id] : handlers.filter((h) => h !== m.agent_id) }); // at once; undone on error
    act(async () => {
      try {
        if (on) await ok(api.POST('/v1/queues/{queue}/handlers', { params: { path: { queue: queue.id } }, body: { agent_id: m.agent_id } }));
        else await ok(api.DELETE('/v1/queues/{queue}/handlers/{agent}', { params: { path: { queue: queue.id, agent: m.agent_id } } }));
      } catch (e) { setFull(before); throw e; }
      reload();
    });
  };
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const snippet = `<script src="${location.origin}/loader.js" data-queue="${queue.id}" async></script>`;
  return (
    <details ref={box} class="queue-admin card" data-queue-admin={queue.id}>
      <summary><strong>{queue.name}</strong> <span class={`badge ${queue.open ? 'open' : 'closed'}`}>{queue.open ? t('open') : t('closed')}</span></summary>
      {msg && <p role="status">{msg}</p>}
      {isOperator && (showStats ? <div ref={statsRef} tabIndex={-1}><Stats api={api} queue={queue.id} onShown={statsShown} /></div> : <p><button type="button" onClick={() => setShowStats(true)}>{t('showStats')}</button></p>)}
      {isOperator && loaded && (
        <form class="stack" onSubmit={save}>
          <h3 ref={settingsRef} tabIndex={-1}>{t('queueSettings')}</h3>
          <label>{t('name')}<input value={f.name} required onInput={set('name')} /></label>
          <label>{t('welcomeMessage')}<textarea rows={2} value={f.welcome} onInput={set('welcome')} /></label>
          <label>{t('maxWaiting')}<input type="number" min={1} value={f.max} onInput={set('max')} /></label>
          <label>{t('capacity')}<input type="number" min={1} value={f.cap} onInput={set('cap')} /></label>
          <label>{t('routing')}<select name="routing" value={f.routing} onChange={set('routing')}><option value="manual">{t('routingManual')}</option><option value="auto">{t('routingAuto')}</option></select></label>
          <label>{t('offerTimeout')}<input name="offer-timeout" type="number" min={1} max={3600} value={f.offerTimeout} onInput={set('offerTimeout')} /></label>
          <label>{t('targetWait')}<input name="target_wait_seconds" type="number" min={1} max={100000} value={f.targetWait} onInput={set('targetWait')} /></label>
          <label>{t('targetFirstResponse')}<input name="target_first_response_seconds" type="number" min={1} max={100000} value={f.targetFirst} onInput={set('targetFirst')} /></label>
          <label>{t('allowedOrigins')}<textarea rows={2} placeholder="https://www.example.com" value={f.origins} onInput={set('origins')} /></label>
          <label>{t('widgetPosition')}<select value={f.side} onChange={set('side')}><option value="right">{t('widgetRight')}</option><option value="left">{t('widgetLeft')}</option></select></label>
          <label>{t('widgetColor')}<input value={f.color} placeholder="#1f6feb" pattern="#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})" onInput={set('color')} /></label>
          <label class="check"><input type="checkbox" name="leave-message-when-offline" checked={f.offline} onChange={(e) => setF({ ...f, offline: (e.target as HTMLInputElement).checked })} /> {t('leaveMessageWhenOffline')}</label>
          <label>{t('reopenWindow')}<input type="number" name="reopen-window" min={1} max={86400} value={f.reopen} onInput={set('reopen')} /></label>
          <button type="submit">{t('save')}</button>
        </form>
      )}
      <h3>{t('handlers')}</h3>
      <ul>
        {members.map((m) => (
          <li key={m.agent_id}><label><input type="checkbox" disabled={!isOperator} checked={handlers.includes(m.agent_id)} onChange={(e) => toggleHandler(m, (e.target as HTMLInputElement).checked)} /> {m.name}</label></li>
        ))}
      </ul>
      {isOperator && loaded && <IdentitySecret api={api} queue={queue.id} />}
      <h3>{t('embedCode')}</h3>
      <input class="link-out" readOnly value={snippet} aria-label={t('embedCode')} onFocus={(e) => (e.target as HTMLInputElement).select()} />
      {full && (full.settings?.allowed_origins ?? full.allowed_origins ?? []).length === 0 && (
        <p class="warning" role="note">{t('embedNeedsSites')}</p>
      )}
    </details>
  );
}

/** The queue's identity secret (README, "Returning customers"): shown to operators, who make
 * or replace it; the site signs its users' identities with it. */
function IdentitySecret({ api, queue }: { api: Api; queue: string }) {
  const [secret, setSecret] = useState<string | null | undefined>(undefined);
  const [msg, setMsg] = useState('');
  useEffect(() => {
    ok(api.GET('/v1/queues/{queue}/identity-secret', { params: { path: { queue } } })).then((s) => setSecret(s.secret ?? null)).catch((e) => setMsg(errText(e)));
  }, [queue]);
  const make = async () => {
    try {
      setMsg('');
      const made = await ok(api.POST('/v1/queues/{queue}/identity-secret', { params: { path: { queue } } }));
      setSecret(made.secret ?? null);
    } catch (e) { setMsg(errText(e)); }
  };
  if (secret === undefined && !msg) return null;
  return (
    <section class="identity-secret">
      <h3>{t('identitySecret')}</h3>
      <p class="muted small">{t('identitySecretHelp')}</p>
      {secret ? <input class="link-out" name="identity-secret" readOnly value={secret} aria-label={t('identitySecret')} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        : <p class="muted">{t('identitySecretNone')}</p>}
      {msg && <p class="error" role="alert">{msg}</p>}
      <button type="button" onClick={make}>{secret ? t('rotateIdentitySecret') : t('makeIdentitySecret')}</button>
    </section>
  );
}

type StatsT = Schemas['QueueStats'];

function Stats({ api, queue, onShown }: { api: Api; queue: string; onShown?: () => void }) {
  const [total, setTotal] = useState<StatsT | null>(null);
  const [hours, setHours] = useState<{ start: Date; s: StatsT }[]>([]);
  const [err, setErr] = useState('');
  useEffect(() => {
    const get = (from?: string, to?: string) => ok(api.GET('/v1/queues/{queue}/stats', { params: { path: { queue }, query: { from, to } as any } }));
    get().then(setTotal).catch((e) => setErr(errText(e)));
    const now = new Date();
    now.setMinutes(0, 0, 0);
    const starts = Array.from({ length: 24 }, (_, i) => new Date(now.getTime() - (23 - i) * 3600_000));
    Promise.all(starts.map((s) => get(s.toISOString(), new Date(s.getTime() + 3600_000).toISOString()).then((x) => ({ start: s, s: x }))))
      .then(setHours).catch(() => {});
  }, [queue]);
  const ready = !!total && hours.length > 0;
  useEffect(() => { if (ready) onShown?.(); }, [ready]);
  const p = (x: { p50?: number | null; p90?: number | null; max?: number | null } | undefined) => [x?.p50, x?.p90, x?.max].map((v) => (v == null ? '–' : Math.round(v))).join(' / ');
  const target = (x: { met: number; breached: number; met_share?: number | null } | undefined) =>
    !x || x.met_share == null ? '–' : t('targetFigures', { share: Math.round(x.met_share * 100), met: x.met, breached: x.breached });
  if (err) return <p class="error">{err}</p>;
  if (!total) return <p class="muted">…</p>;
  return (
    <div class="stats">
      <h3>{t('stats')}</h3>
      <dl class="figures">
        <dt>{t('statJoined')}</dt><dd>{total.joined}</dd>
        <dt>{t('statPicked')}</dt><dd>{total.picked}</dd>
        <dt>{t('statAbandoned')}</dt><dd>{total.abandoned}</dd>
        <dt>{t('statTimedOut')}</dt><dd>{total.timed_out}</dd>
        <dt>{t('statTransferred')}</dt><dd>{total.transferred_out}</dd>
        <dt>{t('statWaitingNow')}</dt><dd>{total.waiting_now}</dd>
        <dt>{t('statWait')}</dt><dd>{p(total.wait_seconds)}</dd>
        <dt>{t('statHandle')}</dt><dd>{p(total.handle_seconds)}</dd>
        <dt>{t('statRating')}</dt><dd>{total.rating.count}, {total.rating.mean == null ? '–' : total.rating.mean.toFixed(2)}</dd>
        {total.offers.offered > 0 && <><dt>{t('statOffers')}</dt><dd>{total.offers.offered} / {total.offers.accepted} / {total.offers.declined} / {total.offers.expired}</dd></>}
        <dt>{t('statMessagesLeft')}</dt><dd class="messages-left">{total.messages_left}</dd>
        <dt>{t('statWaitTarget')}</dt><dd data-stat="wait_target">{target(total.wait_target)}</dd>
        <dt>{t('statFirstResponseTarget')}</dt><dd data-stat="first_response_target">{target(total.first_response_target)}</dd>
      </dl>
      {hours.length > 0 && <>
        <h4>{t('arrivalsPerHour')}</h4>
        <Bars values={hours.map((h) => [h.s.joined])} labels={hours.map((h) => String(h.start.getHours()))} integer />
        <h4>{t('waitPerHour')}</h4>
        <Bars values={hours.map((h) => [h.s.wait_seconds.p50 ?? 0, h.s.wait_seconds.p90 ?? 0])} labels={hours.map((h) => String(h.start.getHours()))} series={['p50', 'p90']} />
      </>}
    </div>
  );
}

/** Ticks for a y-axis from 0 to at least `max`: about four steps of 1, 2 or 5 × 10^k (whole steps for counts). */
export function niceTicks(max: number, integer = false): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = (integer ? Math.max(max, 1) : max) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const n = Math.max(1, Math.ceil(max / step - 1e-9));
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

/** A small SVG bar chart with a labelled y-axis; each value list is drawn side by side (`series` names them). */
function Bars({ values, labels, integer = false, series }: { values: number[][]; labels: string[]; integer?: boolean; series?: string[] }) {
  const ticks = niceTicks(Math.max(0, ...values.flat()), integer);
  const top = ticks[ticks.length - 1];
  const w = 16, h = 80, left = 26, pad = 6;
  const right = left + values.length * w;
  const y = (v: number) => pad + h - (v / top) * h;
  return (
    <>
      <svg class="bars" viewBox={`0 0 ${right + 2} ${pad + h + 12}`} role="img" aria-label={values.map((v, i) => `${labels[i]}: ${v.join('/')}`).join(', ')}>
        <g class="y-axis">
          {ticks.map((v) => (
            <g key={v}>
              <line class={v === 0 ? 'axis' : 'grid'} x1={left - 3} x2={right} y1={y(v)} y2={y(v)} />
              <text x={left - 5} y={y(v) + 2.5} text-anchor="end">{v}</text>
            </g>
          ))}
          <line class="axis" x1={left} x2={left} y1={pad} y2={pad + h} />
        </g>
        {values.map((vs, i) => vs.map((v, j) => {
          const bw = (w - 4) / vs.length;
          return <rect key={`${i}-${j}`} class={`s${j}`} x={left + i * w + 2 + j * bw} y={y(v)} width={bw} height={pad + h - y(v)}><title>{`${labels[i]}: ${v}`}</title></rect>;
        }))}
        {labels.map((l, i) => (i % 3 === 0 ? <text key={i} x={left + i * w + w / 2} y={pad + h + 10} text-anchor="middle">{l}</text> : null))}
      </svg>
      {series && <ul class="legend">{series.map((n, j) => <li key={n}><span class={`swatch s${j}`} aria-hidden="true" /> {n}</li>)}</ul>}
    </>
  );
}

/** The organization's OpenID Connect provider: owners set it; everyone sees the sign-in link to share. */
function SsoSettings({ api, orgId, isOwner, onError }: { api: Api; orgId: string; isOwner: boolean; onError: (e: string) => void }) {
  const [sso, setSso] = useState<Schemas['SsoView'] | null>(null);
  const [f, setF] = useState({ issuer: '', client_id: '', client_secret: '', required: false });
  const [saved, setSaved] = useState(false);
  // The form shows once the stored settings are in it: shown earlier, their late arrival
  // overwrote what the owner had already typed.
  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    setLoaded(false);
    ok(api.GET('/v1/orgs/{org}/sso', { params: { path: { org: orgId } } }))
      .then((v) => { setSso(v); setF({ issuer: v.issuer ?? '', client_id: v.client_id ?? '', client_secret: '', required: v.required }); })
      .catch(() => setSso(null))
      .finally(() => setLoaded(true));
  }, [orgId]);
  const save = async (e: Event) => {
    e.preventDefault();
    setSaved(false);
    onError('');
    try {
      const body = { issuer: f.issuer, client_id: f.client_id, required: f.required, ...(f.client_secret ? { client_secret: f.client_secret } : {}) };
      const v = await ok(api.PUT('/v1/orgs/{org}/sso', { params: { path: { org: orgId } }, body }));
      setSso(v);
      setF({ ...f, client_secret: '' });
      setSaved(true);
    } catch (x) { onError(errText(x)); }
  };
  const link = `${location.origin}/v1/sso/${orgId}/start`;
  const set = (k: 'issuer' | 'client_id' | 'client_secret') => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  return (
    <div class="sso-settings">
      <h3>{t('sso')}</h3>
      {sso?.issuer && <p>{t('ssoLink')}: <a href={link} class="sso-link">{link}</a></p>}
      {isOwner && loaded && (
        <form class="stack" onSubmit={save}>
          <label>{t('ssoIssuer')}<input name="sso-issuer" type="url" required value={f.issuer} onInput={set('issuer')} /></label>
          <label>{t('ssoClientId')}<input name="sso-client-id" required value={f.client_id} onInput={set('client_id')} /></label>
          <label>{t('ssoClientSecret')}<input name="sso-client-secret" type="password" autocomplete="off" required={!sso?.has_client_secret} placeholder={sso?.has_client_secret ? t('ssoSecretKept') : ''} value={f.client_secret} onInput={set('client_secret')} /></label>
          <label><input type="checkbox" name="sso-required" checked={f.required} onChange={(e) => setF({ ...f, required: (e.target as HTMLInputElement).checked })} /> {t('ssoRequired')}</label>
          <button type="submit" class="primary">{t('ssoSave')}</button>
          {saved && <p role="status">{t('saved')}</p>}
        </form>
      )}
    </div>
  );
}

const WEBHOOK_EVENTS = ['CustomerJoinedQueue', 'CustomerLeftQueue', 'CustomerPicked', 'ConversationTransferred', 'MessageSent', 'ConversationRated', 'ConversationEnded', 'MessageLeft', 'ConversationReopened'] as const;

/** Operators: the organization's webhook endpoints (add, remove) and its parked deliveries, each
 * with a "Redeliver" button. */
function Webhooks({ api, orgId, onError }: { api: Api; orgId: string; onError: (e: string) => void }) {
  const [endpoints, setEndpoints] = useState<Schemas['WebhookEndpointView'][]>([]);
  const [parked, setParked] = useState<Schemas['ParkedDelivery'][]>([]);
  const [url, setUrl] = useState('');
  const [types, setTypes] = useState<string[]>(['CustomerJoinedQueue', 'ConversationEnded']);
  const [note, setNote] = useState('');
  const org = { path: { org: orgId } };
  const load = () => {
    ok(api.GET('/v1/orgs/{org}/webhooks', { params: org })).then(setEndpoints).catch((e) => onError(errText(e)));
    ok(api.GET('/v1/orgs/{org}/webhooks/parked', { params: org })).then(setParked).catch((e) => onError(errText(e)));
  };
  useEffect(() => { load(); }, [orgId]);
  const act = async (f: () => Promise<unknown>) => { try { onError(''); await f(); } catch (e) { onError(errText(e)); } };
  const add = (e: Event) => { e.preventDefault(); act(async () => {
    await ok(api.POST('/v1/orgs/{org}/webhooks', { params: org, body: { url: url.trim(), event_types: types } }));
    setUrl('');
    load();
  }); };
  const remove = (endpoint: Schemas['WebhookEndpointView']) => act(async () => {
    await ok(api.DELETE('/v1/orgs/{org}/webhooks/{endpoint}', { params: { path: { org: orgId, endpoint: endpoint.id } } }));
    load();
  });
  const redeliver = (d: Schemas['ParkedDelivery']) => act(async () => {
    await ok(api.POST('/v1/orgs/{org}/webhooks/{endpoint}/deliveries/{position}/redeliver', { params: { path: { org: orgId, endpoint: d.endpoint_id, position: d.position } } }));
    setNote(t('redelivering'));
    load();
  });
  const toggle = (type: string, on: boolean) => setTypes(on ? [...types.filter((x) => x !== type), type] : types.filter((x) => x !== type));
  const urlOf = (endpoint: string) => endpoints.find((x) => x.id === endpoint)?.url ?? endpoint;
  return (
    <section class="webhooks">
      <h2>{t('webhooks')}</h2>
      <p class="hint">{t('webhooksHint')}</p>
      <form class="webhook-form" onSubmit={add}>
        <input name="webhook-url" type="url" required placeholder="https://" aria-label={t('webhookUrl')} value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
        <fieldset>
          <legend>{t('webhookEvents')}</legend>
          {WEBHOOK_EVENTS.map((type) => (
            <label key={type}><input type="checkbox" name={`webhook-event-${type}`} checked={types.includes(type)} onChange={(e) => toggle(type, (e.target as HTMLInputElement).checked)} /> {t(`event_${type}` as Key)}</label>
          ))}
        </fieldset>
        <button type="submit" disabled={types.length === 0}>{t('addEndpoint')}</button>
      </form>
      {endpoints.length === 0 ? <p class="muted">{t('noEndpoints')}</p> : (
        <table class="table webhook-endpoints">
          <thead><tr><th>{t('webhookUrl')}</th><th>{t('webhookEvents')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
          <tbody>
            {endpoints.map((endpoint) => (
              <tr key={endpoint.id}>
                <td class="url">{endpoint.url}</td>
                <td>{endpoint.event_types.map((type) => t(`event_${type}` as Key)).join(', ')}</td>
                <td><button type="button" class="danger" aria-label={`${t('remove')}: ${endpoint.url}`} onClick={() => remove(endpoint)}>{t('remove')}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>{t('parkedDeliveries')}</h3>
      {note && <p role="status">{note}</p>}
      {parked.length === 0 ? <p class="muted">{t('noParked')}</p> : (
        <table class="table parked-deliveries">
          <thead><tr><th>{t('webhookUrl')}</th><th>{t('logPosition')}</th><th>{t('webhookEvents')}</th><th>{t('attempts')}</th><th>{t('lastError')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
          <tbody>
            {parked.map((d) => (
              <tr key={d.id}>
                <td class="url">{urlOf(d.endpoint_id)}</td>
                <td>{d.position}</td>
                <td>{t(`event_${d.event_type}` as Key)}</td>
                <td>{d.attempts}</td>
                <td>{d.last_error ?? ''}</td>
                <td><button type="button" aria-label={`${t('redeliver')}: ${d.position}`} onClick={() => redeliver(d)}>{t('redeliver')}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** How long customers' personal data is kept after a conversation ends (operators set it). */
function RetentionSetting({ api, orgId, isOperator, onError }: { api: Api; orgId: string; isOperator: boolean; onError: (e: string) => void }) {
  const [days, setDays] = useState<string | null>(null);
  useEffect(() => {
    ok(api.GET('/v1/orgs/{org}/retention', { params: { path: { org: orgId } } }))
      .then((r) => setDays(r.retention_days == null ? '' : String(r.retention_days)))
      .catch(() => setDays(null));
  }, [orgId]);
  if (days === null) return null;
  const save = (e: Event) => {
    e.preventDefault();
    const value = days.trim() === '' ? null : Number(days);
    ok(api.PUT('/v1/orgs/{org}/retention', { params: { path: { org: orgId } }, body: { retention_days: value } }))
      .then((r) => { onError(''); setDays(r.retention_days == null ? '' : String(r.retention_days)); })
      .catch((x) => onError(errText(x)));
  };
  return (
    <section class="retention">
      <h2>{t('retention')}</h2>
      <form class="inline" onSubmit={save}>
        <label>{t('retentionDays')} <input name="retention-days" type="number" min={1} max={3650} placeholder={t('retentionKeep')} value={days} disabled={!isOperator} onInput={(e) => setDays((e.target as HTMLInputElement).value)} /></label>
        {isOperator && <button type="submit">{t('saveRetention')}</button>}
      </form>
      <p class="hint">{t('retentionHint')}</p>
    </section>
  );
}
