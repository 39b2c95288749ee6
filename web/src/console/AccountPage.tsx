import { useState } from 'preact/hooks';
import { ok, ApiError, type Api, type Me } from '../api/client';
import { t } from '../i18n';
import { errText } from './App';
import { disableNotifications, enableNotifications, notificationsOn, setSoundOn, soundOn } from './alerts';

/** The signed-in agent's own settings: alerts, and its password. */
export function AccountPage({ api, me }: { api: Api; me: Me }) {
  const empty = { current: '', next: '', again: '' };
  const [f, setF] = useState(empty);
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setErr('');
    setMsg('');
    if (f.next !== f.again) { setErr(t('passwordsDiffer')); return; }
    setBusy(true);
    try {
      // 204; every other token of the account ends (and their WebSockets close). This one stays.
      await ok(api.PUT('/v1/me/password', { body: { current_password: f.current, new_password: f.next } }));
      setF(empty);
      setMsg(t('passwordChanged'));
    } catch (x) {
      setErr(x instanceof ApiError && x.status === 403 ? t('passwordWrong') : errText(x));
    } finally { setBusy(false); }
  };
  const [sound, setSound] = useState(soundOn);
  const [desktop, setDesktop] = useState(notificationsOn);
  const [notice, setNotice] = useState('');
  const toggleDesktop = async (on: boolean) => {
    setNotice('');
    if (!on) { disableNotifications(); setDesktop(false); return; }
    const granted = await enableNotifications();
    setDesktop(granted);
    if (!granted) setNotice(t('alertDesktopDenied'));
  };
  return (
    <main class="page">
      <section class="alert-settings">
        <h2>{t('alerts')}</h2>
        <label><input type="checkbox" name="alert-sound" checked={sound} onChange={(e) => { const on = (e.target as HTMLInputElement).checked; setSoundOn(on); setSound(on); }} /> {t('alertSound')}</label>
        <label><input type="checkbox" name="alert-desktop" checked={desktop} onChange={(e) => toggleDesktop((e.target as HTMLInputElement).checked)} /> {t('alertDesktop')}</label>
        {notice && <p role="status">{notice}</p>}
      </section>
      <section>
        <h2>{t('account')}</h2>
        <p>{me.name} · {me.email}</p>
        <form class="stack password-form" onSubmit={submit}>
          <h3>{t('changePassword')}</h3>
          <input type="email" name="username" autocomplete="username" value={me.email} readOnly hidden />
          <label>{t('currentPassword')}<input name="current-password" type="password" required autocomplete="current-password" value={f.current} onInput={set('current')} /></label>
          <label>{t('newPassword')}<input name="new-password" type="password" required minLength={10} autocomplete="new-password" value={f.next} onInput={set('next')} /></label>
          <label>{t('repeatPassword')}<input name="repeat-password" type="password" required minLength={10} autocomplete="new-password" value={f.again} onInput={set('again')} /></label>
          {err && <p class="error" role="alert">{err}</p>}
          {msg && <p role="status" class="ok">{msg}</p>}
          <button type="submit" class="primary" disabled={busy}>{t('changePassword')}</button>
        </form>
      </section>
    </main>
  );
}
