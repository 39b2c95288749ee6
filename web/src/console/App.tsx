import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { makeApi, ok, ApiError, type Me } from '../api/client';
import { Socket } from '../api/ws';
import { t } from '../i18n';
import { Console } from './Console';
import { errText } from './errors';
import { LangSwitch, useLang } from '../LangSwitch';

const TOKEN_KEY = 'jono.token';

/** The token of an emailed (or handed-over) link to `/PAGE/TOKEN`: an invitation, an address's
 * confirmation, a password reset. */
function linkToken(page: 'invite' | 'confirm' | 'reset'): string | null {
  const m = location.pathname.match(new RegExp(`^/${page}/([^/]+)$`));
  return m ? decodeURIComponent(m[1]) : null;
}

/** A single sign-on's callback comes back to `/#sso_token=TOKEN`: the token is taken and the
 * fragment cleared, so it stays in no history entry. */
function ssoToken(): string | null {
  const m = location.hash.match(/^#sso_token=([^&]+)$/);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  return decodeURIComponent(m[1]);
}

export function App() {
  useLang();
  const [token, setToken] = useState<string | null>(() => ssoToken() ?? localStorage.getItem(TOKEN_KEY));
  const [me, setMe] = useState<Me | null>(null);
  const [invite, setInvite] = useState<string | null>(() => linkToken('invite'));
  const [confirming, setConfirming] = useState<string | null>(() => linkToken('confirm'));
  const [resetting, setResetting] = useState<string | null>(() => linkToken('reset'));

  const signIn = (tok: string | null) => {
    if (tok) localStorage.setItem(TOKEN_KEY, tok);
    else localStorage.removeItem(TOKEN_KEY);
    setMe(null);
    setToken(tok);
  };
  const api = useMemo(() => makeApi(() => token, () => signIn(null)), [token]);
  const socket = useMemo(() => (token ? new Socket(token) : null), [token]);
  useEffect(() => () => socket?.close(), [socket]);
  // A socket the server closed may mean the token ended (a password change elsewhere ends every
  // other session and closes its sockets): ask, and a 401 signs out.
  const leaving = useRef(false); // logging out: the server closes the socket, nothing to ask
  useEffect(() => { leaving.current = false; return socket?.onState((up) => { if (!up && !leaving.current) api.GET('/v1/me').catch(() => {}); }); }, [socket]);

  useEffect(() => {
    if (!token) return;
    ok(api.GET('/v1/me')).then(setMe).catch(() => signIn(null));
  }, [token]);

  const leaveInvite = () => { history.replaceState(null, '', '/'); setInvite(null); };
  const leaveLink = () => { history.replaceState(null, '', '/'); setConfirming(null); setResetting(null); };

  if (confirming) return <ConfirmPage token={confirming} api={api} onDone={() => { leaveLink(); if (token) ok(api.GET('/v1/me')).then(setMe).catch(() => {}); }} />;
  // A reset ends every session of the account, this browser's too: the login follows.
  if (resetting) return <ResetPage token={resetting} api={api} onDone={() => { leaveLink(); signIn(null); }} />;

  if (invite) return <InviteForm token={invite} api={api} me={token ? me : null} onDone={(tok) => { leaveInvite(); if (tok) signIn(tok); else ok(api.GET('/v1/me')).then(setMe); }} />;
  if (!token) return <AuthForm api={api} onToken={signIn} />;
  if (!me || !socket) return <div class="center">…</div>;
  const logout = async () => { leaving.current = true; try { await api.POST('/v1/logout'); } catch {} signIn(null); };
  return <Console api={api} socket={socket} me={me} token={token} onLogout={logout} reloadMe={() => ok(api.GET('/v1/me')).then(setMe)} />;
}

function AuthForm({ api, onToken }: { api: ReturnType<typeof makeApi>; onToken: (t: string) => void }) {
  const [mode, setMode] = useState<'login' | 'signup' | 'forgot'>('login');
  // A reset was asked for: the same words whether or not the email has an account.
  const [resetSent, setResetSent] = useState(false);
  const [f, setF] = useState({ organization: '', name: '', email: '', password: '' });
  const [err, setErr] = useState('');
  // The password was right and the account has a second factor: the code step's challenge.
  const [challenge, setChallenge] = useState<string | null>(null);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setErr('');
    try {
      if (mode === 'forgot') {
        await ok(api.POST('/v1/password-reset/request', { body: { email: f.email } }));
        setResetSent(true);
      } else if (mode === 'login') {
        const r = await ok(api.POST('/v1/login', { body: { email: f.email, password: f.password } }));
        if ('token' in r) onToken(r.token);
        else setChallenge(r.challenge);
      } else onToken((await ok(api.POST('/v1/signup', { body: f }))).token);
    } catch (e) { setErr(mode === 'login' && e instanceof ApiError && e.status === 401 ? t('loginWrong') : errText(e)); }
  };
  if (challenge) return <CodeForm api={api} challenge={challenge} onToken={onToken} onRestart={() => setChallenge(null)} />;
  if (mode === 'forgot') return (
    <main class="auth-page"><LangSwitch /><form class="auth card forgot" onSubmit={submit}>
      <h1>{t('appName')}</h1>
      <h2>{t('forgotTitle')}</h2>
      {resetSent ? <p role="status" class="ok">{t('resetSent', { email: f.email })}</p> : <>
        <p>{t('forgotHelp')}</p>
        <label>{t('email')}<input name="email" type="email" required autocomplete="username" value={f.email} onInput={set('email')} /></label>
        {err && <p class="error" role="alert">{err}</p>}
        <button type="submit" class="primary">{t('sendResetLink')}</button>
      </>}
      <button type="button" class="link" onClick={() => { setMode('login'); setResetSent(false); setErr(''); }}>{t('backToLogin')}</button>
    </form></main>
  );
  return (
    <main class="auth-page"><LangSwitch /><form class="auth card" onSubmit={submit}>
      <h1>{t('appName')}</h1>
      <h2>{mode === 'login' ? t('login') : t('signup')}</h2>
      {mode === 'signup' && <label>{t('organization')}<input name="organization" required value={f.organization} onInput={set('organization')} /></label>}
      {mode === 'signup' && <label>{t('name')}<input name="name" required value={f.name} onInput={set('name')} /></label>}
      <label>{t('email')}<input name="email" type="email" required autocomplete="username" value={f.email} onInput={set('email')} /></label>
      <label>{t('password')}<input name="password" type="password" required minLength={mode === 'signup' ? 10 : undefined} autocomplete={mode === 'login' ? 'current-password' : 'new-password'} value={f.password} onInput={set('password')} /></label>
      {err && <p class="error" role="alert">{err}</p>}
      <button type="submit" class="primary">{mode === 'login' ? t('login') : t('signup')}</button>
      <button type="button" class="link" onClick={() => setMode(mode === 'login' ? 'signup' : 'login')}>
        {mode === 'login' ? t('createAccount') : t('haveAccount')}
      </button>
      {mode === 'login' && <button type="button" class="link" onClick={() => { setMode('forgot'); setErr(''); }}>{t('forgotPassword')}</button>}
    </form></main>
  );
}

