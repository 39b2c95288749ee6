import { useState } from 'preact/hooks';
import { ok, type Api, type Canned, type Me } from '../api/client';
import { t } from '../i18n';
import { errText } from './errors';

/** Create, edit and delete personal and organization canned responses. */
export function CannedPage({ api, me, canned, reload }: { api: Api; me: Me; canned: Canned[]; reload: () => Promise<void> }) {
  const [err, setErr] = useState('');
  const [edit, setEdit] = useState<{ id: string; key: string; text: string } | null>(null);
  const [nc, setNc] = useState({ key: '', text: '', scope: '' });
  const act = async (f: () => Promise<unknown>) => { try { setErr(''); await f(); await reload(); } catch (e) { setErr(errText(e)); } };
  const scopes = [{ id: '', name: t('personal') }, ...me.organizations.filter((o) => o.role !== 'agent').map((o) => ({ id: o.id, name: o.name }))];
  const scopeName = (c: Canned) => (c.organization_id ? me.organizations.find((o) => o.id === c.organization_id)?.name ?? '' : t('personal'));
  const canEdit = (c: Canned) => c.organization_id === null || me.organizations.some((o) => o.id === c.organization_id && o.role !== 'agent');
  return (
    <main class="page">
      <h2>{t('cannedPage')}</h2>
      {err && <p class="error" role="alert">{err}</p>}
      <form class="card stack" onSubmit={(e) => { e.preventDefault(); act(async () => {
        await ok(api.POST('/v1/canned-responses', { body: { key: nc.key.trim(), text: nc.text, organization_id: nc.scope || null } }));
        setNc({ key: '', text: '', scope: nc.scope });
      }); }}>
        <h3>{t('newCanned')}</h3>
        <label>{t('key')}<input name="new-key" required maxLength={32} value={nc.key} onInput={(e) => setNc({ ...nc, key: (e.target as HTMLInputElement).value })} /></label>
        <label>{t('text')}<textarea name="new-text" required rows={3} value={nc.text} onInput={(e) => setNc({ ...nc, text: (e.target as HTMLTextAreaElement).value })} /></label>
        <label>{t('scope')}<select value={nc.scope} onChange={(e) => setNc({ ...nc, scope: (e.target as HTMLSelectElement).value })}>{scopes.map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}</select></label>
        <button type="submit" class="primary">{t('save')}</button>
      </form>
      <table class="table">
        <thead><tr><th>{t('key')}</th><th>{t('text')}</th><th>{t('scope')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
        <tbody>
          {canned.map((c) => edit?.id === c.id ? (
            <tr key={c.id}>
              <td><input aria-label={t('key')} value={edit.key} maxLength={32} onInput={(e) => setEdit({ ...edit, key: (e.target as HTMLInputElement).value })} /></td>
              <td><textarea aria-label={t('text')} rows={2} value={edit.text} onInput={(e) => setEdit({ ...edit, text: (e.target as HTMLTextAreaElement).value })} /></td>
              <td>{scopeName(c)}</td>
              <td>
                <button type="button" class="primary" onClick={() => act(async () => { await ok(api.PUT('/v1/canned-responses/{id}', { params: { path: { id: c.id } }, body: { key: edit.key.trim(), text: edit.text } })); setEdit(null); })}>{t('save')}</button>
                <button type="button" onClick={() => setEdit(null)}>{t('cancel')}</button>
              </td>
            </tr>
          ) : (
            <tr key={c.id}>
              <td><code>/{c.key}</code></td><td class="pre">{c.text}</td><td>{scopeName(c)}</td>
              <td>{canEdit(c) && <>
                <button type="button" onClick={() => setEdit({ id: c.id, key: c.key, text: c.text })}>{t('edit')}</button>
                <button type="button" class="danger" onClick={() => act(() => ok(api.DELETE('/v1/canned-responses/{id}', { params: { path: { id: c.id } } })))}>{t('remove')}</button>
              </>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
