// History and search: the organization's ended conversations, filtered by queue, agent, tag and
// dates, and full-text search over messages, notes and customer details. A result opens its
// conversation at the hit.
import { useEffect, useState } from 'preact/hooks';
import { ok, type Api, type AgentConversation, type Queue, type Member, type Schemas } from '../api/client';
import { t, fmtTime } from '../i18n';
import { errText } from './errors';

type Hit = Schemas['SearchHit'];
const PAGE = 50;

export function HistoryPage({ api, orgId, queues, members, onOpen }: {
  api: Api; orgId: string; queues: Queue[]; members: Member[]; onOpen: (conversation: string, seq?: number) => void;
}) {
  const [q, setQ] = useState('');
  const [hits, setHits] = useState<Hit[] | null>(null);
  const [moreHits, setMoreHits] = useState(false);
  const [f, setF] = useState({ queue: '', agent: '', tag: '', from: '', to: '' });
  const [ended, setEnded] = useState<AgentConversation[]>([]);
  const [moreEnded, setMoreEnded] = useState(false);
  const [err, setErr] = useState('');

  const find = async (after?: number) => {
    try {
      setErr('');
      const page = await ok(api.GET('/v1/orgs/{org}/search', { params: { path: { org: orgId }, query: { q, limit: PAGE, after } as any } }));
      setHits((cur) => (after === undefined ? page : [...(cur ?? []), ...page]));
      setMoreHits(page.length === PAGE);
    } catch (e) { setErr(errText(e)); }
  };
  const list = async (after?: string) => {
    try {
      setErr('');
      const query: Record<string, string | number> = { status: 'ended', limit: PAGE };
      for (const [k, v] of Object.entries(f)) if (v) query[k] = v;
      if (after) query.after = after;
      const page = await ok(api.GET('/v1/orgs/{org}/conversations', { params: { path: { org: orgId }, query: query as any } }));
      setEnded((cur) => (after ? [...cur, ...page] : page));
      setMoreEnded(page.length === PAGE);
    } catch (e) { setErr(errText(e)); }
  };
  useEffect(() => { setHits(null); list(); }, [orgId]);

  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const queueName = (id: string | null | undefined) => queues.find((x) => x.id === id)?.name ?? '';
  const agentName = (id: string | null | undefined) => members.find((m) => m.agent_id === id)?.name ?? '';
  const source = (s: string) => (s === 'note' ? t('hitNote') : s === 'metadata' ? t('hitMetadata') : t('hitMessage'));

  return (
    <main class="history page">
      <h2>{t('history')}</h2>
      {err && <p class="error" role="alert">{err}</p>}
      <form class="inline search" role="search" onSubmit={(e) => { e.preventDefault(); find(); }}>
        <input type="search" name="q" aria-label={t('searchConversations')} placeholder={t('searchConversations')} value={q}
          onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        <button type="submit">{t('search')}</button>
      </form>
      {hits && (
        <section aria-label={t('searchResults')}>
          <h3>{t('searchResults')}</h3>
          {hits.length === 0 ? <p class="muted">{t('noResults')}</p> : (
            <ul class="hits">
              {hits.map((h) => (
                <li key={h.position}>
                  <button type="button" class="link hit" onClick={() => onOpen(h.conversation_id, h.source === 'message' ? Number(h.reference) : undefined)}>
                    <span class="badge">{source(h.source)}</span> {h.snippet} <span class="muted">{fmtTime(h.at)}</span>
                  </button>
                </li>
              ))}
            </ul>
          )}
          {moreHits && <button type="button" onClick={() => find(hits[hits.length - 1]?.position)}>{t('more')}</button>}
        </section>
      )}
      <section aria-label={t('endedConversations')}>
        <h3>{t('endedConversations')}</h3>
        <form class="filters" onSubmit={(e) => { e.preventDefault(); list(); }}>
          <label>{t('queue')}<select name="queue" value={f.queue} onChange={set('queue')}>
            <option value="">{t('any')}</option>
            {queues.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
          </select></label>
          <label>{t('agent')}<select name="agent" value={f.agent} onChange={set('agent')}>
            <option value="">{t('any')}</option>
            {members.map((m) => <option key={m.agent_id} value={m.agent_id}>{m.name}</option>)}
          </select></label>
          <label>{t('tag')}<input name="tag" value={f.tag} onInput={set('tag')} /></label>
          <label>{t('fromDate')}<input type="date" name="from" value={f.from} onInput={set('from')} /></label>
          <label>{t('toDate')}<input type="date" name="to" value={f.to} onInput={set('to')} /></label>
          <button type="submit">{t('filter')}</button>
        </form>
        {ended.length === 0 ? <p class="muted">{t('noResults')}</p> : (
          <table class="ended">
            <thead><tr><th>{t('customer')}</th><th>{t('queue')}</th><th>{t('agent')}</th><th>{t('endedAt')}</th><th>{t('tags')}</th></tr></thead>
            <tbody>
              {ended.map((c) => (
                <tr key={c.id}>
                  <td><button type="button" class="link" onClick={() => onOpen(c.id)}>{String((c.customer?.metadata as any)?.name || c.name || t('customer'))}</button></td>
                  <td>{queueName(c.queue_id)}</td>
                  <td>{agentName(c.agent_id)}</td>
                  <td>{c.ended_at ? fmtTime(c.ended_at) : ''}</td>
                  <td>{(c.tags ?? []).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {moreEnded && <button type="button" onClick={() => list(ended[ended.length - 1]?.id)}>{t('more')}</button>}
      </section>
    </main>
  );
}