/** A login's second step: a code from the authenticator app, or a recovery code. */
function CodeForm({ api, challenge, onToken, onRestart }: { api: ReturnType<typeof makeApi>; challenge: string; onToken: (t: string) => void; onRestart: () => void }) {
  const [code, setCode] = useState('');
  const [err, setErr] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setErr('');
    const typed = code.trim();
    // Six digits are the app's code; anything else is taken for a recovery code.
    const proof = /^\d{6}$/.test(typed.replace(/\s/g, '')) ? { code: typed } : { recovery_code: typed };
    try {
      onToken((await ok(api.POST('/v1/login/two-factor', { body: { challenge, ...proof } }))).token);
    } catch (e) { setErr(errText(e)); setCode(''); }
  };
  return (
    <form class="auth card" onSubmit={submit}>
      <h1>{t('appName')}</h1>
      <h2>{t('twoFactor')}</h2>
      <p>{t('loginCodeTitle')}</p>
      <label>{t('codeOrRecovery')}<input name="login-code" required autocomplete="one-time-code" inputMode="text" value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} /></label>
      {err && <p class="error" role="alert">{err}</p>}
      <button type="submit" class="primary">{t('verify')}</button>
      <button type="button" class="link" onClick={onRestart}>{t('login')}</button>
    </form>
  );
}

