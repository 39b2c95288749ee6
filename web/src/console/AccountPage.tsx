import { useEffect, useState } from 'preact/hooks';
import { ok, ApiError, type Api, type Me, type Schemas } from '../api/client';
import { t } from '../i18n';
import { errText } from './errors';
import { disableNotifications, enableNotifications, notificationsOn, setSoundOn, soundOn } from './alerts';

/** The signed-in agent's own settings: alerts, its password, two-factor authentication, sessions. */
export function AccountPage({ api, me, reloadMe }: { api: Api; me: Me; reloadMe: () => void }) {
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
        {me.email_confirmation_required && <ConfirmNotice api={api} email={me.email} />}
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
      <TwoFactor api={api} me={me} reloadMe={reloadMe} />
      <Sessions api={api} />
    </main>
  );
}

/** Enrolment (QR code, first code, recovery codes shown once) or turning it off. */
function TwoFactor({ api, me, reloadMe }: { api: Api; me: Me; reloadMe: () => void }) {
  const [enrolment, setEnrolment] = useState<Schemas['Enrolment'] | null>(null);
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [code, setCode] = useState('');
  const [err, setErr] = useState('');
  const act = async (f: () => Promise<unknown>) => { setErr(''); try { await f(); } catch (x) { setErr(errText(x)); } };
  const begin = () => act(async () => { setEnrolment(await ok(api.POST('/v1/me/two-factor'))); setCode(''); });
  const confirm = (e: Event) => { e.preventDefault(); act(async () => {
    const r = await ok(api.POST('/v1/me/two-factor/confirm', { body: { code: code.trim() } }));
    setEnrolment(null);
    setCode('');
    setRecovery(r.recovery_codes);
  }); };
  const disable = (e: Event) => { e.preventDefault(); act(async () => {
    const typed = code.trim();
    const proof = /^\d{6}$/.test(typed) ? { code: typed } : { recovery_code: typed };
    await ok(api.POST('/v1/me/two-factor/disable', { body: proof }));
    setCode('');
    reloadMe();
  }); };
  const codeInput = (label: string) => <label>{label}<input name="otp-code" required autocomplete="one-time-code" value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} /></label>;
  return (
    <section class="two-factor">
      <h2>{t('twoFactor')}</h2>
      {recovery ? (
        <div class="stack">
          <h3>{t('recoveryCodesTitle')}</h3>
          <p>{t('recoveryCodesHint')}</p>
          <ul class="recovery-codes">{recovery.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
          <button type="button" class="primary" onClick={() => { setRecovery(null); reloadMe(); }}>{t('done')}</button>
        </div>
      ) : me.two_factor ? (
        <form class="stack" onSubmit={disable}>
          <p role="status">{t('twoFactorOn')}</p>
          <p>{t('twoFactorDisableHint')}</p>
          {codeInput(t('codeOrRecovery'))}
          <button type="submit" class="danger">{t('twoFactorDisable')}</button>
        </form>
      ) : enrolment ? (
        <form class="stack" onSubmit={confirm}>
          <p>{t('twoFactorScan')}</p>
          {/* The server draws the QR code of the otpauth:// URI as SVG (no script, no links). */}
          <div class="qr" role="img" aria-label={enrolment.otpauth_uri} dangerouslySetInnerHTML={{ __html: enrolment.qr_svg }} />
          <p>{t('twoFactorKey')}: <code class="secret">{enrolment.secret}</code></p>
          {codeInput(t('twoFactorCode'))}
          <button type="submit" class="primary">{t('twoFactorConfirm')}</button>
        </form>
      ) : (
        <div class="stack">
          <p>{t('twoFactorOff')}</p>
          <button type="button" class="primary" onClick={begin}>{t('twoFactorEnable')}</button>
        </div>
      )}
      {err && <p class="error" role="alert">{err}</p>}
    </section>
  );
}

/** The account's sessions: where each was opened, when last used; any can be ended. */
function Sessions({ api }: { api: Api }) {
  const [list, setList] = useState<Schemas['SessionView'][]>([]);
  const [err, setErr] = useState('');
  const load = () => ok(api.GET('/v1/me/sessions')).then(setList).catch((x) => setErr(errText(x)));
  useEffect(() => { load(); }, []);
  const end = async (s: Schemas['SessionView']) => {
    setErr('');
    try { await ok(api.DELETE('/v1/me/sessions/{session}', { params: { path: { session: s.session_id } } })); load(); } catch (x) { setErr(errText(x)); }
  };
  return (
    <section class="sessions">
      <h2>{t('sessions')}</h2>
      <table class="table">
        <thead><tr><th>{t('sessionDevice')}</th><th>{t('sessionAddress')}</th><th>{t('sessionStarted')}</th><th>{t('sessionLastUsed')}</th><th><span class="sr">{t('actions')}</span></th></tr></thead>
        <tbody>
          {list.map((s) => (
            <tr key={s.session_id} data-session={s.session_id}>
              <td>{s.user_agent ?? t('unknownDevice')}</td>
              <td>{s.address ?? ''}</td>
              <td>{new Date(s.created_at).toLocaleString()}</td>
              <td>{new Date(s.last_used_at).toLocaleString()}</td>
              <td>{s.current ? <strong>{t('thisSession')}</strong> : <button type="button" class="danger" onClick={() => end(s)}>{t('endSession')}</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {err && <p class="error" role="alert">{err}</p>}
    </section>
  );
}

/** The deployment sends email and the address is not confirmed yet: until it is, invitations
 * cannot be accepted with this account. The link can be sent again. */
function ConfirmNotice({ api, email }: { api: Api; email: string }) {
  const [state, setState] = useState('');
  const resend = async () => {
    try {
      await ok(api.POST('/v1/me/email-confirmation'));
      setState(t('confirmationSent', { email }));
    } catch (e) { setState(errText(e)); }
  };
  return (
    <div class="notice confirm-notice">
      <p>{t('confirmPending', { email })}</p>
      <button type="button" onClick={resend}>{t('sendAgain')}</button>
      {state && <p role="status">{state}</p>}
    </div>
  );
}
