// The organization's audit log on the organization page (operators): who changed what, newest
// first, filtered by kind of change and by member, with the same rows as a CSV download.
import { useEffect, useState } from 'preact/hooks';
import { ok, type Api, type Member, type Schemas } from '../api/client';
import { t, type Key } from '../i18n';
import { errText } from './errors';

type Item = Schemas['AuditItem'];

/** The kinds of change the filter offers (the server's audited types). */
const KINDS = ['MemberRoleChanged', 'MemberAdded', 'MemberRemoved', 'InvitationCreated', 'InvitationRevoked', 'QueueSettingsChanged',
  'QueueCreated', 'QueueOpened', 'QueueClosed', 'QueueHandlerAdded', 'QueueHandlerRemoved', 'TwoFactorRequirementSet', 'SsoConfigured',
  'WebhookEndpointAdded', 'WebhookEndpointRemoved', 'CustomerBlocked', 'CustomerBlockLifted', 'MemberSessionsEnded'] as const;

/** A change's fields in a line: what the log holds, without the ids the other columns show. */
function summary(item: Item): string {
  const d = { ...(item.details as Record<string, unknown>) };
  for (const k of ['queue_id', 'agent_id', 'endpoint_id', 'block_id', 'invitation_id', 'response_id', 'by', 'set_by', 'added_by', 'removed_by', 'invited_by', 'revoked_by', 'lifted_by', 'blocked_by', 'ended_by']) delete d[k];
  const text = JSON.stringify(d);
  return text === '{}' ? '' : text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

export function AuditLog({ api, orgId, members }: { api: Api; orgId: string; members: Member[] }) {
  const [items, setItems] = useState<Item[]>([]);
  const [kind, setKind] = useState('');
  const [actor, setActor] = useState('');
  const [err, setErr] = useState('');
  const [version, setVersion] = useState(0);
  const query = { order: 'desc' as const, limit: '200', ...(kind ? { type: kind } : {}), ...(actor ? { actor } : {}) };
  useEffect(() => {
    ok(api.GET('/v1/orgs/{org}/audit', { params: { path: { org: orgId }, query: query as any } }))
      .then((list) => { setItems(Array.isArray(list) ? list : []); setErr(''); })
      .catch((e) => setErr(errText(e)));
  }, [orgId, kind, actor, version]);
  const nameOf = (id?: string | null) => members.find((m) => m.agent_id === id)?.name ?? '';
  const download = async () => {
    try {
      const r = await api.GET('/v1/orgs/{org}/audit', { params: { path: { org: orgId }, query: { ...query, format: 'csv' } as any }, parseAs: 'blob' });
      if (!r.response.ok || !r.data) throw new Error(String(r.response.status));
      const url = URL.createObjectURL(r.data as Blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `audit-${orgId}.csv`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) { setErr(errText(e)); }
  };
  return (
    <section class="audit">
      <h2>{t('auditLog')}</h2>
      <div class="inline filters">
        <select name="audit-type" aria-label={t('auditKind')} value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
          <option value="">{t('auditAllKinds')}</option>
          {KINDS.map((k) => <option key={k} value={k}>{t(`audit_${k}` as Key)}</option>)}
        </select>
        <select name="audit-actor" aria-label={t('auditWho')} value={actor} onChange={(e) => setActor((e.target as HTMLSelectElement).value)}>
          <option value="">{t('auditEveryone')}</option>
          {members.map((m) => <option key={m.agent_id} value={m.agent_id}>{m.name}</option>)}
        </select>
        <button type="button" onClick={() => setVersion((n) => n + 1)}>{t('refresh')}</button>
        <button type="button" onClick={download}>{t('downloadCsv')}</button>
      </div>
      {err && <p class="error" role="alert">{err}</p>}
      {items.length === 0 ? <p class="muted">{t('auditEmpty')}</p> : (
        <table class="table">
          <thead><tr><th>{t('when')}</th><th>{t('auditWho')}</th><th>{t('auditKind')}</th><th>{t('auditSubject')}</th><th>{t('auditDetails')}</th></tr></thead>
          <tbody>
            {items.map((i) => (
              <tr key={i.position} data-type={i.type}>
                <td>{new Date(i.at).toLocaleString()}</td>
                <td>{i.actor_kind === 'agent' ? (i.actor_name ?? nameOf(i.actor_id)) : t('auditSystem')}</td>
                <td>{KINDS.includes(i.type as typeof KINDS[number]) ? t(`audit_${i.type}` as Key) : i.type}</td>
                <td>{nameOf(i.subject) || (i.subject ?? '')}</td>
                <td><code class="small">{summary(i)}</code></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