function InviteForm({ token, api, me, onDone }: { token: string; api: ReturnType<typeof makeApi>; me: Me | null; onDone: (tok: string | null) => void }) {
  const [f, setF] = useState({ name: '', password: '' });
  const [err, setErr] = useState('');
  const accept = async (e: Event, withAccount: boolean) => {
    e.preventDefault();
    setErr('');
    try {
      const r = await ok(api.POST('/v1/invitations/{token}/accept', { params: { path: { token } }, body: withAccount ? ({} as any) : f }));
      onDone(withAccount ? null : r.token);
    } catch (e) { setErr(errText(e)); }
  };
  return (
    <main class="auth-page"><LangSwitch /><form class="auth card" onSubmit={(e) => accept(e, false)}>
      <h1>{t('appName')}</h1>
      <h2>{t('invitationTitle')}</h2>
      {me && <button type="button" class="primary" onClick={(e) => accept(e, true)}>{t('acceptWithAccount', { email: me.email })}</button>}
      <label>{t('name')}<input name="name" required value={f.name} onInput={(e) => setF({ ...f, name: (e.target as HTMLInputElement).value })} /></label>
      <label>{t('password')}<input name="password" type="password" required minLength={10} autocomplete="new-password" value={f.password} onInput={(e) => setF({ ...f, password: (e.target as HTMLInputElement).value })} /></label>
      {err && <p class="error" role="alert">{err}</p>}
      <button type="submit" class={me ? '' : 'primary'}>{t('acceptInvitation')}</button>
    </form></main>
  );
}

/** `/confirm/TOKEN`, the link a new account's address gets: confirmed at once (the link works once). */
function ConfirmPage({ token, api, onDone }: { token: string; api: ReturnType<typeof makeApi>; onDone: () => void }) {
  const [state, setState] = useState<'working' | 'done' | string>('working');
  const sent = useRef(false);
  useEffect(() => {
    if (sent.current) return;
    sent.current = true;
    ok(api.POST('/v1/email-confirmation', { body: { token } }))
      .then(() => setState('done'))
      .catch((e) => setState(e instanceof ApiError && e.status === 404 ? t('linkUsedOrExpired') : errText(e)));
  }, []);
  return (
    <main class="auth-page"><LangSwitch /><div class="auth card confirm-page">
      <h1>{t('appName')}</h1>
      <h2>{t('confirmTitle')}</h2>
      {state === 'working' ? <p role="status">…</p>
        : state === 'done' ? <p role="status" class="ok">{t('emailConfirmed')}</p>
        : <p class="error" role="alert">{state}</p>}
      <button type="button" class="primary" onClick={onDone}>{t('continue')}</button>
    </div></main>
  );
}

/** `/reset/TOKEN`, a password reset's emailed link: a new password, then the login. */
function ResetPage({ token, api, onDone }: { token: string; api: ReturnType<typeof makeApi>; onDone: () => void }) {
  const [f, setF] = useState({ next: '', again: '' });
  const [err, setErr] = useState('');
  const [done, setDone] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setErr('');
    if (f.next !== f.again) { setErr(t('passwordsDiffer')); return; }
    try {
      await ok(api.POST('/v1/password-reset', { body: { token, new_password: f.next } }));
      setDone(true);
    } catch (x) { setErr(x instanceof ApiError && x.status === 404 ? t('linkUsedOrExpired') : errText(x)); }
  };
  return (
    <main class="auth-page"><LangSwitch /><form class="auth card reset-page" onSubmit={submit}>
      <h1>{t('appName')}</h1>
      <h2>{t('resetTitle')}</h2>
      {done ? <>
        <p role="status" class="ok">{t('passwordReset')}</p>
        <button type="button" class="primary" onClick={onDone}>{t('login')}</button>
      </> : <>
        <label>{t('newPassword')}<input name="new-password" type="password" required minLength={10} autocomplete="new-password" value={f.next} onInput={(e) => setF({ ...f, next: (e.target as HTMLInputElement).value })} /></label>
        <label>{t('repeatPassword')}<input name="repeat-password" type="password" required minLength={10} autocomplete="new-password" value={f.again} onInput={(e) => setF({ ...f, again: (e.target as HTMLInputElement).value })} /></label>
        {err && <p class="error" role="alert">{err}</p>}
        <button type="submit" class="primary">{t('setPassword')}</button>
        <button type="button" class="link" onClick={onDone}>{t('backToLogin')}</button>
      </>}
    </form></main>
  );
}
